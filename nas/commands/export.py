"""``nas export MODEL --format json|timm|tf [-o FILE]``: write a spec in another notation.

json: the spec itself (``nas show`` and the searches read it back); timm: a timm-style
``arch_def`` with stem/head settings; tf: the official EfficientNet block strings (MBConv-only
networks). See space.export for the notations.
"""
from __future__ import annotations

import argparse
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
    parser.add_argument("-o", "--output", metavar="FILE", type=Path,
                        help="write to FILE instead of standard output")


def run(args: argparse.Namespace) -> int:
    from space.export import export_text
    from space.resolve import resolve_spec

    text = export_text(resolve_spec(args.model), args.format) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        log.info("wrote %s (%s)", args.output, args.format)
    return 0
