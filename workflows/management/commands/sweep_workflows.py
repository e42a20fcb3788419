from django.core.management.base import BaseCommand

from workflows.sweeper import sweep


class Command(BaseCommand):
    help = (
        "Re-enqueue pending workflows whose enqueue was lost and running ones whose lease expired."
    )

    def handle(self, *args, **options) -> None:
        result = sweep()
        self.stdout.write(
            f"re-enqueued {result.pending} pending and {result.expired_leases} expired-lease "
            f"workflows ({result.published} published)"
        )
