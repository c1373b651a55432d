"""Turn what a user typed for a model into a spec: a zoo name, a spec file, or a run folder.

Every command that takes a MODEL argument resolves it here, so they all accept the same things:

1. a zoo name (``efficientnet-b0``; see :func:`space.zoo.list_models`), checked first, so a
   folder that happens to share a zoo name must be written as a path (``./efficientnet-b0``);
2. a path to a spec JSON file (``my-net.json``), as written by :func:`space.spec.save_spec`;
3. a run folder holding ``best.json`` (a search's output), which is read as a spec file.
"""
from __future__ import annotations

from pathlib import Path

from .errors import UnknownNameError
from .spec import ArchSpec, load_spec
from .zoo import ZOO, get_model

RUN_SPEC_FILE = "best.json"


def resolve_spec(name_or_path: str) -> ArchSpec:
    """The spec ``name_or_path`` names.

    Raises :class:`~space.errors.UnknownNameError` (a KeyError) for a name that is neither a zoo
    model nor an existing path (listing the zoo and the other accepted forms),
    :class:`~space.spec.SpecError` naming the file and the field for a broken or invalid spec
    file, and FileNotFoundError for a folder without ``best.json``.
    """
    if not isinstance(name_or_path, str) or not name_or_path:
        raise TypeError(f"a model must be a zoo name or a path, got {name_or_path!r}")
    if name_or_path in ZOO:
        return get_model(name_or_path)
    path = Path(name_or_path)
    if path.is_dir():
        best = path / RUN_SPEC_FILE
        if not best.is_file():
            raise FileNotFoundError(
                f"run folder {str(path)!r} has no {RUN_SPEC_FILE}; pass a folder written by a "
                f"search, or the path to a spec .json file")
        return load_spec(best)
    if path.is_file():
        return load_spec(path)
    raise UnknownNameError(
        f"unknown model {name_or_path!r}: not a zoo model and no such file or folder; "
        f"zoo models: {', '.join(ZOO.names())}; a path to a spec .json file or to a run folder "
        f"with {RUN_SPEC_FILE} also works")
