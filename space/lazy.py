"""Lazy package faces (PEP 562): a package's ``__init__`` names its public API in one table,
and each name is imported from its module on first use.

So ``import space`` (or ``nas.engine``, ``nas.train``, ``gridsearch``) imports nothing heavy,
and ``nas --help`` answers without torch, optuna or ray; ``from space import build`` imports
torch as it always did. A package uses it as::

    __getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {"build": "builder", ...})
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable, Mapping, MutableMapping


def exports(module: str, names: Iterable[str]) -> dict[str, str]:
    """``{name: module}`` for each of ``names``: one row of a package's table."""
    return dict.fromkeys(names, module)


def lazy_exports(package: str, namespace: MutableMapping[str, Any],
                 table: Mapping[str, str]) -> tuple[Callable[[str], Any],
                                                    Callable[[], list[str]], list[str]]:
    """The package's ``__getattr__``, ``__dir__`` and ``__all__`` for ``table`` (public name ->
    the submodule, relative to ``package``, that defines it). A name is looked up once, then
    kept in the package's namespace."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *table})

    return __getattr__, __dir__, list(table)
