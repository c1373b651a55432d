"""Class activation maps (nas.cam): shapes, the pooling identity, the corner test, outputs."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nas.cam import (WRITERS, cam_info, checkpoint_cam, class_activation_maps, colorize,
                     normalize_maps, upsample, write_cam)
from nas.cli import main
from nas.train import TrainConfig, TrainJob, fit, train
from space import ArchSpec, StageSpec, StemSpec, build, save_spec

# Total stride 4: a 32 px input gives an 8x8 map, fine enough to locate a corner.
CAM_SPEC = ArchSpec(name="cam-tiny", stem=StemSpec(channels=8, stride=2), stages=(
    StageSpec("mbconv", 1, 3, 2, 16, expand_ratio=3.0),
    StageSpec("mbconv", 1, 3, 1, 24, expand_ratio=3.0)), head_channels=32, in_channels=1,
    num_classes=2, resolution=32, dropout=0.0, drop_connect=0.0, bn_momentum=0.1)


def test_shapes_and_the_pooling_identity() -> None:
    model = build(CAM_SPEC.replace(num_classes=5), seed=0).eval()
    x = torch.randn(3, 1, 32, 32)
    info = cam_info(model, x, labels=torch.tensor([0, 1, 2]), mean=[0.5], std=[0.25])
    assert info.maps.shape == info.heat.shape == (3, 32, 32)
    assert info.feature_maps.shape == (3, 8, 8) and info.images.shape == (3, 1, 32, 32)
    assert info.predicted.shape == info.probability.shape == (3,)
    assert float(info.heat.min()) == 0.0 and float(info.heat.max()) == pytest.approx(1.0)
    assert len(info.class_names) == 5 and info.class_names[0] == "class0"
    # The classifier sees the map's average: mean CAM_k + b_k is logit k, for every class.
    with torch.no_grad():
        logits = model(x)
    for k in range(5):
        maps, _, _ = class_activation_maps(model, x, target=torch.full((3,), k))
        torch.testing.assert_close(maps.mean(dim=(1, 2)) + model.classifier.bias[k],
                                   logits[:, k], rtol=1e-4, atol=1e-5)
    assert torch.equal(info.predicted, logits.argmax(1))
    torch.testing.assert_close(info.images, (x * 0.25 + 0.5).clamp(0, 1))


def corner_data(n: int, *, seed: int, size: int = 32) -> tuple[torch.Tensor, ...]:
    """Class 1: a bright square in one of the four corners over noise; class 0: noise only."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, size, size, generator=g) * 0.5
    y = torch.arange(n) % 2
    corner = torch.randint(0, 4, (n,), generator=g)  # 0 top-left, 1 top-right, 2 bottom-left
    b = size // 4
    for i in torch.nonzero(y).squeeze(1).tolist():
        r = 1 if corner[i] < 2 else size - b - 1
        c = 1 if corner[i] % 2 == 0 else size - b - 1
        x[i, 0, r:r + b, c:c + b] += 2.0
    return x, y, corner


