"""``nas export MODEL --format json|timm|tf [--json] [-o FILE]``: write a spec in another notation.

json: the spec itself (``nas show`` and the searches read it back); timm: a timm-style
``arch_def`` with stem/head settings; tf: the official EfficientNet block strings (MBConv-only
networks). See space.export for the notations. ``--json`` wraps the text in one JSON object
``{"format", "model", "text"}`` (``model``: the spec's name), like every command's ``--json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

NAME = "export"
HELP = "write a model's spec as JSON, a timm arch_def or TF EfficientNet block strings"

# Kept literal so `nas --help` need not import torch; tests check it equals space.export.FORMATS.
FORMAT_NAMES = ("json", "timm", "tf")

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="zoo name (see `nas list`), spec .json file, or run folder")
    parser.add_argument("--format", choices=FORMAT_NAMES, default="json",
                        help="output notation (default: json)")
    parser.add_argument("-o", "--out", metavar="FILE", type=Path,
                        help="write to FILE instead of standard output")
    parser.add_argument("--output", dest="out", type=Path, help=argparse.SUPPRESS)  # 0.1's name
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object {"format", "model", "text"} instead of the '
                             'bare text (text: what the format writes, as a string)')


def run(args: argparse.Namespace) -> int:
    from space.export import export_text
    from space.resolve import resolve_spec

    spec = resolve_spec(args.model)
    text = export_text(spec, args.format)
    if args.json:
        text = json.dumps({"format": args.format, "model": spec.name, "text": text})
    if args.out is None:
        sys.stdout.write(text + "\n")
    else:
        args.out.write_text(text + "\n")
        log.info("wrote %s (%s%s)", args.out, args.format, ", as JSON" if args.json else "")
    return 0
