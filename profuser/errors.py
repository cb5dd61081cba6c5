"""User-facing errors: one line that names the file, row, field or option and what to do.

The CLI prints a `UserError` as ``error: <message>`` and exits with status 2,
without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (config, data, model directory, option)."""


class ConfigError(UserError):
    """A config file or override that does not validate."""
