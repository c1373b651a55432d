"""The ``gridsearch`` command: stage 2 (EfficientNet Sec. 3.3) from the command line.

    gridsearch --phi 1 --base efficientnet-b0 --compare-single
    gridsearch --base runs/<stage-1 run> --coefficients paper --family 0-7

There is no subcommand; the evaluator, dataset, seed and output flags are ``nas search``'s
(:func:`nas.commands.common.add_proxy_arguments`), and so is the resume check
(:func:`nas.commands.common.check_resume`). Bad input is one line on stderr and exit code 2
(:func:`nas.cli.run_cli`), argparse's own complaints included.

Why one file of about 400 lines: stage 2's parser (its own groups and flags, with their help
texts) and the one function that turns them into a GridSearchConfig belong together, as
:mod:`nas.commands.search` holds stage 1's.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from typing import Any, Sequence

from nas.commands.common import (GROUP_LADDER, GROUP_LATENCY, GROUP_SEARCH, GROUP_TARGET,
                                 LATENCY_FLAGS, PROXY_FLAGS, REDUCTION_FACTOR_FLAG, RUNGS_FLAG, S,
                                 Flag, add_backend_arguments, add_latency_arguments,
                                 add_proxy_arguments, add_reduction_factor_argument,
                                 add_run_arguments, exit_code, given_flags, request_from_args,
                                 rungs_set_epochs)
from nas.commands.config_file import RunConfig, add_config_argument, read_config_file

# stage 2's own groups, beside the shared ones (nas.commands.common.GROUP_*)
GROUP_FAMILY = "base & family"
GROUP_COMPARE = "single-dimension comparison"

GRID_FLAGS = ("step", "tolerance", "constraint", "alpha_range", "beta_range", "gamma_range",
              "rungs", "reduction_factor", "finalists", "finalist_seeds", "finalist_epochs")

DESCRIPTION = """\
Stage 2 of EfficientNet (Sec. 3.3): grid-search the compound-scaling coefficients alpha, beta,
gamma at a given phi, keeping the points whose measured MACs ratio is within --tolerance of 2^phi
(or, with --constraint formula, alpha*beta^2*gamma^2 ~= 2), training each scaled base on the proxy
task and counting its MACs with fvcore; then emit the scaled family (family/b0.json .. b7.json)
as frozen specs. The run folder holds coefficients.json, grid.csv/.parquet, family/, family.csv
(and compare_single.json/.csv with --compare-single). With --latency the family is then timed
end to end on this machine, and family.csv reports each member's latency."""
EPILOG = """examples:
  gridsearch --phi 1 --base efficientnet-b0 --epochs 1 --out runs/stage2
  gridsearch --base runs/stage1 --step 0.1 --tolerance 0.05 --compare-single
  gridsearch --constraint formula --tolerance 0.1 --compare-single --compare-seeds 5
  gridsearch --coefficients paper --rounding nearest --family 0-7
  gridsearch --rungs 1,3 --finalists 4 --finalist-seeds 3
  gridsearch --rungs 1,3 --reduction-factor 2
  gridsearch --base mobilenet-v2 --coefficients paper --compare-single
  gridsearch --base nas-b0.json --coefficients 1.2,1.1,1.15 --family 0-4
  gridsearch --coefficients paper --family 0-7 --latency
  gridsearch --resume --out runs/stage2 --select reward
  gridsearch --resume --out runs/stage2 --latency-threads 4 --latency-repeats 10
  gridsearch --config runs/stage2/config.json --out runs/stage2-again
"""


