from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "reviewapp.campaigns"
    label = "campaigns"
