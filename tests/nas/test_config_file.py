"""``--config FILE`` (issue 25) for ``nas search`` and ``nas train``: a file of flags, or a run
folder's config.json that repeats the run; flags on the command line win; an unknown key or a
bad file is one line and exit 2, before anything is written. (gridsearch's:
tests/gridsearch/test_config_file.py.)"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from nas.cli import main
from nas.commands import search as search_cmd
from nas.commands.config_file import check_keys, flag_tokens, load_config_file
from scripts.flag_tables import parser_of

TINY_FLAGS = """\
target-flops: 2M
space: tiny.yaml
trials: 3
dataset: synthetic
train_samples: 100
val-samples: 50
proxy-resolution: 16
rungs: [1]
reduction-factor: 3
deploy-resolution: 32
finalists: 0
zero-init-last: false
grad-clip: 0
"""


@pytest.fixture
def here(tmp_path, monkeypatch, tiny_space_text) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(tiny_space_text)
    return tmp_path


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


def test_a_file_of_flags_then_its_run_folder_repeats_the_run(here, capsys) -> None:
    (here / "tiny-flags.yaml").write_text(TINY_FLAGS)
    # the file's flags, typed as the flags type them; --trials on the command line wins
    assert main(["search", "--config", "tiny-flags.yaml", "--trials", "2", "--out", "r1"]) == 0
    first = _config(here / "r1")
    proxy = first["proxy"]
    assert (first["target_macs"], first["trials"], first["rungs"]) == (2_000_000, 2, [1])
    assert first["reduction_factor"] == 3  # the file's, not the default 2
    assert (proxy["val_samples"], proxy["resolution"], proxy["train"]["epochs"]) == (50, 16, 1)
    assert proxy["zero_init_last"] is False and proxy["train"]["grad_clip"] is None

    # the run folder's config.json is a --config: the same settings, another folder
    assert main(["search", "--config", "r1/config.json", "--out", "r2"]) == 0
    assert "B0 = trial" in capsys.readouterr().out
    assert _config(here / "r2") == first


def test_flags_win_over_a_run_config(here, monkeypatch) -> None:
    """A run's config.json is the base; the command line's flags apply on top of it, a new
    target replacing the run's."""
    (here / "tiny-flags.yaml").write_text(TINY_FLAGS)
    seen = []

    class Stop(Exception):
        pass

    def fake_run_search(config, **kw):
        seen.append((config, kw["backend"]))
        raise Stop

    monkeypatch.setattr("nas.search.run_search", fake_run_search)
    run = json.loads(json.dumps({**_flags_config(here), "backend": {"name": "local",
                                                                     "max_retries": 5}}))
    (here / "run.json").write_text(json.dumps(run))
    p = parser_of("nas search")
    args = p.parse_args(["--config", "run.json", "--target-latency", "20ms", "--rungs", "1,3",
                         "--batch-size", "128"])
    with pytest.raises(Stop):
        search_cmd.run(args)
    config, backend = seen[0]
    assert (config.target_macs, config.target_latency_ms) == (None, 20.0)
    assert config.proxy.train.epochs == 3 and config.rungs == (1, 3)  # the flags'
    assert config.proxy.val_samples == 50 and config.trials == 3  # the run's
    assert config.proxy.train.lr == pytest.approx(0.05 * 128 / 64)  # scaled from the run's
    assert config.space == "tiny.yaml" and config.latency is None
    assert backend.max_retries == 5


def _flags_config(here: Path) -> dict:
    """The config.json a run of TINY_FLAGS writes, built without running it."""
    from nas.commands.common import request_from_args, rungs_set_epochs
    from nas.commands.config_file import read_config_file
    from nas.stage1.config import SearchConfig

    args = read_config_file(parser_of("nas search").parse_args(["--config", "tiny-flags.yaml"]),
                            search_cmd.RUN_CONFIG)
    r = request_from_args(args, stage="1", flags=search_cmd.FLAGS,
                          from_dict=SearchConfig.from_dict, fresh=search_cmd._fresh,
                          check=rungs_set_epochs)
    return {"stage": 1, **r.config.to_dict(), "storage": None, "study_name": "stage1"}


