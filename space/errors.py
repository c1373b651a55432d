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

__all__ = ["UnknownNameError", "UsageError"]


class UsageError(ValueError):
    """Bad input that is no single value's fault (flags that clash, a step out of order)."""


class UnknownNameError(KeyError):
    """A name that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError's own str() quotes the message
        return str(self.args[0]) if self.args else ""
