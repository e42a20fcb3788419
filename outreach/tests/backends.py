"""A stand-in mail provider for tests: fails the way it is told to, else behaves like locmem."""

from __future__ import annotations

from django.core.mail.backends.locmem import EmailBackend


class ScriptedBackend(EmailBackend):
    #: Exceptions to raise on the next sends, in order; then deliver to mail.outbox.
    failures: list[BaseException] = []

    def send_messages(self, messages):
        if ScriptedBackend.failures:
            raise ScriptedBackend.failures.pop(0)
        return super().send_messages(messages)