def test_dashed_names_dests_and_switches_become_the_flags() -> None:
    p = parser_of("nas search")
    tokens = flag_tokens({"target-flops": "400M", "w_a": 0.1, "a": None, "enqueue": ["x", "y"],
                          "zero_init_last": True, "resume": False, "--seed": 3}, p, path="f")
    assert tokens == ["--target-flops=400M", "--w-a=0.1", "--enqueue=x,y", "--zero-init-last",
                      "--seed=3"]
    tokens = flag_tokens({"model": "efficientnet-b0", "channels_last": False, "epochs": 2},
                         parser_of("nas train"), path="f")
    assert tokens == ["efficientnet-b0", "--no-channels-last", "--epochs=2"]


def test_check_keys_walks_nested_settings_but_not_free_mappings() -> None:
    template = {"proxy": {"train": {"epochs": 1, "extra": {}}}, "trials": 1}
    check_keys({"proxy": {"train": {"extra": {"anything": 1}}}, "stage": 1}, template,
               path="f", outputs=frozenset({"stage"}))
    with pytest.raises(ValueError, match="unknown key 'proxy.train.epoch'; did you mean "
                                         "'proxy.train.epochs'"):
        check_keys({"proxy": {"train": {"epoch": 2}}}, template, path="f")


@pytest.mark.parametrize("name, text, says", [
    ("typo.yaml", "target-flops: 400M\ntrails: 5\n",
     ["--config typo.yaml: unknown key 'trails'; did you mean 'trials'?"]),
    ("far.yaml", "zzzzzz: 1\n",
     ["unknown key 'zzzzzz'; the keys are the flags' names (see nas search --help)"]),
    ("choice.yaml", "target-flops: 400M\nsampler: cmaes\n",
     ["--config choice.yaml: argument --sampler: invalid choice: 'cmaes'"]),
    ("type.json", '{"target_flops": "400M", "epochs": "two"}',
     ["--config type.json: argument --epochs: invalid int value: 'two'"]),
    ("switch.yaml", "target-flops: 400M\nresume: maybe\n",
     ["resume is a switch, true or false, but got 'maybe'"]),
    ("broken.json", '{"trials": [1,', ["--config broken.json: not valid JSON", "line 1"]),
    ("broken.yaml", "trials: [1,\n", ["--config broken.yaml: not valid YAML", "line 2"]),
    ("list.yaml", "- trials\n", ["must hold a mapping of flag names to values, but holds list"]),
    ("empty.yaml", "", ["holds nothing"]),
    ("keep.yaml", "target-flops: 400M\nreduction-factor: 1\n",
     ["--reduction-factor must be a whole number >= 2", "but got '1'"]),
    ("stage2.json", '{"stage": 2, "phi": 1}', ["config.json of a stage '2' run",
                                               "nas search repeats stage '1' runs"]),
    ("nested.json", '{"stage": 1, "target_macs": 1000, "proxy": {"dataset": "synthetic", '
                    '"train": {"epoch": 2}}}',
     ["unknown key 'proxy.train.epoch'; did you mean 'proxy.train.epochs'?"]),
    ("nested-flags.json", '{"trials": 3, "proxy": {"epochs": 2}}',
     ["holds nested settings but is no run's config.json (it says no stage)"]),
    ("incomplete.json", '{"stage": 1, "target_macs": 1000}',
     ["--config incomplete.json: not a config this command can run (no 'proxy')"]),
])
def test_a_bad_config_file_is_one_line_exit_2_and_writes_nothing(name, text, says, here,
                                                                 capsys) -> None:
    (here / name).write_text(text)
    before = _tree(here)
    try:
        code = main(["search", "--config", name, "--out", "r"])
    except SystemExit as e:  # argparse's own complaints, about the file's flags
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in says:
        assert fragment in err, err
    assert _tree(here) == before