def make_parser() -> argparse.ArgumentParser:
    from gridsearch.config import SELECTORS, GridSearchConfig, default_proxy
    from gridsearch.family import ROUNDINGS
    from gridsearch.grid import CONSTRAINTS
    from nas.cli import Parser, add_common_arguments
    from nas.commands.common import default_of

    p = Parser(prog="gridsearch", description=DESCRIPTION, epilog=EPILOG,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p)
    g = p.add_argument_group(GROUP_TARGET, "the MACs goal 2^phi, which grid points meet it, "
                             "and how the winner is chosen")
    g.add_argument("--phi", type=float, default=S,
                   help="compound coefficient the grid is searched at (default 1: twice the "
                        "MACs); 0 <= phi <= the bound for the base (overflow, and the memory "
                        "its network needs to be built), which a larger phi is told")
    g.add_argument("--constraint", default=S, choices=CONSTRAINTS.names(),
                   help="which grid points are kept: measured (their measured MACs ratio to the "
                        "base is within --tolerance of 2^phi, relatively) or formula "
                        "(|alpha*beta^2*gamma^2 - 2| <= --tolerance) (default measured)")
    g.add_argument("--tolerance", type=float, default=S,
                   help="the constraint's tolerance, > 0: relative for measured (0.1 = +-10%%), "
                        "absolute on the product for formula (default 0.1); --compare-single "
                        "also holds the single-dimension networks to it")
    g.add_argument("--select", default=S, choices=SELECTORS,
                   help=f"how the winner is chosen: accuracy (ties go to fewer MACs) or reward "
                        f"(stage 1's ACC x (MACs/T)^-0.07 with T = base MACs x 2^phi) (default "
                        f"{default_of(GridSearchConfig, 'select')})")
    g = p.add_argument_group(GROUP_SEARCH, "the grid of alpha, beta, gamma (or the point that "
                             "skips it)")
    g.add_argument("--step", type=float, default=S, help="grid step for alpha, beta, gamma "
                   "(default 0.05)")
    g.add_argument("--alpha-range", default=S, metavar="LO,HI",
                   help="alpha's closed range (default 1,2; LO >= 1; LO == HI fixes alpha)")
    g.add_argument("--beta-range", default=S, metavar="LO,HI",
                   help="beta's closed range (default 1,1.5)")
    g.add_argument("--gamma-range", default=S, metavar="LO,HI",
                   help="gamma's closed range (default 1,1.5)")
    g.add_argument("--coefficients", default=S, metavar="A,B,G|paper",
                   help="skip the search and emit the family for these coefficients; 'paper' "
                        "is 1.2,1.1,1.15. With --compare-single the given point is trained too")
    g = p.add_argument_group(GROUP_LADDER, "how the points are raced, and how the winner is "
                             "confirmed")
    g.add_argument("--rungs", default=S, metavar="E1,E2,..",
                   help="race the points on a fidelity ladder: compare them after these epochs "
                        "and keep the best 1/--reduction-factor at each (the last rung is the "
                        "full training and sets --epochs) (default: no racing, every point "
                        "trains --epochs)")
    add_reduction_factor_argument(g, default=default_of(GridSearchConfig, "reduction_factor"),
                                  reads="needs --rungs")
    g.add_argument("--finalists", type=int, default=S, metavar="K",
                   help=f"after the grid, train the top K distinct points again with "
                        f"--finalist-seeds seeds; the point with the best mean wins (default "
                        f"{default_of(GridSearchConfig, 'finalists')}; 0 = the grid's best "
                        f"single training wins)")
    g.add_argument("--finalist-seeds", type=int, default=S, metavar="S",
                   help=f"seeds per finalist (default "
                        f"{default_of(GridSearchConfig, 'finalist_seeds')})")
    g.add_argument("--finalist-epochs", type=int, default=S, metavar="E",
                   help="epochs each finalist trains (default: --epochs, as the grid trains); "
                        "a longer training confirms the winner at a higher fidelity")
    g = p.add_argument_group(GROUP_FAMILY, "what is scaled, and the family emitted from it")
    g.add_argument("--base", default=S,
                   help="the base to scale: a zoo name (default efficientnet-b0; see nas list), "
                        "a spec .json file, or a stage-1 run folder (its best.json)")
    g.add_argument("--family", default=S, metavar="LO-HI",
                   help="phi values to emit as family/b<phi>.json (default 0-7; '3' = just 3)")
    g.add_argument("--rounding", default=S, choices=ROUNDINGS.names(),
                   help="how the family's repeats are rounded: paper (ceil, B0..B7 exactly as "
                        "published) or nearest (floor or ceil per stage, whichever lands each "
                        "member's measured MACs nearest 2^phi x B0's) (default paper)")
    g = p.add_argument_group(GROUP_COMPARE, "compound scaling against depth, width or "
                             "resolution alone (paper Table 3)")
    g.add_argument("--compare-single", action="store_true", default=S,
                   help="also train depth-only (d=2^phi), width-only (w=sqrt2^phi) and "
                        "resolution-only scalings of the base at the chosen point's measured MACs "
                        "(paper Table 3), over --compare-seeds seeds, and say whether the "
                        "difference exceeds the seed-to-seed noise (compare_single.json/.csv)")
    g.add_argument("--compare-seeds", type=int, default=S, metavar="N",
                   help=f"seeds each network of --compare-single trains with (default "
                        f"{default_of(GridSearchConfig, 'compare_seeds')}; >= 2 to test the "
                        f"difference)")
    proxy = default_proxy()
    stage2_help = {  # where stage 2's meaning or default differs from stage 1's
        "epochs": f"proxy training epochs per point (default {proxy.train.epochs})",
        "proxy_resolution": f"input size the unscaled base trains at (default "
                            f"{proxy.resolution}); each point trains at round(this x gamma^phi)",
    }
    add_proxy_arguments(p, proxy, seed=default_of(GridSearchConfig, "seed"), helps=stage2_help)
    add_family_latency_arguments(p)
    add_backend_arguments(p, proxy.train)
    add_run_arguments(p, command="gridsearch")
    add_config_argument(p)
    p.set_defaults(command="gridsearch", _run=run)
    return p


