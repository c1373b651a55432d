"""What the study's storage costs: journal, SQLite and PostgreSQL, with a null evaluator.

Three measurements (BENCHMARKS.md, "Storage"):

1. **Overhead per trial**, one driver, a null evaluator (no training: what is left is sampling,
   counting, the engine's bookkeeping and the storage), for the journal file, SQLite, and
   PostgreSQL through psycopg 3 (``postgresql://``, what SQLAlchemy 2.x picks) and psycopg2
   (``postgresql+psycopg2://``, when installed).
2. **1 driver against 2** on the same small study, each trial sleeping ``--sleep`` seconds in
   place of training (a ratio from the same run).
3. **8 drivers, null evaluator**: the trials per second one PostgreSQL study sustains, the point
   where the database and not training becomes the limit for a cluster.

A PostgreSQL server is started in /tmp on a free loopback port (tests/pg_server.py; Debian's
``postgresql`` package) and stopped at the end. Each driver is its own process (``driver``
subcommand) and reports the seconds its search took, torch's import left out.

    .venv/bin/python benchmarks/bench_storage.py --trials 60 --drivers 8
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pg_server():
    """tests/pg_server.py, loaded by path (tests/ on sys.path would shadow the space package
    with the tests/space folder)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pg_server", ROOT / "tests" / "pg_server.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class NullEvaluator:
    """No training: an accuracy from the architecture's hash, after ``sleep`` seconds."""

    def __init__(self, sleep: float = 0.0) -> None:
        self.sleep = sleep

    def __call__(self, spec, proxy, *, seed, on_epoch=None):
        from nas.evaluate import EvalResult
        from nas.train import EpochResult

        if self.sleep:
            time.sleep(self.sleep)
        acc = 0.5 + (int(spec.arch_hash(), 16) % 400) / 1000
        r = EpochResult(epoch=1, train_loss=1.0, val_accuracy=acc, lr=0.1, seconds=0.0,
                        images_per_sec=0.0)
        if on_epoch:
            on_epoch(r)
        return EvalResult(accuracy=acc, epochs=[r], seconds=0.0, images_per_sec=0.0, seed=seed)


