"""The exception family for bad input, on the ground floor so that every package can raise it.

The command lines (:func:`nas.cli.run_cli`) print bad input as one line and exit 2, and any other
exception as a bug (exit 3, a traceback under ``-v``). They tell the two apart by type
(:func:`nas.cli.is_bad_input`), so a validating raise site only needs the right class:

* ``ValueError`` and its subclasses (:class:`UsageError`, :class:`space.spec.SpecError`, ...):
  a value breaks a rule;
* :class:`UnknownNameError`: a name that is not in a registry (a ``KeyError``, so code that
  catches ``KeyError`` keeps working; a *bare* ``KeyError`` is a missing key, i.e. a bug);
* ``OSError``: a file, folder, lock or network problem of the environment, not of the code.
"""
from __future__ import annotations

__all__ = ["INPUTS_CHECKED", "UnknownNameError", "UsageError", "checked"]

# A log record carrying this attribute set (``log.info(..., extra=checked())``) says that the
# command has checked all of its input: the command lines hold their INFO lines back until
# then (or a few seconds), so that bad input found before it is one line on stderr.
INPUTS_CHECKED = "efficientnas_inputs_checked"


def checked() -> dict[str, bool]:
    """``extra=`` for the log line that marks a command's input as checked."""
    return {INPUTS_CHECKED: True}


class UsageError(ValueError):
    """Bad input that is no single value's fault (flags that clash, a step out of order)."""


class UnknownNameError(KeyError):
    """A name that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError's own str() quotes the message
        return str(self.args[0]) if self.args else ""
