"""Experiment (issue 24): ``bench_supernet.py`` with dsconv and every MBConv in one weight family.

The supernet gives each op family its own weights (``nas.supernet.blocks.family``: conv, dsconv,
mbconv1, mbconv). dsconv is an MBConv without the expansion conv (depthwise, [SE], linear
projection), so here dsconv, mbconv1 and mbconv share one elastic MBConv: a member without the
expansion conv takes the first ``in_channels`` of the shared depthwise and projection. Only the
family rule changes; every argument is ``bench_supernet.py``'s::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exp_shared_families.py --part mixing \\
        --steps 60 --epochs 1 --free "op:dsconv/mbconv6;op:dsconv/mbconv3/mbconv6;op"

Results: benchmarks/BENCHMARKS_supernet.md, "One weight family for the MBConvs".
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nas.supernet.blocks as blocks  # noqa: E402
import nas.supernet.network as network  # noqa: E402


def shared_family(block: str, expand_ratio: float) -> str:
    return "mbconv" if block in ("mbconv", "dsconv") else block


if __name__ == "__main__":
    blocks.family = network.family = shared_family
    from benchmarks.bench_supernet import main
    main(sys.argv[1:])
