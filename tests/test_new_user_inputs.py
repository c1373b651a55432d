"""The bad inputs a new user hit (issue 26), by table: each is refused with exit code 2 and
exactly one line on stderr (no INFO line before it: the checks come before the log), the line
states the rule and a fix, and nothing is written. Real command lines, in subprocesses, so the
command line's own logging is what is tested."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SYN = ["--dataset", "synthetic", "--train-samples", "64", "--val-samples", "32", "--epochs",
       "1", "--trials", "1", "--finalists", "0"]


def _png(path: Path, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (12, 12), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def one_class(root: Path) -> list[str]:
    for i in range(4):
        _png(root / "data" / "train" / "cats" / f"{i}.png", i)
    return ["--dataset", f"folder:{root / 'data'}"]


def no_test_split(root: Path) -> list[str]:
    for c, name in enumerate(("cats", "dogs")):
        for i in range(3):
            _png(root / "data" / "train" / name / f"{i}.png", 10 * c + i)
    return ["--dataset", f"folder:{root / 'data'}"]


def corrupt_image(root: Path) -> list[str]:
    no_test_split(root)
    (root / "data" / "train" / "dogs" / "broken.png").write_bytes(b"not a png at all")
    return ["--dataset", f"folder:{root / 'data'}"]


def broken_yaml(root: Path) -> list[str]:
    (root / "broken.yaml").write_text("name: x\nchoices: {op: [conv, dsconv\n")
    return ["--space", str(root / "broken.yaml")]


def config_typo(root: Path) -> list[str]:
    (root / "flags.yaml").write_text("target-flops: 400M\nepoch: 3\n")
    return ["--config", "flags.yaml"]


def config_bad_choice(root: Path) -> list[str]:
    (root / "flags.json").write_text('{"target_flops": "400M", "pruner": "sha"}')
    return ["--config", "flags.json"]


def out_is_a_file(root: Path) -> list[str]:
    (root / "afile").write_text("mine\n")
    return []


def out_holds_my_files(root: Path) -> list[str]:
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("mine\n")
    return []


def nothing(root: Path) -> list[str]:
    return []


# --evaluator supernet (issue 24): it needs finalists, and calibration images the split holds
SUPERNET = [*SYN, "--finalists", "1", "--evaluator", "supernet", "--calib-images", "64"]

NAS = ["-m", "nas.cli"]
GRID = ["-m", "gridsearch.cli"]

# (command, arguments, set-up (its extra arguments), what the one line must say)
CASES = {
    "target-flops-1e400": (NAS, ["search", "--target-flops", "1e400", *SYN, "--out", "r"],
                           nothing, ["the target must be finite", "--target-flops 400M"]),
    "phi-995-family": (GRID, ["--phi", "995", "--coefficients", "paper", "--family", "0-1",
                              "--out", "r"], nothing, ["`phi <= ", "pass a phi in 0.."]),
    "phi-30-too-big-to-build": (GRID, ["--phi", "30", "--coefficients", "paper", "--family",
                                       "0-1", "--out", "r"], nothing,
                                ["building the phi-", "GiB", "pass a phi in 0.."]),
    "enqueue-unknown": (NAS, ["search", "--target-flops", "400M", "--enqueue", "nosuchnet",
                              *SYN, "--out", "r"], nothing, ["unknown model 'nosuchnet'"]),
    "enqueue-non-member": (NAS, ["search", "--target-flops", "400M", "--enqueue", "resnet-50",
                                 *SYN, "--out", "r"], nothing,
                           ["--enqueue resnet-50", "not a member of the space"]),
    "one-class-folder": (NAS, ["search", "--target-flops", "400M", *SYN, "--out", "r"],
                         one_class, ["at least 2 classes", "add another class"]),
    "train-without-test-split": (NAS, ["train", "efficientnet-b0", "--epochs", "1", "--out",
                                       "r"], no_test_split,
                                 ["has none", "PATH/test/<class>/"]),
    "timeout-negative": (NAS, ["search", "--target-flops", "400M", "--timeout", "-1", *SYN,
                               "--out", "r"], nothing, ["`timeout >= 0`", "0 = no limit"]),
    "budget-negative": (NAS, ["search", "--target-flops", "400M", "--budget", "-5", *SYN,
                              "--out", "r"], nothing, ["`budget >= 0`", "--budget 780"]),
    "budget-inf": (NAS, ["search", "--target-flops", "400M", "--budget", "inf", *SYN,
                         "--out", "r"], nothing, ["budget=inf", "--budget 0 for none"]),
    "space-broken-yaml": (NAS, ["search", "--target-flops", "400M", *SYN, "--out", "r"],
                          broken_yaml, ["broken.yaml, line 3, column 1", "fix the file"]),
    "corrupt-image": (NAS, ["search", "--target-flops", "400M", *SYN, "--out", "r"],
                      corrupt_image, ["broken.png", "remove it or replace it"]),
    "out-is-a-file": (NAS, ["search", "--target-flops", "400M", *SYN, "--out", "afile"],
                      out_is_a_file, ["--out 'afile' is a file", "pass a new folder"]),
    "out-holds-other-files": (NAS, ["search", "--target-flops", "400M", *SYN, "--out", "mine"],
                              out_holds_my_files,
                              ["holds other files (notes.txt)", "new or empty folder"]),
    # the stable recipe's flags (issue 23), in both stages
    "grad-clip-negative": (NAS, ["search", "--target-flops", "400M", "--grad-clip", "-1", *SYN,
                                 "--out", "r"], nothing,
                           ["`grad_clip > 0`", "--grad-clip 2 (or 0: no clipping)"]),
    "label-smoothing-one": (GRID, ["--label-smoothing", "1", "--out", "r"], nothing,
                            ["`0 <= label_smoothing < 1`", "--label-smoothing 0.1"]),
    "weight-decay-nan": (NAS, ["search", "--target-flops", "400M", "--weight-decay", "nan",
                               *SYN, "--out", "r"], nothing,
                         ["`0 <= weight_decay < inf`", "--weight-decay"]),
    "lr-inf": (GRID, ["--lr", "inf", "--out", "r"], nothing, ["`0 < lr < inf`", "--lr 0.02"]),
    "zero-init-last-value": (NAS, ["search", "--target-flops", "400M", "--zero-init-last=yes",
                                   *SYN, "--out", "r"], nothing,
                             ["--zero-init-last", "ignored explicit argument"]),
    # the supernet evaluator (issue 24): what the supernet cannot train with or hold
    "supernet-compile": (NAS, ["search", "--target-flops", "400M", *SUPERNET, "--compile",
                               "default", "--out", "r"], nothing,
                         ["supernet cannot train with compile='default'", "--compile off"]),
    "supernet-epochs-zero": (NAS, ["search", "--target-flops", "400M", *SUPERNET,
                                   "--supernet-epochs", "0", "--out", "r"], nothing,
                             ["`supernet_epochs >= 1`", "--supernet-epochs 3"]),
    "supernet-calib-beyond-split": (NAS, ["search", "--target-flops", "400M", *SUPERNET,
                                          "--calib-images", "512", "--out", "r"], nothing,
                                    ["`calib_images <= training images`", "64 training images",
                                     "--calib-images 64"]),
    "supernet-flag-without-evaluator": (NAS, ["search", "--target-flops", "400M", *SYN,
                                              "--supernet-epochs", "2", "--out", "r"], nothing,
                                        ["uses --evaluator proxy", "add --evaluator supernet"]),
    "supernet-without-finalists": (NAS, ["search", "--target-flops", "400M", *SYN,
                                         "--evaluator", "supernet", "--out", "r"], nothing,
                                   ["needs `finalists >= 1`", "--finalists 4"]),
    # --reduction-factor (issue 23): a whole number >= 2, in both stages
    **{f"reduction-factor-{v}": (NAS, ["search", "--target-flops", "400M", "--reduction-factor",
                                       v, *SYN, "--out", "r"], nothing,
                                 [f"--reduction-factor must be a whole number >= 2 (keep the "
                                  f"best 1/N at each rung), but got {v!r}",
                                  "pass e.g. --reduction-factor 2"])
       for v in ("1", "0", "-2", "abc", "2.5")},
    "grid-reduction-factor-abc": (GRID, ["--rungs", "1,3", "--reduction-factor", "abc", "--out",
                                         "r"], nothing,
                                  ["but got 'abc'", "pass e.g. --reduction-factor 2"]),
    # --config FILE (issue 25): the file's flags are checked as typed ones, and named
    "config-unknown-key": (NAS, ["search", *SYN, "--out", "r"], config_typo,
                           ["--config flags.yaml: unknown key 'epoch'", "did you mean 'epochs'?"]),
    "config-missing": (GRID, ["--config", "nope.yaml", "--out", "r"], nothing,
                       ["--config nope.yaml: cannot read it"]),
    "config-bad-choice": (NAS, ["search", *SYN, "--out", "r"], config_bad_choice,
                          ["--config flags.json: argument --pruner: invalid choice: 'sha'"]),
}


def _run(cmd: list[str], args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *cmd, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path):
    cmd, args, setup, says = CASES[case]
    extra = setup(tmp_path)
    before = _tree(tmp_path)
    r = _run(cmd, [*args, *extra], tmp_path)
    lines = r.stderr.splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and ": error: " in lines[0], r.stderr  # no INFO line before it
    for fragment in says:
        assert fragment in lines[0], lines[0]
    assert _tree(tmp_path) == before  # nothing written


def test_phi_bound_is_stated_once_and_true(tmp_path):
    """--phi 1e9 and --phi 1023 are told one bound (the base's, memory included), and the
    bound itself is accepted by the same check."""
    stated = []
    for phi in ("1e9", "1023"):
        r = _run(GRID, ["--phi", phi, "--coefficients", "paper", "--out", "r"], tmp_path)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
        stated.append(re.search(r"pass a phi in 0\.\.(\d+)", r.stderr).group(1))
    assert stated[0] == stated[1]
    from gridsearch.family import check_scale, phi_limit
    from gridsearch.grid import Point
    from space import get_model

    b0, paper = get_model("efficientnet-b0"), Point(1.2, 1.1, 1.15)
    limit, _ = phi_limit(b0, paper, memory=None)
    check_scale(b0, paper, limit, family=(0, 7), times_family=False, memory=None)  # accepted
    with pytest.raises(ValueError, match=f"pass a phi in 0..{limit},"):
        check_scale(b0, paper, limit + 1, family=(0, 7), times_family=False, memory=None)
    assert not (tmp_path / "r").exists()


def test_a_good_run_still_logs_its_progress(tmp_path, tiny_space_file):
    r = _run(NAS, ["search", "--target-flops", "2M", "--space", tiny_space_file,
                   "--deploy-resolution", "32", "--proxy-resolution", "16", *SYN,
                   "--out", "ok"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "INFO nas.search: stage 1: space" in r.stderr  # held, then written in order
    assert r.stderr.index("loaded Dataset") < r.stderr.index("stage 1: space")


# ----------------------------------------------------------------------------- README's 3 ways
def test_deploy_flags_set_where_macs_are_counted(tmp_path, tiny_space_file):
    import json

    r = _run(NAS, ["search", "--target-flops", "2M", "--space", tiny_space_file,
                   "--deploy-resolution", "32", "--deploy-channels", "1", "--deploy-classes",
                   "10", "--proxy-resolution", "16", *SYN, "--out", "d"], tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "d" / "config.json").read_text())
    assert cfg["deploy"] == {"resolution": 32, "in_channels": 1, "num_classes": 10}
    best = json.loads((tmp_path / "d" / "best.json").read_text())
    assert (best["resolution"], best["in_channels"], best["num_classes"]) == (32, 1, 10)
    from space import count_analytic, load_spec

    assert best["meta"]["macs"] == count_analytic(load_spec(tmp_path / "d" / "best.json")).macs


def _make_n(*args: str) -> str:
    import shutil

    if shutil.which("make") is None:
        pytest.skip("no make here")
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(["make", "-n", "-C", str(root), *args], capture_output=True,
                          text=True, timeout=60, check=True).stdout


@pytest.mark.parametrize("search_args, needs_fashion_mnist", [
    ("--target-flops 400M", True),
    ("--target-flops 400M --dataset fashion-mnist", True),
    ("--target-flops 400M --dataset folder:/data/pets", False),
    ("--target-flops 400M --dataset synthetic", False),
    ("--target-flops 400M --data-dir /my/copy", False),
])
def test_make_search_needs_fashion_mnist_only_for_the_default_dataset(search_args,
                                                                     needs_fashion_mnist):
    plan = _make_n("search", f"SEARCH_ARGS={search_args}")
    assert ("Fashion-MNIST" in plan) == needs_fashion_mnist
    assert f"nas search {search_args}" in plan


def test_make_torch_step_is_two_variables_and_names_no_host():
    assert "pip install -q  'torch==2.13.0'" in _make_n("-B", "venv")
    plan = _make_n("-B", "venv", "TORCH_SPEC=torch==2.5.1", "TORCH_INDEX=file:///wheels")
    assert "pip install -q --index-url file:///wheels 'torch==2.5.1'" in plan
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert not re.search(r"https?://", makefile)
