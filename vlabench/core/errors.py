"""The one error type of bad user input, and the one-line form every error is shown in."""

from __future__ import annotations

ERROR_CHARS = 500


class ConfigError(ValueError):
    """Bad user input: an unknown name, an out-of-range value. Its message is one line."""


def one_line(exc: BaseException) -> str:
    """`exc`'s message on one line, at most ERROR_CHARS characters (records and stderr)."""
    text = " ".join(str(exc).split())
    return text[:ERROR_CHARS]
