"""The errors nriqa raises for problems the user can fix, shared by every subpackage.

Each message says what is wrong, where (the key, file or folder) and how to fix it, so that
``python -m nriqa`` can print it as one line to stderr and exit 2, without a traceback
(``python -m nriqa --debug ...`` shows the traceback). They subclass :class:`ValueError`, so code
that already catches ``ValueError`` keeps working.

This module imports nothing from nriqa: every layer may raise these.
"""
from __future__ import annotations

__all__ = ["CheckpointError", "ConfigError", "DatasetError", "RunLockedError", "UserError", "brief_error", "one_line"]


class UserError(ValueError):
    """Bad input that the user can fix: the message names it and says how."""


class ConfigError(UserError):
    """A profile, a ``--set`` override or a config value is unknown or has the wrong type."""


class DatasetError(UserError):
    """A dataset folder fails its checks (an unreadable frame, wrong LR size, mixed frame sizes, ...)."""


class CheckpointError(UserError):
    """A checkpoint file cannot be loaded (truncated, not a checkpoint), or no intact one is left."""


class RunLockedError(UserError):
    """A run folder is in use by another trainer (see :mod:`nriqa.train.lock`)."""


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line: the lines of a multi-line message joined by ``"; "`` (by a
    space after a line that ends a sentence), runs of spaces collapsed."""
    lines = [" ".join(ln.split()) for ln in str(err).splitlines()]
    lines = [ln[2:] if ln.startswith(("- ", "* ")) else ln for ln in lines]  # list bullets
    text = ""
    for ln in (ln for ln in lines if ln):
        text += ("" if not text else " " if text.endswith((".", ":", ";")) else "; ") + ln
    return text or type(err).__name__


def brief_error(err: BaseException) -> str:
    """``Type: first sentence of the message`` for warnings and errors about a file (torch and numpy
    messages run on for lines)."""
    text = (str(err).splitlines() or [""])[0]
    if len(text) > 100 and ". " in text:
        text = text[: text.index(". ") + 1]
    return f"{type(err).__name__}: {text[:200]}"