def test_a_missing_file_is_one_line(here, capsys) -> None:
    assert main(["search", "--config", "nope.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == ("nas: error: --config nope.yaml: cannot read it (No such file or "
                   "directory); pass a YAML or JSON file of flags, or a run folder's "
                   "config.json\n")


def test_a_run_config_does_not_resume(here, capsys) -> None:
    (here / "tiny-flags.yaml").write_text(TINY_FLAGS)
    (here / "run.json").write_text(json.dumps(_flags_config(here)))
    assert main(["search", "--config", "run.json", "--resume", "--out", "r"]) == 2
    assert "drop --config or --resume" in capsys.readouterr().err


def test_load_reads_json_and_yaml(tmp_path) -> None:
    (tmp_path / "a.json").write_text('{"trials": 3}')
    (tmp_path / "a.yml").write_text("trials: 3\nrungs: [1, 3]\n")
    assert load_config_file(str(tmp_path / "a.json")) == {"trials": 3}
    assert load_config_file(str(tmp_path / "a.yml")) == {"trials": 3, "rungs": [1, 3]}


def test_nas_train_repeats_a_run_from_its_config_json(here, capsys) -> None:
    from space import ArchSpec, StageSpec, StemSpec, save_spec

    spec = ArchSpec(name="tiny", stem=StemSpec(channels=8), stages=(
        StageSpec("mbconv", 1, 3, 1, 8, expand_ratio=1.0, se_ratio=0.25),), head_channels=16,
        resolution=16)
    save_spec(spec, here / "tiny.json")
    (here / "job.yaml").write_text("model: tiny.json\ndataset: synthetic\nepochs: 1\n"
                                   "train-samples: 64\nval_samples: 32\nbatch-size: 32\n"
                                   "resolution: 16\nema-decay: 0\nthreads: 1\nkeep: 1\n"
                                   "channels_last: false\ndevice: cpu\n")
    assert main(["train", "--config", "job.yaml", "--seed", "2", "--out", "t1"]) == 0
    job = _config(here / "t1")["job"]
    assert (job["model"], job["seed"], job["train_samples"], job["channels_last"]) == \
        ("tiny.json", 2, 64, False)
    assert main(["train", "--config", "t1/config.json", "--out", "t2"]) == 0
    assert _config(here / "t2") == _config(here / "t1")
    capsys.readouterr()
    assert main(["train", "--out", "t3"]) == 2
    assert "MODEL is required" in capsys.readouterr().err


def test_config_is_the_one_flag_outside_the_groups() -> None:
    for command in ("nas search", "gridsearch", "nas train"):
        p = parser_of(command)
        assert isinstance(p, argparse.ArgumentParser)
        assert "--config" in {o for a in p._optionals._group_actions for o in a.option_strings}


@pytest.mark.parametrize("fixture", ["legacy-0.1/s1", "legacy-0.2/s1"])
def test_an_old_run_folders_config_json_is_a_config_too(fixture) -> None:
    """0.1's config.json says no stage: its nested settings tell it from a file of flags."""
    from nas.commands.common import request_from_args
    from nas.commands.config_file import read_config_file
    from nas.stage1.config import SearchConfig

    path = Path(__file__).resolve().parents[1] / "fixtures" / fixture / "config.json"
    args = read_config_file(parser_of("nas search").parse_args(["--config", str(path)]),
                            search_cmd.RUN_CONFIG)
    r = request_from_args(args, stage="1", flags=search_cmd.FLAGS,
                          from_dict=SearchConfig.from_dict, fresh=search_cmd._fresh)
    assert r.config == SearchConfig.from_dict(json.loads(path.read_text()))
    assert not r.resume and r.out is None
    assert r.config.reduction_factor == 3  # repeated as it ran: keeping the best third


def test_a_supernet_runs_config_json_is_a_config_too(here) -> None:
    """Its supernet settings are read back; what the run derived from them (the settings block
    and the fingerprint) is output, ignored by name."""
    from nas.commands.common import request_from_args
    from nas.commands.config_file import read_config_file
    from nas.stage1.config import SearchConfig
    from nas.stage1.supernet_config import SupernetConfig

    config = SearchConfig(target_macs=2_000_000, space="tiny.yaml", evaluator="supernet",
                          supernet=SupernetConfig(epochs=5))
    (here / "run.json").write_text(json.dumps({
        "stage": 1, **config.to_dict(), "storage": None, "study_name": "stage1",
        "supernet_settings": {"anything": 1}, "supernet_fingerprint": "abc",
        "device": {"requested": "auto", "resolved": "cpu"}}))
    args = read_config_file(parser_of("nas search").parse_args(["--config", "run.json"]),
                            search_cmd.RUN_CONFIG)
    r = request_from_args(args, stage="1", flags=search_cmd.FLAGS,
                          from_dict=SearchConfig.from_dict, fresh=search_cmd._fresh)
    assert r.config == config