def test_map_peaks_where_the_class_evidence_sits() -> None:
    x, y, _ = corner_data(384, seed=0)
    vx, vy, vcorner = corner_data(64, seed=1)
    model = build(CAM_SPEC, seed=0)
    result = fit(model, x, y, vx, vy, seed=0, config=TrainConfig(
        epochs=3, batch_size=32, optimizer="adamw", lr=3e-3, schedule="constant",
        weight_decay=0.0, channels_last=False, threads=1))
    assert result.accuracy >= 0.9
    info = cam_info(model, vx, target=torch.ones(len(vx), dtype=torch.long))
    peak = info.maps.flatten(1).argmax(dim=1)
    quadrant = (peak // 32 >= 16).long() * 2 + (peak % 32 >= 16).long()
    with_square = vy == 1
    hits = (quadrant[with_square] == vcorner[with_square]).float().mean()
    assert hits >= 0.9, f"CAM peaked in the square's quadrant for only {hits:.0%} of images"


def test_a_flat_map_normalizes_to_zeros_not_noise() -> None:
    flat = upsample(torch.full((2, 1, 1), 3.7), 32)
    assert torch.equal(normalize_maps(flat), torch.zeros(2, 32, 32))
    ramp = torch.arange(4.0).view(1, 2, 2)
    assert normalize_maps(ramp).flatten().tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_colorize_ends() -> None:
    rgb = colorize(torch.tensor([[0.0, 1.0]]))
    assert rgb.shape == (1, 2, 3) and rgb.dtype == torch.uint8
    assert rgb[0, 0].tolist() == [0, 0, 4] and rgb[0, 1].tolist() == [252, 255, 164]


def test_writers_html_and_png(tmp_path: Path) -> None:
    from PIL import Image

    info = cam_info(build(CAM_SPEC, seed=0), torch.randn(5, 1, 32, 32),
                    labels=torch.tensor([0, 1, 0, 1, 1]))
    html = write_cam(info, tmp_path / "cam.html", per_row=2, title="t")
    text = html.read_text()
    assert "plotly" in text and 'src="https://cdn' not in text  # self-contained
    assert text.count('"type":"image"') == 10  # input and map for each of 5 images
    png = write_cam(info, tmp_path / "sub" / "cam.png", per_row=2)
    with Image.open(png) as img:
        # 32 px inputs are enlarged 3x to 96 px; 2 images per row, 3 rows
        assert img.format == "PNG" and img.width > 2 * 2 * 96 and img.height > 3 * 96
    assert set(WRITERS.names()) == {".html", ".png"}
    with pytest.raises(ValueError, match="known: .html, .png"):
        write_cam(info, tmp_path / "cam.jpg")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cam-run")
    spec = save_spec(CAM_SPEC.replace(num_classes=10, resolution=16), root / "spec.json")
    out = root / "run"
    train(TrainJob(model=str(spec), dataset="synthetic", epochs=1, train_samples=96,
                   val_samples=40, batch_size=32, threads=1), out=out)
    return out


def test_checkpoint_cam_uses_the_validation_split(trained_run: Path) -> None:
    from nas.data import load_dataset, proxy_data

    info = checkpoint_cam(trained_run, images=6)
    val = proxy_data(load_dataset("synthetic"), resolution=16, train_samples=96, val_samples=40,
                     seed=0)
    assert info.maps.shape == (6, 16, 16) and torch.equal(info.labels, val.val_y[:6])
    raw = checkpoint_cam(trained_run, images=6, weights="raw")
    assert not torch.allclose(raw.maps, info.maps)  # EMA and raw weights differ
    with pytest.raises(ValueError, match="4 classes, but checkpoint .* was trained for 10"):
        checkpoint_cam(trained_run, images=2, dataset="synthetic:classes=4")
    with pytest.raises(ValueError, match="at most --images 40"):
        checkpoint_cam(trained_run, images=41)


def test_one_by_one_features_are_refused(tmp_path: Path) -> None:
    # Total stride 8 at 8 px: the last features are 1x1, a CAM would be one flat value.
    spec = save_spec(CAM_SPEC.replace(stages=CAM_SPEC.stages + (
        StageSpec("mbconv", 1, 3, 2, 24, expand_ratio=3.0),), resolution=8), tmp_path / "s.json")
    train(TrainJob(model=str(spec), dataset="synthetic", epochs=1, train_samples=64,
                   val_samples=20, resolution=8, threads=1), out=tmp_path / "run")
    with pytest.raises(ValueError, match="1x1 features .total stride 8.*--resolution 16"):
        checkpoint_cam(tmp_path / "run", images=2)


def test_cli_cam(trained_run: Path, tmp_path: Path, capsys) -> None:
    assert main(["cam", str(trained_run), "--images", "3", "-o", str(tmp_path / "c.png"),
                 "--per-row", "3", "--weights", "raw"]) == 0
    assert (tmp_path / "c.png").is_file() and "3 images" in capsys.readouterr().out
    ckpt = next((trained_run / "checkpoints").iterdir())
    assert main(["cam", str(ckpt), "--images", "2"]) == 0
    assert (trained_run / "cam.html").is_file()  # default: next to the run


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/ckpt.pt"], "does not exist"),
    (["RUN", "--dataset", "synthetic:classes=3"], "3 classes"),
    (["RUN", "-o", "x.gif"], "known: .html, .png"),
    (["RUN", "--images", "0"], "images >= 1"),
])
def test_cli_cam_bad_input(args: list[str], message: str, trained_run: Path, tmp_path: Path,
                           capsys) -> None:
    args = [str(trained_run) if a == "RUN" else a for a in args]
    if "-o" in args:
        args[args.index("-o") + 1] = str(tmp_path / "x.gif")
    assert main(["cam", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


# Total stride 32 (EfficientNet's): at nas train's default 32 px the last features are 1x1.
STRIDE_32 = CAM_SPEC.replace(stages=CAM_SPEC.stages + tuple(
    StageSpec("mbconv", 1, 3, 2, 24, expand_ratio=3.0) for _ in range(3)))


@pytest.mark.parametrize("spec, resolution", [(CAM_SPEC, 32), (CAM_SPEC, 9), (STRIDE_32, 32),
                                              (STRIDE_32, 33), (STRIDE_32, 64),
                                              (STRIDE_32, 100)])
def test_feature_size_is_what_the_network_gives(spec, resolution) -> None:
    from nas.cam import feature_size, flat_maps

    model = build(spec.replace(resolution=resolution), seed=0).eval()
    with torch.no_grad():
        h, w = model.forward_features(torch.zeros(1, 1, resolution, resolution)).shape[-2:]
    assert feature_size(spec, resolution) == (h, w)
    assert (flat_maps(spec, resolution) is None) == (h * w > 1)


@pytest.mark.parametrize("spec, val, suggested", [(STRIDE_32, 20, None), (CAM_SPEC, 20, 8),
                                                   (CAM_SPEC, 5, 5)])
def test_nas_train_suggests_only_a_nas_cam_that_works(spec, val, suggested, tmp_path,
                                                      capsys) -> None:
    import shlex

    path = save_spec(spec.replace(num_classes=10), tmp_path / "spec.json")
    run = tmp_path / "run"
    assert main(["train", str(path), "--dataset", "synthetic", "--epochs", "1",
                 "--train-samples", "64", "--val-samples", str(val), "--batch-size", "32",
                 "--threads", "1", "--out", str(run)]) == 0  # at the default 32 px
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("checkpoint:"))
    if suggested is None:  # 1x1 features: no command, and why
        assert "nas cam " not in line
        assert line.endswith("(no nas cam: the model reduces 32 px inputs to 1x1 features "
                             "(total stride 32), so class activation maps hold no spatial "
                             "information; train at --resolution 64 or more (2x2 features; "
                             "128 gives 4x4))")
        with pytest.raises(ValueError, match="1x1 features"):  # as nas cam would say
            checkpoint_cam(run, images=2)
        return
    command = line[line.index("(nas cam ") + 1:-1]
    assert command.endswith(f"--images {suggested}")
    argv = shlex.split(command)[1:] + ["-o", str(tmp_path / "cam.png")]
    assert main(argv) == 0  # the suggested command works
    assert f"{suggested} images" in capsys.readouterr().out
