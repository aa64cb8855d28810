from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "reviewapp.accounts"
    label = "accounts"

    def ready(self):
        from reviewapp.accounts import signals  # noqa: F401  (connects the audit receivers)
