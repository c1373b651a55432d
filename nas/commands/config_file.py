"""``--config FILE``: a command's flags from a YAML or JSON file, or a run folder's config.json.

A file has one of two shapes:

* **flags**: a mapping of flag names to values, ``trials: 60``, ``target-flops: 400M``,
  ``rungs: [1, 3, 9]`` (the flag's dest or its dashed name; a list is the comma list the flag
  takes, ``true``/``false`` a switch, ``null`` the flag not given). Each value goes through
  the flag's own parsing (its type and choices), as if typed, so a bad value is the same one
  line as on the command line, naming the file.
* **a run folder's config.json** (it says its ``"stage"``, or nests settings as 0.1's did):
  ``nas search`` and ``gridsearch`` build the run's config object from it, so every setting
  the run recorded is repeated, those without a flag included: ``nas search --config
  runs/X/config.json --out runs/Y`` repeats run X. ``nas train`` reads its ``job`` (the
  settings as given) as flags. Keys a config.json holds
  as outputs of the run rather than settings (the study's storage and name, the device it
  resolved to, ...) are ignored by name: :attr:`RunConfig.outputs`.

Flags on the command line win over the file, as in timm's train.py. An unknown key is one line
naming it and the nearest known key; a file that cannot be read or parsed is one line too
(both exit 2, before anything is written).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ["CONFIG_HELP", "RunConfig", "add_config_argument", "load_config_file",
           "check_keys", "flag_tokens", "read_config_file"]

CONFIG_HELP = ("read flags from a YAML or JSON file (keys: the flags' names, e.g. trials: 60 or "
               "target-flops: 400M), or a run folder's config.json to repeat that run with a new "
               "--out; flags given here win over the file")
# keys that are not flags of the run: the program's own
_NOT_KEYS = frozenset({"help", "config", "verbose"})


@dataclass(frozen=True)
class RunConfig:
    """How a command reads a run folder's config.json given as ``--config``."""

    stage: str  # config.json's "stage" that this command repeats: "1", "2" or "train"
    command: str  # "nas search", for messages
    template: Callable[[], Mapping[str, Any]]  # every key config.json may hold, nested
    outputs: frozenset[str]  # top-level keys that are outputs of the run, ignored by name
    # nas train: the settings as flags (its job); None: the run's config object is the base
    flags_of: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None


def add_config_argument(p: argparse.ArgumentParser, *, help: str = CONFIG_HELP) -> None:
    """``--config FILE``, in argparse's own bucket beside -h (it is about the other flags);
    the parser keeps itself in the namespace so that :func:`read_config_file` can parse the
    file's flags with it."""
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=help)
    p.set_defaults(_parser=p)