def add_family_latency_arguments(p: argparse.ArgumentParser) -> None:
    """``--latency`` and how it measures: ``nas``'s ``--latency-threads``, ``--latency-batch``
    and ``--latency-runtime`` (:func:`nas.commands.common.add_latency_arguments`), and
    ``--latency-repeats``."""
    from gridsearch.config import DEFAULT_REPEATS, WARMUP

    g = p.add_argument_group(GROUP_LATENCY, "the emitted family timed on this machine")
    g.add_argument("--latency", action=argparse.BooleanOptionalAction, default=S,
                   help=f"once the run is done, time every member of the family end to end at "
                        f"its own resolution on this machine's CPU ({WARMUP} warm-up pass, then "
                        f"--latency-repeats timed ones) and add latency_ms (the median) and "
                        f"latency_iqr_ms to family.csv and to each family/b<phi>.json; any "
                        f"--latency-* flag turns it on too. B0..B7 on one thread take a minute or "
                        f"two. May be turned on (or off, --no-latency) on --resume, which "
                        f"then times the family (default: off)")
    add_latency_arguments(g)
    g.add_argument("--latency-repeats", type=int, default=S, metavar="N",
                   help=f"timed forward passes per member (default {DEFAULT_REPEATS})")


# ----------------------------------------------------------------------------- parsing
def parse_range(text: str, flag: str) -> tuple[float, float]:
    parts = [x.strip() for x in str(text).split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"{flag} must be LO,HI (two numbers), but got {text!r}; "
                         f"pass e.g. {flag} 1,1.5")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"{flag} must be LO,HI (two numbers), but got {text!r}; "
                         f"pass e.g. {flag} 1,1.5") from None
    return lo, hi


