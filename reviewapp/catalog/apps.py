from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "reviewapp.catalog"
    label = "catalog"

    def ready(self):
        # Importing them connects the audit receivers and registers the pool checks.
        from reviewapp.catalog import checks, signals  # noqa: F401
