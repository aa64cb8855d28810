from django.apps import AppConfig


class BriefsConfig(AppConfig):
    name = "reviewapp.briefs"
    label = "briefs"
