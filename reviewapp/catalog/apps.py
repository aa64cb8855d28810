from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "reviewapp.catalog"
    label = "catalog"

    def ready(self):
        from reviewapp.catalog import signals  # noqa: F401  (connects the audit receivers)
