"""``--device`` for both stages and ``nas train``, the on-device data path, the speed levers and
``--trials-per-device``. The GPU tests are marked ``gpu`` and skip without CUDA."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gridsearch.cli import main as gridsearch_main
from nas.backends import BackendConfig
from nas.cli import main as nas_main
from nas.data import ImageSplit, device_splits, load_dataset, proxy_data
from nas.evaluate import ProxyConfig, evaluate_proxy
from nas.search import SearchConfig, run_search
from nas.train import TrainConfig, TrainJob, evaluate, fit
from nas.train.device import check_device_name, resolve_device, trial_device
from space import ArchSpec, StageSpec, StemSpec, build, save_spec
from space.deploy import Deployment

HAS_CUDA = torch.cuda.is_available()
gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (torch sees none)")

TINY = ArchSpec(name="tiny", stem=StemSpec(channels=8), stages=(
    StageSpec("mbconv", 1, 3, 1, 8, expand_ratio=1.0, se_ratio=0.25),
    StageSpec("mbconv", 2, 3, 2, 16, expand_ratio=3.0, se_ratio=0.25)), head_channels=32,
    resolution=16, in_channels=1, num_classes=10)

SEARCH = ["search", "--target-flops", "2M", "--dataset", "synthetic", "--proxy-resolution", "16",
          "--train-samples", "120", "--val-samples", "60", "--epochs", "1", "--batch-size", "32",
          "--threads", "1", "--pruner", "none", "--deploy-resolution", "32"]


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch believes in two GPUs (only the resolver is asked; nothing trains)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


# ------------------------------------------------------------------------- device selection
@pytest.mark.parametrize("name, want", [("cpu", "cpu"), ("auto", "cuda:0"), ("cuda", "cuda:0"),
                                        ("cuda:1", "cuda:1")])
def test_resolve_device_with_gpus(two_gpus: None, name: str, want: str) -> None:
    assert str(resolve_device(name)) == want


@pytest.mark.parametrize("name, want", [("cpu", "cpu"), ("auto", "cpu")])
def test_resolve_device_without_gpu(no_cuda: None, name: str, want: str) -> None:
    assert str(resolve_device(name)) == want


@pytest.mark.parametrize("name, match", [
    ("tpu", "unknown device 'tpu'"), ("cuda:x", "unknown device"), ("cpu:1", "unknown device"),
    ("", "unknown device"), ("CUDA", "unknown device"), ("mps", "unknown device")])
def test_bad_device_names(name: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_device_name(name)
    with pytest.raises(ValueError, match="pass --device auto, cpu, cuda or cuda:N"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_gpu_is_an_error(no_cuda: None, name: str) -> None:
    with pytest.raises(ValueError, match="needs a CUDA GPU, but torch sees none"):
        resolve_device(name)


def test_gpu_index_beyond_the_count_is_an_error(two_gpus: None) -> None:
    with pytest.raises(ValueError, match=r"torch sees 2 GPU\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:7")


@pytest.mark.parametrize("name, gpus, want", [("auto", 1, "cuda"), ("cuda", 0.5, "cuda"),
                                              ("cpu", 1, "cpu"), ("auto", 0, "cpu")])
def test_a_ray_trial_trains_on_the_gpu_ray_gave_it(name: str, gpus: float, want: str) -> None:
    assert trial_device(name, gpus=gpus) == want


def test_ray_backend_with_cuda_needs_a_gpu_per_trial() -> None:
    assert BackendConfig(name="ray", gpus_per_trial=1).trial_device("auto") == "cuda"
    with pytest.raises(ValueError, match="--gpus-per-trial 1"):
        BackendConfig(name="ray").trial_device("cuda")
    with pytest.raises(ValueError, match="--trials-per-device is for the local backend"):
        BackendConfig(name="ray", trials_per_device=2)


def _cli(kind: str, out: Path, device: str) -> list[str]:
    if kind == "search":
        return [*SEARCH, "--device", device, "--out", str(out)]
    if kind == "train":
        return ["train", "efficientnet-b0", "--dataset", "synthetic", "--device", device,
                "--out", str(out)]
    return ["--phi", "1", "--device", device, "--out", str(out)]


@pytest.mark.parametrize("kind", ["search", "train", "gridsearch"])
@pytest.mark.parametrize("device, match", [("tpu", "unknown device 'tpu'"),
                                           ("cuda", "needs a CUDA GPU"),
                                           ("cuda:7", "needs a CUDA GPU")])
def test_cli_bad_device_is_one_line_exit_2_nothing_written(
        no_cuda: None, kind: str, device: str, match: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    run = gridsearch_main if kind == "gridsearch" else nas_main
    assert run(_cli(kind, out, device)) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_cli_gpu_index_beyond_the_count(two_gpus: None, tmp_path: Path, capsys) -> None:
    assert nas_main([*SEARCH, "--device", "cuda:7", "--out", str(tmp_path / "run")]) == 2
    assert "torch sees 2 GPU(s)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_job_records_requested_and_resolved_device(tmp_path: Path) -> None:
    spec = str(save_spec(TINY, tmp_path / "tiny.json"))
    out = tmp_path / "train"
    assert nas_main(["train", spec, "--dataset", "synthetic", "--epochs", "1",
                     "--train-samples", "64", "--val-samples", "40", "--batch-size", "32",
                     "--ema-decay", "0", "--threads", "1", "--device", "auto",
                     "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["device"] == {"requested": "auto", "resolved": str(resolve_device("auto"))}
    with pytest.raises(ValueError, match="unknown device"):
        TrainJob(model=spec, device="tpu")


# ------------------------------------------------------------------------- resume
def test_search_resume_may_change_the_device(tmp_path: Path, tiny_space_file: str, capsys) -> None:
    space = Path(tiny_space_file)
    out = tmp_path / "run"
    base = [*SEARCH, "--space", str(space), "--out", str(out)]
    assert nas_main([*base, "--trials", "2", "--device", "cpu"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["device"] == {"requested": "cpu", "resolved": "cpu"}
    assert config["proxy"]["device"] == "cpu"
    # cpu -> auto on --resume: allowed; the run goes on and records the new device
    assert nas_main(["search", "--resume", "--out", str(out), "--trials", "3",
                     "--device", "auto"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["device"] == {"requested": "auto", "resolved": str(resolve_device("auto"))}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["states"].get("COMPLETE", 0) >= 3
    # bf16 changes what a trial computes: refused on --resume
    capsys.readouterr()
    assert nas_main(["search", "--resume", "--out", str(out), "--precision", "bf16"]) == 2
    assert "--precision 'bf16' differs from the resumed run's 'fp32'" in capsys.readouterr().err


# ------------------------------------------------------------------------- on-device data
def _tiny_proxy(ds, resolution: int = 16):
    return proxy_data(ds, resolution=resolution, train_samples=200, val_samples=100, seed=0)


@pytest.mark.parametrize("resolution", [8, 16, 24])  # shrink (antialiased), same, enlarge
def test_device_split_batches_equal_the_prepared_tensors(synthetic_ds, resolution: int) -> None:
    data = _tiny_proxy(synthetic_ds, resolution)
    train, val = device_splits(synthetic_ds, data)
    assert train.images.dtype == torch.uint8 and train.images.shape[-1] == 16
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:50]
    x, y = train.batch(idx)
    assert torch.equal(x, data.train_x[idx]) and torch.equal(y, data.train_y[idx])
    assert torch.equal(val.batch(slice(None))[0], data.val_x)


def _fit_once(seed: int, train, train_y, val, val_y, **cfg):
    config = TrainConfig(epochs=2, batch_size=32, lr=0.05, warmup_epochs=0.2, threads=1, **cfg)
    model = build(TINY, seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result = fit(model, train, train_y, val, val_y, config=config, seed=seed)
    return result, model


@pytest.mark.parametrize("seed, channels_last", [(0, True), (3, False)])
def test_on_device_path_trains_exactly_like_prepared_tensors(synthetic_ds, seed: int,
                                                             channels_last: bool) -> None:
    """The uint8 on-device path (ImageSplit, one sync per epoch) against today's path (the
    float tensors of proxy_data): the same losses, accuracies, learning rates and weights."""
    data = _tiny_proxy(synthetic_ds)
    train, val = device_splits(synthetic_ds, data)
    old, old_model = _fit_once(seed, data.train_x, data.train_y, data.val_x, data.val_y,
                               channels_last=channels_last)
    new, new_model = _fit_once(seed, train, None, val, None, channels_last=channels_last)
    got = [(e.train_loss, e.val_accuracy, e.lr) for e in new.epochs]
    assert got == [(e.train_loss, e.val_accuracy, e.lr) for e in old.epochs]
    fresh = build(TINY, seed=seed).state_dict()  # training moved the weights: the test has teeth
    assert any(not torch.equal(v, fresh[k]) for k, v in old_model.state_dict().items())
    for k, v in old_model.state_dict().items():
        assert torch.equal(v, new_model.state_dict()[k]), k
    assert evaluate(new_model, val, topk=(1, 3)) == \
        evaluate(old_model, data.val_x, data.val_y, topk=(1, 3))


def test_evaluate_topk_counts_by_hand() -> None:
    class Fixed(torch.nn.Module):  # logits rank the classes 0 > 1 > 2 for every image
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.tensor([[3.0, 2.0, 1.0]]).expand(len(x), 3) + self.w

    x = torch.zeros(4, 1, 2, 2)
    y = torch.tensor([0, 1, 2, 1])
    assert evaluate(Fixed(), x, y, topk=(1, 2, 5), batch_size=3) == (0.25, 0.75, 1.0)


def test_non_finite_loss_raises_after_the_epoch(synthetic_ds) -> None:
    data = _tiny_proxy(synthetic_ds)
    train, val = device_splits(synthetic_ds, data)
    model = build(TINY, seed=0)
    with pytest.raises(FloatingPointError, match=r"epoch 1; first not finite at step \d+"):
        fit(model, train, None, val, None, seed=0,
            config=TrainConfig(epochs=1, batch_size=32, lr=1e6, threads=1))


def test_image_split_checks_its_input() -> None:
    with pytest.raises(TypeError, match="uint8"):
        ImageSplit(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), 4, (0.5,), (0.2,))


# ------------------------------------------------------------------------- speed levers
def test_bf16_autocast_trains_on_cpu(synthetic_ds) -> None:
    data = _tiny_proxy(synthetic_ds)
    train, val = device_splits(synthetic_ds, data)
    fp32, _ = _fit_once(0, train, None, val, None)
    bf16, _ = _fit_once(0, train, None, val, None, precision="bf16")
    assert all(torch.isfinite(torch.tensor(e.train_loss)) for e in bf16.epochs)
    assert bf16.epochs[0].train_loss != fp32.epochs[0].train_loss  # autocast did act
    assert abs(bf16.epochs[0].train_loss - fp32.epochs[0].train_loss) < 0.1
    with pytest.raises(KeyError, match="fp16"):
        TrainConfig(precision="fp16")


@pytest.mark.slow
def test_compiled_step_trains_like_eager_on_cpu(synthetic_ds) -> None:
    data = _tiny_proxy(synthetic_ds)
    train, val = device_splits(synthetic_ds, data)
    eager, _ = _fit_once(0, train, None, val, None)
    compiled, _ = _fit_once(0, train, None, val, None, compile="default")
    # fused kernels round differently, and two epochs carry that on: close, not equal
    for a, b in zip(eager.epochs, compiled.epochs):
        assert b.train_loss == pytest.approx(a.train_loss, rel=2e-2)


def test_trials_per_device_runs_trials_as_one_at_a_time_would(tmp_path: Path, tiny_space_file: str) -> None:
    """Two worker processes: every trial trains as it would alone (a trial's result depends on
    its network, proxy and seed only), so an architecture both runs trained scores the same."""
    space = Path(tiny_space_file)
    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=120, val_samples=60,
                        device="cpu", train=TrainConfig(epochs=2, batch_size=32, lr=0.05,
                                                        threads=1))
    cfg = SearchConfig(target_macs=2_000_000, space=str(space), trials=4, timeout=None,
                       sampler="random", seed=0, proxy=proxy, deploy=Deployment(resolution=32),
                       pruner="none")
    runs = {}
    for n in (1, 2):
        res = run_search(cfg, out=tmp_path / f"n{n}", evaluate=evaluate_proxy,
                         backend=BackendConfig(trials_per_device=n))
        assert res.summary["states"] == {"COMPLETE": res.summary["trials"]}
        import pandas as pd

        df = pd.read_csv(tmp_path / f"n{n}" / "trials.csv")
        runs[n] = dict(zip(df["arch_hash"], df["accuracy"]))
    shared = set(runs[1]) & set(runs[2])
    assert shared  # the random sampler with one seed asks for the same first architectures
    assert {h: runs[1][h] for h in shared} == {h: runs[2][h] for h in shared}
    summary = json.loads((tmp_path / "n2" / "summary.json").read_text())
    assert summary["backend"]["trials_per_device"] == 2


def test_trials_per_device_must_be_positive() -> None:
    with pytest.raises(ValueError, match="--trials-per-device 2"):
        BackendConfig(trials_per_device=0)


# ------------------------------------------------------------------------- on a GPU
@gpu
@needs_cuda
def test_gpu_device_split_matches_cpu(synthetic_ds) -> None:
    data = _tiny_proxy(synthetic_ds)
    train, _ = device_splits(synthetic_ds, data, device="cuda")
    assert train.images.is_cuda and train.images.dtype == torch.uint8
    x, y = train.batch(torch.arange(40, device="cuda"))
    torch.testing.assert_close(x.cpu(), data.train_x[:40], rtol=1e-5, atol=1e-5)
    assert torch.equal(y.cpu(), data.train_y[:40])


@gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_gpu_proxy_trial_trains(precision: str) -> None:
    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=200, val_samples=100,
                        device="cuda", train=TrainConfig(epochs=1, batch_size=32,
                                                         precision=precision))
    r = evaluate_proxy(TINY, proxy, seed=0)
    assert 0.0 <= r.accuracy <= 1.0 and r.images_per_sec > 0
    assert next(iter(load_dataset("synthetic").train_images.shape)) == 600


@pytest.mark.parametrize("extra, lr", [(["--batch-size", "128"], 0.1),
                                       (["--batch-size", "128", "--lr", "0.01"], 0.01),
                                       ([], 0.05)])
def test_batch_size_scales_the_default_lr(tmp_path: Path, tiny_space_file: str, extra: list[str], lr: float) -> None:
    """The proxy's lr 0.05 is for 64 images a step; --batch-size 128 alone makes it 0.1."""
    space = Path(tiny_space_file)
    out = tmp_path / "run"
    i = SEARCH.index("--batch-size")
    argv = SEARCH[:i] + SEARCH[i + 2:]
    assert nas_main([*argv, "--space", str(space), "--trials", "1", *extra, "--out",
                     str(out)]) == 0
    train = json.loads((out / "config.json").read_text())["proxy"]["train"]
    assert train["lr"] == pytest.approx(lr)