def parse_coefficients(text: str) -> Any:
    from gridsearch.grid import PAPER, Point

    if str(text).strip().lower() == "paper":
        return PAPER
    parts = [x.strip() for x in str(text).split(",")]
    try:
        alpha, beta, gamma = (float(x) for x in parts)
    except ValueError:
        raise ValueError(f"--coefficients must be A,B,G (three numbers >= 1) or 'paper', but got "
                         f"{text!r}; pass e.g. --coefficients 1.2,1.1,1.15") from None
    if not all(math.isfinite(v) and v >= 1 for v in (alpha, beta, gamma)):
        raise ValueError(f"--coefficients {text}: `alpha, beta, gamma >= 1` must hold "
                         f"(EfficientNet Eq. 3); pass e.g. --coefficients 1.2,1.1,1.15")
    return Point(alpha, beta, gamma)


def parse_family(text: str) -> tuple[int, int]:
    parts = str(text).strip().split("-")
    try:
        if len(parts) == 1:
            lo = hi = int(parts[0])
        elif len(parts) == 2:
            lo, hi = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"--family must be LO-HI or N (integers >= 0), but got {text!r}; "
                         f"pass e.g. --family 0-7") from None
    if not 0 <= lo <= hi:
        raise ValueError(f"--family {text}: `0 <= LO <= HI` must hold; pass e.g. --family 0-7")
    return lo, hi


def _range(flag: str) -> Any:
    return lambda text: parse_range(text, flag)


def _grid_flag(dest: str, parse: Any = None) -> Flag:
    name = "--" + dest.replace("_", "-")
    return Flag(dest, f"grid.{dest}", parse or (lambda v: v), option=name)


# --latency-threads, --latency-batch, --latency-runtime (nas's own rows) and --latency-repeats
LATENCY_SETTING_FLAGS: tuple[Flag, ...] = (
    *(replace(f, on_resume=True) for f in LATENCY_FLAGS),
    Flag("latency_repeats", "latency_repeats", on_resume=True),
)

# flag -> where it lands in GridSearchConfig. --select and --family only change what is emitted
# from the finished points; --compare-single only adds points (finished ones are never trained
# again): those may change on --resume.
FLAGS: tuple[Flag, ...] = (
    # coefficients before phi: a large phi is checked against the given point, not the grid
    Flag("base", "base"),
    Flag("coefficients", "coefficients", lambda v: parse_coefficients(v)),
    Flag("phi", "phi"),
    _grid_flag("step"), _grid_flag("tolerance"), _grid_flag("constraint"),
    *(_grid_flag(k, _range("--" + k.replace("_", "-")))
      for k in ("alpha_range", "beta_range", "gamma_range")),
    Flag("finalists", "finalists"), Flag("finalist_seeds", "finalist_seeds"),
    Flag("finalist_epochs", "finalist_epochs"),
    Flag("select", "select", on_resume=True),
    Flag("family", "family", lambda v: parse_family(v), on_resume=True),
    Flag("compare_single", "compare_single", on_resume=True),
    # more seeds only add trainings of the compared networks; the rounding only re-emits
    Flag("compare_seeds", "compare_seeds", on_resume=True),
    Flag("rounding", "rounding", on_resume=True),
    *PROXY_FLAGS,
    RUNGS_FLAG,  # after --epochs: the top rung must equal it
    REDUCTION_FACTOR_FLAG,
    # how the family's latency is measured (--latency itself: latency_switch); measuring changes
    # what is reported, not what is trained
    *LATENCY_SETTING_FLAGS,
)


def _check_flags(given: dict[str, Any]) -> None:
    rungs_set_epochs(given)  # --rungs 1,3 alone trains 3 epochs
    if "coefficients" in given:
        clash = [k for k in (*GRID_FLAGS, "select") if k in given]
        if clash:
            flag = "--" + clash[0].replace("_", "-")
            raise ValueError(f"{flag} applies to the grid search, which --coefficients skips; "
                             f"drop {flag} or --coefficients")


