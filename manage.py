#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from config.startup import EXIT_CODE, configuration_error

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A bad environment variable: say which, without a traceback.
        sys.stderr.write(configuration_error(error) + "\n")
        sys.exit(EXIT_CODE)


if __name__ == "__main__":
    main()
