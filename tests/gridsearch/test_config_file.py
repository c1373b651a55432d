"""``gridsearch --config FILE`` (issue 25): a file of flags, or a run folder's config.json that
repeats the run with the flags on the command line on top; bad files are one line, exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridsearch.cli import main
from space import save_spec


@pytest.fixture
def here(tmp_path, monkeypatch, tiny_base) -> Path:
    monkeypatch.chdir(tmp_path)
    save_spec(tiny_base, tmp_path / "tiny.json")
    return tmp_path


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def test_a_run_folders_config_json_repeats_the_run(here, capsys) -> None:
    # given coefficients train nothing: the family is emitted from the base
    (here / "flags.yaml").write_text("base: tiny.json\ncoefficients: paper\nfamily: 0-1\n"
                                     "rounding: nearest\ndataset: synthetic\nlatency: false\n")
    assert main(["--config", "flags.yaml", "--family", "0-2", "--out", "g1"]) == 0
    first = _config(here / "g1")
    assert (first["coefficients"], first["family"], first["rounding"], first["latency"]) == \
        ({"alpha": 1.2, "beta": 1.1, "gamma": 1.15}, [0, 2], "nearest", None)
    assert first["proxy"]["dataset"] == "synthetic"
    assert main(["--config", "g1/config.json", "--out", "g2"]) == 0
    assert _config(here / "g2") == first
    assert sorted(p.name for p in (here / "g2" / "family").iterdir()) == \
        ["b0.json", "b1.json", "b2.json"]
    # flags win over the run's config: here the family and its rounding
    assert main(["--config", "g1/config.json", "--family", "1", "--rounding", "paper",
                 "--out", "g3"]) == 0
    assert {k: v for k, v in _config(here / "g3").items() if k not in ("family", "rounding")} \
        == {k: v for k, v in first.items() if k not in ("family", "rounding")}
    assert (_config(here / "g3")["family"], _config(here / "g3")["rounding"]) == ([1, 1], "paper")
    capsys.readouterr()


@pytest.mark.parametrize("text, says", [
    ("rounding: up\n", "--config bad.yaml: argument --rounding: invalid choice: 'up'"),
    ("phi: one\n", "--config bad.yaml: argument --phi: invalid float value: 'one'"),
    ("compare_singel: true\n", "unknown key 'compare_singel'; did you mean 'compare_single'?"),
    ("stage: 2\nphi: 1\ngrid: {step: 0.1, spacing: 2}\n",
     "unknown key 'grid.spacing'; did you mean"),
])
def test_a_bad_config_file_is_one_line_exit_2(text, says, here, capsys) -> None:
    (here / "bad.yaml").write_text(text)
    try:
        code = main(["--config", "bad.yaml", "--out", "g"])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert not (here / "g").exists()


@pytest.mark.parametrize("fixture", ["legacy-0.1/s2", "legacy-0.2/s2"])
def test_an_old_run_folders_config_json_is_a_config_too(fixture) -> None:
    from gridsearch import cli
    from gridsearch.config import GridSearchConfig
    from nas.commands.common import request_from_args
    from nas.commands.config_file import read_config_file

    path = Path(__file__).resolve().parents[1] / "fixtures" / fixture / "config.json"
    args = read_config_file(cli.make_parser().parse_args(["--config", str(path)]),
                            cli.RUN_CONFIG)
    r = request_from_args(args, stage="2", flags=cli.FLAGS, from_dict=GridSearchConfig.from_dict,
                          fresh=lambda given, base: base)
    assert r.config == GridSearchConfig.from_dict(json.loads(path.read_text()))
    assert r.config.reduction_factor == 3