def driver(args: argparse.Namespace) -> None:
    """One ``nas search`` driver with the null evaluator; prints its search seconds as JSON."""
    import logging

    from nas.engine import StorageConfig
    from nas.evaluate import ProxyConfig
    from nas.search import Deployment, SearchConfig, run_search
    from nas.train import TrainConfig

    logging.disable(logging.WARNING)
    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=64, val_samples=32,
                        train=TrainConfig(epochs=1, threads=1))
    config = SearchConfig(target_macs=400_000_000, space="mnasnet", trials=args.trials,
                          timeout=None, sampler="random", seed=args.seed, proxy=proxy,
                          deploy=Deployment(resolution=224), pruner="none", finalists=0)
    storage = StorageConfig(url=args.storage, study_name=args.study_name, join=args.join,
                            heartbeat=10)
    t0 = time.perf_counter()
    run_search(config, out=args.out, storage=storage, evaluate=NullEvaluator(args.sleep))
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def _drive(n: int, url: str | None, tmp: Path, name: str, trials: int, sleep: float) -> dict:
    """``n`` driver processes on one study (the first creates it); wall seconds and trials/s."""
    me = [sys.executable, __file__, "driver", "--trials", str(trials), "--sleep", str(sleep)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = [*me, "--out", str(tmp / f"{name}-0"), "--study-name", name]
    if url:
        first += ["--storage", url]
    procs = [subprocess.Popen(first, stdout=subprocess.PIPE, text=True, env=env)]
    if n > 1:  # the others join once the study exists
        import optuna

        _pg_server().wait_for(lambda: name in optuna.get_all_study_names(url), timeout=120, what=name)
        procs += [subprocess.Popen([*me, "--out", str(tmp / f"{name}-{i}"), "--storage", url,
                                    "--study-name", name, "--join"], stdout=subprocess.PIPE,
                                   text=True, env=env) for i in range(1, n)]
    t0 = time.perf_counter()
    outs = [p.communicate(timeout=1800)[0] for p in procs]
    wall = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise SystemExit(f"a driver failed: {[p.returncode for p in procs]}")
    secs = [json.loads(o.strip().splitlines()[-1])["seconds"] for o in outs]
    return {"drivers": n, "trials": trials, "search_s": max(secs), "wall_s": wall,
            "s_per_trial": max(secs) / trials, "trials_per_s": trials / max(secs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    d = sub.add_parser("driver")
    d.add_argument("--storage")
    d.add_argument("--study-name", default=None)
    d.add_argument("--join", action="store_true")
    d.add_argument("--trials", type=int, required=True)
    d.add_argument("--sleep", type=float, default=0.0)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", required=True)
    ap.add_argument("--trials", type=int, default=60, help="trials per study (default 60)")
    ap.add_argument("--drivers", type=int, default=8, help="drivers of measurement 3")
    ap.add_argument("--sleep", type=float, default=0.5,
                    help="seconds per trial in measurement 2 (default 0.5)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="rounds of measurement 1, interleaved (default 3; the median is kept)")
    ap.add_argument("--only-overhead", action="store_true", help="measurement 1 alone")
    args = ap.parse_args()
    if args.cmd == "driver":
        return driver(args)

    pg_server = _pg_server()
    tmp = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    root = Path(tempfile.mkdtemp(prefix="bench-storage-pg-"))
    server = pg_server.PostgresServer(root)
    server.start()
    try:
        urls = {"journal": None, "sqlite": f"sqlite:///{tmp}/s.db",
                "postgresql (psycopg 3)": server.create_database("overhead_pg3")}
        try:
            import psycopg2  # noqa: F401

            urls["postgresql (psycopg2)"] = server.create_database("overhead_pg2").replace(
                "postgresql://", "postgresql+psycopg2://")
        except ImportError:
            pass
        runs: dict[str, list[dict]] = {label: [] for label in urls}
        for rep in range(args.repeats):  # interleaved, order reversed every other round
            order = list(urls.items())[::(-1) ** rep]
            for label, url in order:
                if url and url.startswith("postgresql"):  # a fresh database each time
                    url = url.rsplit("/", 1)[0] + "/" + server.create_database(
                        f"o{len(runs[label])}_{label.split()[-1].strip('()')}").rsplit("/", 1)[1]
                elif url:
                    url = f"sqlite:///{tmp}/s{rep}.db"
                r = _drive(1, url, tmp, f"o{rep}-{list(urls).index(label)}", args.trials, 0.0)
                runs[label].append(r)
                print(f"overhead  {label:24s} {r['s_per_trial'] * 1e3:7.1f} ms/trial "
                      f"(round {rep + 1})", flush=True)
        rows = {label: {"s_per_trial": statistics.median(r["s_per_trial"] for r in rs),
                        "rounds": [r["s_per_trial"] for r in rs]} for label, rs in runs.items()}
        base = rows["journal"]["s_per_trial"]
        for label, r in rows.items():
            r["vs_journal"] = r["s_per_trial"] / base
            print(f"median    {label:24s} {r['s_per_trial'] * 1e3:7.1f} ms/trial, "
                  f"x{r['vs_journal']:.2f} journal's", flush=True)
        if args.only_overhead:
            print(json.dumps({"overhead": rows, "cpus": os.cpu_count()}, indent=1))
            return
        url = server.create_database("two")
        one = _drive(1, url, tmp, "one", 24, args.sleep)
        url2 = server.create_database("two_b")
        two = _drive(2, url2, tmp, "two", 24, args.sleep)
        print(f"1 vs 2 drivers, {args.sleep}s trials: {one['search_s']:.1f}s vs "
              f"{two['search_s']:.1f}s (x{one['search_s'] / two['search_s']:.2f})", flush=True)
        many = _drive(args.drivers, server.create_database("many"), tmp, "many",
                      args.trials * 2, 0.0)
        print(f"{args.drivers} drivers, null evaluator: {many['trials_per_s']:.1f} trials/s "
              f"({many['trials']} trials in {many['search_s']:.1f}s)", flush=True)
        print(json.dumps({"overhead": rows, "one_vs_two": [one, two], "many": many,
                          "cpus": os.cpu_count()}, indent=1))
    finally:
        server.stop("fast")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
