from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations commands: the development supervisor and the reconciler."""

    name = "reviewapp.ops"
    label = "ops"
