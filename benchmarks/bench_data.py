"""How long stage 1's data path takes: parsing a dataset, and building proxy tensors, cold and
from the in-process caches (nas/data/). Run: ``python -m benchmarks.bench_data [--data-dir D]``.

Writes one line per case to stdout: seconds, then what was timed.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Sequence, TypeVar

from nas import data

T = TypeVar("T")

def timed(label: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = fn()
    sys.stdout.write(f"{time.perf_counter() - start:8.3f}s  {label}\n")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    data.clear_caches()
    def load() -> data.Dataset:
        return data.load_dataset(args.dataset, data_dir=args.data_dir)

    ds = timed(f"load_dataset({args.dataset!r}) cold", load)
    timed(f"load_dataset({args.dataset!r}) cached", load)
    n = len(ds.train_labels)
    val = min(5000, n // 10)
    for resolution, train in ((ds.image_size, None), (ds.image_size, min(10000, n - val)),
                              (2 * ds.image_size, min(10000, n - val))):
        def build(resolution: int = resolution, train: int | None = train) -> data.ProxyData:
            return data.proxy_data(ds, resolution=resolution, train_samples=train,
                                   val_samples=val, seed=0)
        label = f"proxy_data(resolution={resolution}, train_samples={train}, val_samples={val})"
        timed(label + " cold", build)
        timed(label + " cached", build)
    timed("synthetic_dataset() default", data.synthetic_dataset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
