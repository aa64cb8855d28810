#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    if sys.argv[1:2] == ["dev"]:
        # The development supervisor (`make run`): it and every process it starts run with
        # DEBUG on, while every other command follows DJANGO_DEBUG (off when unset).
        os.environ.setdefault("DJANGO_DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
