"""``nas train`` (nas.train): one tiny run end to end, checkpoints, resume, extension, bad input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from nas.cli import main
from nas.train import (CHECKPOINT_DIR, METRIC_COLUMNS, TrainJob, list_checkpoints,
                       load_checkpoint, lr_at, param_groups, pick_device, prepare, train)
from results.rundir import RunFolderInUse, run_lock
from space import ArchSpec, StageSpec, StemSpec, build, save_spec

TINY = ArchSpec(name="tiny", stem=StemSpec(channels=8), stages=(
    StageSpec("mbconv", 1, 3, 1, 8, expand_ratio=1.0, se_ratio=0.25),
    StageSpec("mbconv", 2, 3, 2, 16, expand_ratio=3.0, se_ratio=0.25)), head_channels=32,
    resolution=16)


@pytest.fixture
def tiny_spec(tmp_path: Path) -> str:
    return str(save_spec(TINY, tmp_path / "tiny.json"))


def _job(model: str, **kw) -> TrainJob:
    base = dict(model=model, dataset="synthetic", epochs=1, train_samples=160, val_samples=40,
                batch_size=32, threads=1)
    return TrainJob(**{**base, **kw})


def _read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_one_tiny_epoch_end_to_end(tiny_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    threads = torch.get_num_threads()
    result = train(_job(tiny_spec, threads=threads + 1), out=out)
    assert torch.get_num_threads() == threads  # the caller's setting is left as it was
    assert (out / "spec.json").is_file() and (out / "config.json").is_file()
    rows = _read_metrics(out)
    assert list(rows[0]) == list(METRIC_COLUMNS) and [r["epoch"] for r in rows] == ["1"]
    assert 0 <= float(rows[0]["val_top1"]) <= 1 and float(rows[0]["train_loss"]) > 0
    assert rows[0]["val_top1_ema"] != ""  # the fast recipe keeps an EMA
    res = json.loads((out / "results.json").read_text())
    assert res["test_images"] == 200  # the synthetic test split, untouched until the end
    assert 0 <= res["test_top1"] <= res["test_top5"] <= 1
    assert res["test_top1_ema"] == result.test["top1_ema"] == result.top1
    ckpt = load_checkpoint(out)
    assert ckpt.epoch == 1 and ckpt.path == out / CHECKPOINT_DIR / "epoch-0001.pt"
    # The trained spec is retargeted at the data (1 channel, 10 classes, 16 px) and hashed.
    assert (ckpt.spec.in_channels, ckpt.spec.num_classes, ckpt.spec.resolution) == (1, 10, 16)
    assert ckpt.arch_hash == ckpt.spec.arch_hash() == res["arch_hash"]
    assert ckpt.spec.bn_momentum == 0.1  # the fast recipe's
    assert ckpt.data["val_samples"] == 40 and len(ckpt.data["mean"]) == 1
    assert set(ckpt.optimizer) == {"state", "param_groups"} and ckpt.ema["updates"] == 5


def test_resume_continues_at_the_right_epoch_and_lr_step(tiny_spec: str, tmp_path: Path) -> None:
    job = _job(tiny_spec, epochs=3, keep=2)
    straight = train(job, out=tmp_path / "straight")

    def stop_after_first(row: dict) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(job, out=tmp_path / "cut", on_epoch=stop_after_first)
    assert [p.name for p in list_checkpoints(tmp_path / "cut")] == ["epoch-0001.pt"]
    seen: list[dict] = []
    resumed = train(job, out=tmp_path / "cut", resume=True, on_epoch=seen.append)
    assert [r["epoch"] for r in seen] == [2, 3]  # epoch 1 is not trained again
    cfg = prepare(job).train
    steps = 160 // 32  # each row holds the learning rate of its epoch's last step
    assert [r["lr"] for r in resumed.epochs] == pytest.approx(
        [lr_at(e + (steps - 1) / steps, cfg) for e in range(3)]) == [r["lr"] for r in
                                                                    straight.epochs]
    assert all(r["lr"] > 0 for r in straight.epochs)  # not the warm-up's 0 at the first step
    assert [r["epoch"] for r in _read_metrics(tmp_path / "cut")] == ["1", "2", "3"]
    # The same shuffle, dropout stream, optimizer and EMA state: the same end point.
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "cut")
    for key in a.model:
        torch.testing.assert_close(b.model[key], a.model[key], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(b.ema["module"]["classifier.weight"],
                               a.ema["module"]["classifier.weight"], rtol=1e-5, atol=1e-6)
    assert b.ema["updates"] == a.ema["updates"] == 15
    assert resumed.test == pytest.approx(straight.test)
    assert [p.name for p in list_checkpoints(tmp_path / "cut")] == ["epoch-0002.pt",
                                                                   "epoch-0003.pt"]


def test_resume_refuses_another_spec_and_changed_settings(tiny_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(_job(tiny_spec), out=out)
    other = save_spec(TINY.replace(head_channels=48), tmp_path / "other.json")
    with pytest.raises(ValueError, match="from another spec") as e:
        train(_job(str(other)), out=out, resume=True)
    assert load_checkpoint(out).arch_hash in str(e.value)
    assert "head_channels" in str(e.value)
    with pytest.raises(ValueError, match="--batch-size 16 differs from the resumed run's 32"):
        train(_job(tiny_spec, batch_size=16), out=out, resume=True)
    with pytest.raises(FileExistsError, match="--resume"):
        train(_job(tiny_spec), out=out)


def test_a_run_killed_before_its_first_checkpoint_starts_over(tiny_spec: str,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"job": _job(tiny_spec).to_dict()}))
    with pytest.raises(FileNotFoundError, match="no checkpoint yet"):
        train(_job(tiny_spec), out=out, resume=True)
    assert train(_job(tiny_spec), out=out).epochs[0]["epoch"] == 1


def test_missing_and_broken_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a nas train checkpoint"):
        load_checkpoint(junk)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="format"):
        load_checkpoint(tmp_path / "other.pt")


def test_param_groups_skip_batch_norm() -> None:
    model = build(TINY)
    decay, no_decay = param_groups(model, decay_batch_norm=False)
    bn = [p for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)
          for p in m.parameters()]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == len(bn)
    assert len(decay["params"]) + len(bn) == len(list(model.parameters()))
    assert len(param_groups(model, decay_batch_norm=True)) == 1


def test_pick_device() -> None:
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="--device auto"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA GPU"):
            pick_device("cuda")


def test_cli_train_and_resume(tiny_spec: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    flags = ["--dataset", "synthetic", "--epochs", "1", "--train-samples", "96",
             "--val-samples", "40", "--batch-size", "32", "--resolution", "16", "--seed", "1",
             "--ema-decay", "0", "--threads", "1", "--keep", "1", "--no-channels-last",
             "--recipe", "paper", "--device", "cpu", "--out", str(out)]
    assert main(["train", tiny_spec, *flags]) == 0
    printed = capsys.readouterr().out
    assert "test top-1:" in printed and "EMA" not in printed  # --ema-decay 0: no average
    config = json.loads((out / "config.json").read_text())
    assert config["job"]["recipe"] == "paper" and config["train"]["channels_last"] is False
    assert config["train"]["lr"] == pytest.approx(0.256 * 32 / 4096)
    # Resuming a finished run evaluates again and trains nothing.
    assert main(["train", tiny_spec, "--out", str(out), "--resume", "--threads", "1"]) == 0
    assert [r["epoch"] for r in _read_metrics(out)] == ["1"]


@pytest.mark.parametrize("argv, message", [
    (["train", "no-such-model", "--dataset", "synthetic"], "unknown model"),
    (["train", "efficientnet-b0", "--threads", "0"], "threads >= 1"),
    (["train", "efficientnet-b0", "--resolution", "0"], "resolution >= 8"),
    (["train", "efficientnet-b0", "--dataset", "synthetic", "--epochs", "0"], "epochs >= 1"),
    (["train", "efficientnet-b0", "--dataset", "synthetic", "--ema-decay", "1.5"],
     "0 <= ema decay < 1"),
    (["train", "efficientnet-b0", "--dataset", "synthetic", "--recipe", "imagenet"],
     "unknown recipe"),
    (["train", "efficientnet-b0", "--dataset", "synthetic", "--resume"], "--resume needs --out"),
    (["train", "efficientnet-b0", "--dataset", "synthetic", "--resume", "--out", "/nonexistent"],
     "not a nas train run folder"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_resume_with_another_spec_names_both_hashes(tiny_spec: str, tmp_path: Path,
                                                        capsys) -> None:
    out = tmp_path / "run"
    train(_job(tiny_spec), out=out)
    other = save_spec(TINY.replace(stem=StemSpec(channels=16)), tmp_path / "other.json")
    assert main(["train", str(other), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "from another spec" in err and load_checkpoint(out).arch_hash in err
    assert "stem" in err and len(err.strip().splitlines()) == 1


def test_a_run_folder_in_use_is_refused_and_left_alone(tiny_spec: str, tmp_path: Path,
                                                       capsys) -> None:
    out = tmp_path / "run"
    train(_job(tiny_spec), out=out)
    before = {p.name: p.stat().st_mtime_ns for p in (out / CHECKPOINT_DIR).iterdir()}
    with run_lock(out, command="nas train"):  # another process (flock is per open file)
        with pytest.raises(RunFolderInUse, match="in use by another process"):
            train(_job(tiny_spec), out=out, resume=True)
        assert main(["train", tiny_spec, "--out", str(out), "--resume"]) == 2
        err = capsys.readouterr().err.strip()
        assert "in use by another process" in err and len(err.splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in (out / CHECKPOINT_DIR).iterdir()} == before
    train(_job(tiny_spec), out=out, resume=True)  # free again once the holder is done


def test_bad_input_leaves_no_run_folder_behind(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(KeyError, match="unknown model"):
        train(_job("no-such-model"), out=out)
    assert not out.exists()


def test_a_file_system_without_locks_still_trains(tiny_spec: str, tmp_path: Path, monkeypatch,
                                                  caplog) -> None:
    import errno
    import fcntl

    def no_locks(*_a, **_k):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with caplog.at_level("WARNING", logger="results.rundir"):
        result = train(_job(tiny_spec), out=tmp_path / "run")
    assert result.epochs[0]["epoch"] == 1
    assert "could not lock" in caplog.text and "No locks available" in caplog.text


# --------------------------------------------------------------------------- --resume --epochs N
def test_resume_with_more_epochs_extends_a_finished_run(tiny_spec: str, tmp_path: Path,
                                                         caplog) -> None:
    out = tmp_path / "run"
    first = train(_job(tiny_spec, epochs=1), out=out)
    seen: list[dict] = []
    with caplog.at_level("INFO", logger="nas.train.run"):
        extended = train(_job(tiny_spec, epochs=2), out=out, resume=True, on_epoch=seen.append)
    assert [r["epoch"] for r in seen] == [2]  # exactly one more epoch, epoch 1 not repeated
    assert "extending the run from 1 to 2 epochs: the schedule is re-planned to end at 2" \
        in caplog.text
    assert [r["epoch"] for r in _read_metrics(out)] == ["1", "2"]
    assert extended.epochs[0] == first.epochs[0]  # the first row is kept as it was
    # The schedule is the one a fresh 2-epoch run plans: its lr at epoch 2's last step.
    steps = 160 // 32
    fresh = prepare(_job(tiny_spec, epochs=2)).train
    assert fresh.epochs == 2
    assert extended.epochs[1]["lr"] == pytest.approx(lr_at(1 + (steps - 1) / steps, fresh))
    assert extended.epochs[1]["lr"] > 0  # the 1-epoch plan had decayed to 0 there
    ckpt = load_checkpoint(out)
    assert ckpt.epoch == 2 and ckpt.ema["updates"] == 2 * steps and ckpt.train["epochs"] == 2
    config = json.loads((out / "config.json").read_text())
    results = json.loads((out / "results.json").read_text())
    assert config["stage"] == "train" and config["train"]["epochs"] == 2
    assert config["replanned_from"] == 1 and results["replanned_from"] == 1
    assert results["epochs"] == 2
    # A later plain resume keeps the record and trains nothing.
    again = train(_job(tiny_spec, epochs=2), out=out, resume=True, on_epoch=seen.append)
    assert len(seen) == 1 and len(again.epochs) == 2
    assert json.loads((out / "config.json").read_text())["replanned_from"] == 1


def test_resume_can_shorten_a_run_not_yet_finished(tiny_spec: str, tmp_path: Path) -> None:
    def stop_after_first(row: dict) -> None:
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(_job(tiny_spec, epochs=3), out=out, on_epoch=stop_after_first)
    seen: list[dict] = []
    result = train(_job(tiny_spec, epochs=2), out=out, resume=True, on_epoch=seen.append)
    assert [r["epoch"] for r in seen] == [2]
    steps = 160 // 32
    assert result.epochs[1]["lr"] == pytest.approx(
        lr_at(1 + (steps - 1) / steps, prepare(_job(tiny_spec, epochs=2)).train))
    assert json.loads((out / "results.json").read_text())["replanned_from"] == 3


def test_resume_to_the_epochs_done_only_evaluates(tiny_spec: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(_job(tiny_spec, epochs=2), out=out)
    before = load_checkpoint(out).path.stat().st_mtime_ns
    result = train(_job(tiny_spec, epochs=2), out=out, resume=True)
    assert [r["epoch"] for r in result.epochs] == [1, 2]
    assert load_checkpoint(out).path.stat().st_mtime_ns == before  # nothing trained
    assert "replanned_from" not in json.loads((out / "config.json").read_text())


def test_resume_below_the_epochs_done_is_refused(tiny_spec: str, tmp_path: Path,
                                                 capsys) -> None:
    out = tmp_path / "run"
    train(_job(tiny_spec, epochs=2), out=out)
    before = (out / "config.json").read_text()
    with pytest.raises(ValueError, match=r"`--epochs >= 2` \(the epochs already trained\)"):
        train(_job(tiny_spec, epochs=1), out=out, resume=True)
    assert main(["train", tiny_spec, "--out", str(out), "--resume", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--epochs >= 2" in err and "got --epochs 1" in err and "pass --epochs 2 or more" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert (out / "config.json").read_text() == before  # refused before anything was written
    assert [r["epoch"] for r in _read_metrics(out)] == ["1", "2"]


def test_cli_resume_with_more_epochs(tiny_spec: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    flags = ["--dataset", "synthetic", "--train-samples", "96", "--val-samples", "40",
             "--batch-size", "32", "--threads", "1", "--device", "cpu", "--out", str(out)]
    assert main(["train", tiny_spec, "--epochs", "1", *flags]) == 0
    assert main(["train", tiny_spec, "--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert "epochs: 2" in capsys.readouterr().out
    assert [r["epoch"] for r in _read_metrics(out)] == ["1", "2"]
    assert json.loads((out / "config.json").read_text())["job"]["epochs"] == 2
