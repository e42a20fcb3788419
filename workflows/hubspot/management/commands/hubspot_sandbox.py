import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.hubspot.sandbox import SandboxServer


class Command(BaseCommand):
    help = "Run the local HubSpot CRM sandbox in the foreground until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--latency-ms", type=int, default=0)
        parser.add_argument(
            "--index-lag", type=float, default=0.0, help="seconds before search sees new objects"
        )
        parser.add_argument(
            "--rate-limit", type=int, default=None, help="enforced calls per 10 s (default: none)"
        )
        parser.add_argument(
            "--token", default=None, help="required Bearer token (default: any non-empty token)"
        )
        parser.add_argument(
            "--time-zone",
            default="UTC",
            help="the account's time zone, as account details name it (default: UTC)",
        )
        parser.add_argument(
            "--owner-rule",
            action="append",
            default=[],
            metavar="DOMAIN=OWNER_ID",
            help="new contacts with emails at DOMAIN ('*' for any) get this owner; "
            "without a rule new contacts have no owner (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        server = SandboxServer(
            options["host"],
            options["port"],
            token=options["token"],
            latency_ms=options["latency_ms"],
            index_lag_seconds=options["index_lag"],
            rate_limit=options["rate_limit"],
        )
        rules = []
        for rule in options["owner_rule"]:
            domain, _, owner_id = rule.partition("=")
            if not domain or not owner_id:
                raise CommandError(f"--owner-rule {rule!r}: expected DOMAIN=OWNER_ID")
            rules.append({"email_domain": domain, "owner_id": owner_id})
        server.sandbox.initial_config.owner_rules = rules
        try:
            server.sandbox.configure(time_zone=options["time_zone"])
            server.sandbox.initial_config.time_zone = options["time_zone"]
        except ValueError as error:
            raise CommandError(f"--time-zone: {error}") from None
        server.start()
        server.reset()
        self.stdout.write(
            f"HubSpot sandbox on {server.url} (control API under /__sandbox__/; Ctrl-C to stop)"
        )
        self.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            self.stdout.write("HubSpot sandbox stopped.")
        finally:
            server.stop()