def _check_raced(config: Any, given: dict[str, Any]) -> None:
    """--reduction-factor says how the points are raced: a run that races nothing (no rungs,
    given or its own on --resume) would silently ignore it."""
    if "reduction_factor" in given and config.rungs is None:
        raise ValueError(f"--reduction-factor {given['reduction_factor']} says how the points "
                         f"are raced, but this run races none (no --rungs); add e.g. --rungs "
                         f"1,3 or drop --reduction-factor")


def latency_switch(given: dict[str, Any]) -> bool | None:
    """Whether the flags turn the family's timing on (True), off (False) or leave it as it is
    (None: off in a fresh run, the run's own on --resume). A ``--latency-*`` flag without
    ``--latency`` turns it on; with ``--no-latency`` it is a contradiction."""
    on = given.get("latency")
    setting = next((f.name for f in LATENCY_SETTING_FLAGS if f.dest in given), None)
    if setting is not None and on is False:
        raise ValueError(f"{setting} says how to time the family, but --no-latency turns the "
                         f"timing off; drop {setting} or --no-latency")
    return True if setting is not None else on


def with_latency(config: Any, on: bool | None) -> Any:
    """``config`` with the family's timing turned on (keeping a resumed run's own setting, the
    defaults otherwise) or off; unchanged for None."""
    from nas.latency import LatencySettings

    if on is None or (on and config.latency is not None):
        return config
    return replace(config, latency=LatencySettings() if on else None)


def _template() -> dict[str, Any]:
    """Every key a stage-2 config.json may hold (with coefficients, latency and backend)."""
    from gridsearch.config import GridSearchConfig
    from gridsearch.grid import PAPER
    from nas.backends import BackendConfig
    from nas.latency_settings import LatencySettings

    config = GridSearchConfig(coefficients=PAPER, latency=LatencySettings())
    return {**config.to_dict(), "backend": BackendConfig().to_dict()}


# A run's config.json as --config: the same outputs as stage 1's (nas.commands.search)
RUN_CONFIG = RunConfig(stage="2", command="gridsearch", template=_template,
                       outputs=frozenset({"stage", "storage", "study_name", "device"}))


def run(args: argparse.Namespace) -> int:
    from gridsearch.config import GridSearchConfig, default_proxy
    from gridsearch.search import run_gridsearch

    args = read_config_file(args, RUN_CONFIG)
    # applied before the flags, so that --latency-threads lands in a setting that exists
    on = latency_switch(given_flags(args))
    r = request_from_args(
        args, stage="2", flags=FLAGS,
        from_dict=lambda d: with_latency(GridSearchConfig.from_dict(d), on),
        fresh=lambda given, base: with_latency(base or GridSearchConfig(proxy=default_proxy()),
                                               on),
        check=_check_flags)
    _check_raced(r.config, given_flags(args))
    result = run_gridsearch(r.config, out=r.out, resume=r.resume, storage=r.storage,
                            backend=r.backend)
    _report(result)
    return exit_code(interrupted=result.interrupted, found=result.coefficients is not None)


