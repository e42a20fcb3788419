#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from config.startup import require_valid_settings

    # A malformed variable: one line naming it, not a traceback (issue #15).
    require_valid_settings()

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
