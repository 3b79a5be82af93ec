#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    from config.preflight import database_problem, fail, settings_or_exit

    settings_or_exit()  # a bad setting is one line naming it, not a traceback
    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        fail(database_problem() or f"database error: {exc}")


if __name__ == "__main__":
    main()