def _report(result: Any) -> None:
    out = sys.stdout
    print(f"run folder: {result.run_dir}", file=out)
    e = result.enumeration
    if e is not None:
        print(f"grid: {e.points_total} points, {e.points_kept} kept with {e.describe()}",
              file=out)
    c = result.coefficients
    if c is None:
        print("no grid point finished; nothing to emit", file=out)
        return
    acc = "-" if c["accuracy"] is None else f"{c['accuracy']:.4f}"
    print(f"coefficients ({c['selected_by']}): alpha {c['alpha']:g} beta {c['beta']:g} "
          f"gamma {c['gamma']:g}  product {c['product']:.4f}  accuracy {acc}", file=out)
    fv = c["fvcore"]
    print(f"MACs at phi {c['phi']:g}: x{fv['ratio']:.3f} measured (fvcore re-count, "
          f"{fv['macs'] / 1e6:.1f}M) vs x{c['formula_ratio']:.3f} formula vs "
          f"x{c['nominal_ratio']:.3f} nominal", file=out)
    fin = c.get("finalists")
    if fin:
        print(f"finalists ({fin['chosen_by']}; the top {fin['k']} by the grid's reward, "
              f"{fin['seeds']} seeds each):", file=out)
        for r in fin["rows"]:
            mean = "-" if r["accuracy_mean"] is None else f"{r['accuracy_mean']:.4f}"
            std = "" if r["accuracy_std"] is None else f" +- {r['accuracy_std']:.4f}"
            mark = "  <- chosen" if r["trial"] == fin["winner"] else ""
            print(f"  alpha {r['alpha']:g} beta {r['beta']:g} gamma {r['gamma']:g}: accuracy "
                  f"{mean}{std} over {r['done']}/{r['seeds']} seed(s) (grid's single training "
                  f"{r['grid_accuracy']:.4f}){mark}", file=out)
        if fin.get("verdict"):
            print(f"choice: {fin['verdict']['text']}", file=out)
    if not c["complete"]:
        print(f"incomplete: {c['points_done']} of {c['points_to_train']} points finished; "
              f"continue with gridsearch --resume --out {result.run_dir}", file=out)
    if c["compare_single"] is not None:
        _report_compare(result.run_dir, out)
    if result.family:
        print(f"family ({result.run_dir / 'family'}/b*.json, {result.run_dir}/family.csv):",
              file=out)
        for s in result.family:
            m = s.meta
            lat = m.get("latency")
            timed = "" if lat is None else (f"  {lat['median_ms']:9.2f} ms (IQR "
                                            f"{lat['iqr_ms']:.2f})")
            print(f"  b{m['phi']}  {s.name:<28} {s.resolution:>4} px  "
                  f"{m['params'] / 1e6:8.2f}M params  {m['macs'] / 1e6:10.1f}M MACs  "
                  f"x{m['macs_ratio']:.3f} vs 2^phi = {m['nominal_ratio']:g} "
                  f"({m['macs_ratio'] / m['nominal_ratio'] - 1:+.1%}, {m['rounding']} rounding)"
                  f"{timed}", file=out)
        lat = c.get("latency")
        if lat is not None:
            d = lat["device"]
            ort = f" {d['onnxruntime']}" if "onnxruntime" in d else ""
            print(f"latency: median of {lat['repeats']} forward pass(es) after {lat['warmup']} "
                  f"warm-up, batch {d['batch']}, on {d['cpu']}, {d['threads']} thread(s), "
                  f"{d['runtime']}{ort} (torch {d['torch']}), {d['clock']} clock", file=out)


def _report_compare(run_dir: Any, out: Any) -> None:
    import json

    from gridsearch.outputs import COMPARE_FILE

    path = run_dir / COMPARE_FILE
    if not path.is_file():
        return
    summary = json.loads(path.read_text())
    print(f"compound vs single-dimension scaling at the same measured MACs ({path}):", file=out)
    for r in summary["variants"]:
        acc = "-" if not r["seeds"] else (f"{r['accuracy_mean']:.4f}" + (
            f" +- {r['accuracy_std']:.4f}" if r["seeds"] > 1 else ""))
        m = "-" if r["macs"] is None else f"{r['macs'] / 1e6:.1f}M"
        off = "" if r["macs_vs_compound"] is None else f" ({r['macs_vs_compound']:+.1%})"
        flag = " OUTSIDE --tolerance" if r["within_tolerance"] is False else ""
        line = (f"  {r['kind']:>10}: accuracy {acc} over {r['seeds']} seed(s)  MACs {m}"
                f"{off}{flag}")
        if r["kind"] != "compound":
            line += f"  {r['verdict']}"
        print(line, file=out)


def main(argv: Sequence[str] | None = None) -> int:
    from nas.cli import run_cli

    return run_cli(make_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
