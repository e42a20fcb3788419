"""Create an API token for a staff user and print it once: only its digest is stored."""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from knox.models import AuthToken
from knox.settings import knox_settings

_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``45m``; ``never`` for no expiry."""
    if text == "never":
        return None
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise CommandError(f"--expires-in {text!r}: use e.g. 90d, 12h, 30m or never.")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class Command(BaseCommand):
    help = (
        "Create an API token for a staff user. The token is printed once and only its hash "
        "is stored; revoke it by deleting it in the admin (API tokens) or with --revoke."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", required=True, help="username of a staff account")
        parser.add_argument(
            "--expires-in",
            default=None,
            help="lifetime: 90d, 12h, 30m or never (default: API_TOKEN_TTL_DAYS days)",
        )
        parser.add_argument(
            "--revoke",
            metavar="PREFIX",
            default=None,
            help="instead of creating one, revoke the user's token(s) starting with PREFIX",
        )

    def handle(self, *args, user: str, expires_in: str | None, revoke: str | None, **opts):
        try:
            account = get_user_model().objects.get_by_natural_key(user)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user {user!r}.") from None
        if revoke is not None:
            if len(revoke) < 8:
                raise CommandError("--revoke needs at least the first 8 characters of the token.")
            tokens = AuthToken.objects.filter(user=account, token_key__startswith=revoke[:15])
            count, _ = tokens.delete()
            self.stdout.write(f"Revoked {count} token(s) of {user}.")
            return
        if not account.is_staff or not account.is_active:
            raise CommandError(f"{user!r} is not an active staff account: the API would refuse it.")
        expiry = knox_settings.TOKEN_TTL if expires_in is None else parse_duration(expires_in)
        instance, token = AuthToken.objects.create(user=account, expiry=expiry)
        until = instance.expiry.isoformat(timespec="minutes") if instance.expiry else "never"
        self.stderr.write(
            f"API token for {user} (prefix {instance.token_key}, expires {until}). "
            "It is shown only now; store it in your secret manager."
        )
        self.stdout.write(token)
