"""Print the effective send mode; exit non-zero if it is a configuration error.

A malformed variable (MODE_DRAFT_ONLY=maybe) already stops settings with a message naming it.
A valid mode is compared with the last one recorded and an audit row is written on change.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from outreach.gate import ai_drafts_line, current_mode, validate_send_mode
from outreach.services import record_mode_change_if_needed


def _flag(value: bool) -> str:
    return "true" if value else "false"


class Command(BaseCommand):
    help = "Show the effective send mode and fail if it is not allowed."
    # Our own output replaces the outreach.E001 system check here.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        mode = current_mode()
        self.stdout.write(f"API_ENV={mode.api_env}")
        self.stdout.write(f"MODE_DRAFT_ONLY={_flag(mode.draft_only)}")
        self.stdout.write(f"ALLOW_AUTO_SEND={_flag(mode.auto_send)}")
        self.stdout.write(f"SEND_EMAIL_ALLOWLIST: {len(mode.allowlist)} entries")
        self.stdout.write(f"OUTREACH_DRAFTER={mode.drafter}")
        self.stdout.write(f"LLM_AUTO_SEND={_flag(mode.llm_auto_send)}")
        try:
            warnings = validate_send_mode(mode)
        except ValueError as exc:
            raise CommandError(f"Send mode refused: {exc}") from None
        for warning in warnings:
            self.stdout.write(self.style.WARNING(f"WARNING: {warning}"))
        effective = "SEND" if mode.can_send else "DRAFT-ONLY (nothing is sent)"
        self.stdout.write(self.style.SUCCESS(f"Effective mode: {effective}"))
        self.stdout.write(ai_drafts_line(mode))
        try:
            changed = record_mode_change_if_needed(mode)
        except DatabaseError as exc:
            self.stderr.write(f"Could not record the send mode in audit_events: {exc}")
            return
        if changed:
            self.stdout.write("Recorded the send mode change in audit_events.")
