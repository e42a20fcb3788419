"""Make sure an operator account exists; used by `make run`.

Credentials come from LEADLINE_OPERATOR_USERNAME / LEADLINE_OPERATOR_PASSWORD, or a password is
generated and printed once, when the account is first created.
"""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the operator account if it does not exist yet."

    def handle(self, *args, **options) -> None:
        username = os.environ.get("LEADLINE_OPERATOR_USERNAME", "operator")
        password = os.environ.get("LEADLINE_OPERATOR_PASSWORD", "")
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"operator account {username!r} exists")
            return
        generated = not password
        password = password or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=username, email="", password=password)
        operators = Group.objects.filter(name="Operators").first()
        if operators:
            user.groups.add(operators)
        self.stdout.write(self.style.SUCCESS(f"created operator account {username!r}"))
        if generated:
            self.stdout.write(f"  password (shown once): {password}")