def load_config_file(path: str) -> dict[str, Any]:
    """The mapping in ``path``: JSON for ``.json``, else YAML (which reads JSON too)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"--config {path}: cannot read it ({e.strerror or e}); pass a YAML or "
                         f"JSON file of flags, or a run folder's config.json") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--config {path}: not valid JSON ({e.msg} at line {e.lineno}, "
                         f"column {e.colno}); fix the file") from None
    except Exception as e:  # noqa: BLE001 - yaml.YAMLError, whose text spans lines
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ValueError(f"--config {path}: not valid YAML ({problem}{where}); fix the "
                         f"file") from None
    if not isinstance(data, dict):
        raise ValueError(f"--config {path} must hold a mapping of flag names to values, but "
                         f"holds {type(data).__name__ if data is not None else 'nothing'}; "
                         f"write e.g. trials: 60")
    return data


def _unknown(path: str, key: str, known: list[str], what: str) -> ValueError:
    import difflib

    near = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f"did you mean {near[0]!r}?" if near else f"the keys are {what}"
    return ValueError(f"--config {path}: unknown key {key!r}; {hint}")


def check_keys(data: Mapping[str, Any], template: Mapping[str, Any], *, path: str,
               outputs: frozenset[str] = frozenset(), prefix: str = "") -> None:
    """Every key of ``data`` is one of ``template``'s, at every depth where the template holds
    a non-empty mapping (an empty one, such as a TrainConfig's ``extra``, takes any key)."""
    for key, value in data.items():
        if not prefix and key in outputs:
            continue
        if key not in template:
            known = [prefix + k for k in template]
            raise _unknown(path, prefix + str(key), known, "those config.json holds")
        sub = template[key]
        if isinstance(value, Mapping) and isinstance(sub, Mapping) and sub:
            check_keys(value, sub, path=path, prefix=f"{prefix}{key}.")


def _actions_by_key(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Each flag by its dest and by its names, dashed or not (``target_flops``,
    ``target-flops``, ``--target-flops``, ``target-macs``, ``target_macs``). argparse lists its
    actions only in ``_actions``, read here."""
    keys: dict[str, argparse.Action] = {}
    for a in parser._actions:
        if a.dest in _NOT_KEYS or a.dest == argparse.SUPPRESS:
            continue
        keys[a.dest] = a
        for option in a.option_strings:
            name = option.lstrip("-")
            keys.update({option: a, name: a, name.replace("-", "_"): a})
    return keys


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def flag_tokens(values: Mapping[str, Any], parser: argparse.ArgumentParser, *,
                path: str) -> list[str]:
    """``values`` as the command line that gives them (``--trials=60``), positionals first."""
    keys = _actions_by_key(parser)
    positional: list[str] = []
    options: list[str] = []
    for key, value in values.items():
        action = keys.get(str(key))
        if action is None:
            raise _unknown(path, str(key), sorted(k for k in keys if not k.startswith("-")),
                           f"the flags' names (see {parser.prog} --help)")
        if value is None:
            continue
        if isinstance(value, Mapping):
            raise ValueError(f"--config {path}: {key} takes a value, not a mapping; write e.g. "
                             f"{key}: ... (the flag's value)")
        if not action.option_strings:
            positional.append(_text(value))
            continue
        flag = next(o for o in action.option_strings if o.startswith("--"))
        if action.nargs == 0:  # a switch: store_true, store_false, --x/--no-x
            if not isinstance(value, bool):
                raise ValueError(f"--config {path}: {key} is a switch, true or false, but got "
                                 f"{value!r}; write e.g. {key}: true")
            if isinstance(action, argparse.BooleanOptionalAction):  # [--x, --no-x]
                options.append(action.option_strings[0 if value else 1])
            elif value == action.const:
                options.append(flag)
            continue
        options.append(f"{flag}={_text(value)}")
    return positional + options


def read_config_file(args: argparse.Namespace, shape: RunConfig) -> argparse.Namespace:
    """``args`` with the flags of ``--config FILE`` added where the command line gave none.

    A run folder's config.json for a stage comes back whole as ``args._base`` (its outputs
    dropped): the command builds its config from it
    (:func:`nas.commands.common.request_from_args`).
    """
    path = getattr(args, "config", None)
    if path is None:
        return args
    data = load_config_file(path)
    if "stage" in data or any(isinstance(v, Mapping) for v in data.values()):
        from results.rundir import stage_of  # a run's config.json (0.1's says no "stage")

        stage = stage_of(data)
        if stage is None:
            raise ValueError(f"--config {path} holds nested settings but is no run's "
                             f"config.json (it says no stage); pass a file of flags "
                             f"(trials: 60), or a run folder's config.json")
        if stage != shape.stage:
            raise ValueError(f"--config {path} is the config.json of a stage {stage!r} run, "
                             f"but {shape.command} repeats stage {shape.stage!r} runs; pass one "
                             f"of those, or a file of flags")
        check_keys(data, shape.template(), path=path, outputs=shape.outputs)
        settings = {k: v for k, v in data.items() if k not in shape.outputs}
        if shape.flags_of is None:
            return argparse.Namespace(**vars(args), _base=settings)
        data = dict(shape.flags_of(settings))
    parser = args._parser
    tokens = flag_tokens(data, parser, path=path)
    from_file = parser.parse_file_args(tokens, source=f"--config {path}")
    return argparse.Namespace(**{**vars(from_file), **vars(args)})
