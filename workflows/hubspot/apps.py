from django.apps import AppConfig


class HubSpotConfig(AppConfig):
    name = "workflows.hubspot"
    label = "hubspot"
    verbose_name = "HubSpot"
