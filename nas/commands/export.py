"""``nas export MODEL --format json|timm|tf|onnx [--json] [-o FILE]``: write a spec in another notation.

json: the spec itself (``nas show`` and the searches read it back); timm: a timm-style
``arch_def`` with stem/head settings; tf: the official EfficientNet block strings (MBConv-only
networks); onnx: the built network (fresh weights) as an ONNX file with a dynamic batch,
verified in ONNX Runtime (nas.onnx_export; needs efficientnas[onnx] and -o). See space.export
for the text notations. ``--json`` wraps the text in one JSON object
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
BINARY_FORMATS = ("onnx",)  # a file, not text: needs -o

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="zoo name (see `nas list`), spec .json file, or run folder")
    parser.add_argument("--format", choices=FORMAT_NAMES + BINARY_FORMATS, default="json",
                        help="output notation (default: json); onnx writes a network file "
                             "(needs -o and efficientnas[onnx])")
    parser.add_argument("--resolution", type=int, metavar="R",
                        help="onnx: input size of the example the export traces (default: the "
                             "model's own; the batch is dynamic)")
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
    if args.format in BINARY_FORMATS:
        return _export_onnx(spec, args)
    text = export_text(spec, args.format)
    if args.json:
        text = json.dumps({"format": args.format, "model": spec.name, "text": text})
    if args.out is None:
        sys.stdout.write(text + "\n")
    else:
        args.out.write_text(text + "\n")
        log.info("wrote %s (%s%s)", args.out, args.format, ", as JSON" if args.json else "")
    return 0


def _export_onnx(spec, args: argparse.Namespace) -> int:
    from nas.onnx_export import ATOL, RTOL, export_onnx, require_onnx
    from space.errors import UsageError

    if args.out is None:
        raise UsageError("--format onnx writes a binary file: pass -o FILE, e.g. -o net.onnx")
    if args.out.is_dir():
        raise IsADirectoryError(f"-o {str(args.out)!r} is a folder; pass a file such as net.onnx")
    if not args.out.parent.is_dir():
        raise FileNotFoundError(f"-o {str(args.out)!r}: folder {str(args.out.parent)!r} does not "
                                f"exist")
    if args.resolution is not None and args.resolution < 1:
        raise ValueError(f"--resolution must be a positive integer, got {args.resolution}")
    require_onnx()
    check = export_onnx(spec, args.out, resolution=args.resolution)
    info = {"format": "onnx", "model": spec.name, "file": str(args.out),
            "resolution": args.resolution or spec.resolution, "verified_batches":
            list(check.batches), "max_abs_diff": check.max_abs_diff, "atol": ATOL, "rtol": RTOL}
    if args.json:
        print(json.dumps(info))
    else:
        print(f"wrote {args.out} ({spec.name}, dynamic batch); ONNX Runtime matches torch on "
              f"batches {', '.join(map(str, check.batches))} within atol={ATOL}, rtol={RTOL} "
              f"(max |diff| {check.max_abs_diff:.2g})")
    return 0
