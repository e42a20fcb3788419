import logging

from celery.signals import worker_ready
from django.apps import AppConfig


class HubSpotConfig(AppConfig):
    name = "workflows.hubspot"
    label = "hubspot"
    verbose_name = "HubSpot"

    def ready(self) -> None:
        worker_ready.connect(learn_account, dispatch_uid="hubspot.learn_account")


def learn_account(**kwargs: object) -> None:
    """A starting worker asks for the account's time zone at once (beat's first daily run is a
    day away), so a 429 DAILY soon after a deployment halts until the right midnight."""
    from django.conf import settings

    from workflows.hubspot.tasks import refresh_account

    if not settings.HUBSPOT_ACCESS_TOKEN or settings.HUBSPOT_ACCOUNT_TIME_ZONE:
        return
    try:
        refresh_account.apply_async(retry=False)
    except Exception:  # the broker may still be starting; beat's daily run catches up
        logging.getLogger("leadline.hubspot").warning("Could not enqueue the account refresh")
