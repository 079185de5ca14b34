"""Errors that end a command with a one-paragraph message and exit code 2."""


class UsageError(Exception):
    """Bad input, bad configuration or an unusable repository: exit 2, no traceback."""

    exit_code = 2
