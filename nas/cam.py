"""Class activation maps: where a trained network looks (EfficientNet Sec. 5.3, Fig. 7).

A class activation map (Zhou et al., CVPR 2016) weighs the last convolutional features
``F = Network.forward_features(x)`` (C x h x w, after the 1x1 head conv) by the classifier's
weights for one class::

    CAM_k(i, j) = sum_c W[k, c] * F[c, i, j]

The classifier sees the global average of ``F``, so ``mean_ij CAM_k + b_k`` is exactly logit ``k``
(dropout is off in eval mode). The map is upsampled bilinearly to the input size.

Compute, then draw: :func:`cam_info` returns a :class:`CamInfo` (tensors only; tests check it),
:func:`render_panels` turns it into RGB arrays, and the writers in :data:`WRITERS` (``.html``
with Plotly, self-contained; ``.png`` with Pillow) lay out a grid: per image, the input, the map
over it, and the predicted class (with the true one).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from space.registry import Registry

if TYPE_CHECKING:
    from space import ArchSpec

log = logging.getLogger(__name__)

# Anchor colors of a perceptual "inferno"-like ramp (black -> purple -> orange -> yellow),
# interpolated linearly; no matplotlib needed.
_RAMP = torch.tensor([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                      [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=torch.float32)
OVERLAY_ALPHA = 0.55  # weight of the heat map over the image


class CamInfo(NamedTuple):
    """What a CAM figure shows. ``images`` are in [0, 1] for display (N, C, H, W); ``maps`` are
    the raw maps of the target class upsampled to (N, H, W); ``heat`` is each map rescaled to
    [0, 1]; ``feature_maps`` the maps at feature resolution (N, h, w)."""

    images: torch.Tensor
    maps: torch.Tensor
    heat: torch.Tensor
    feature_maps: torch.Tensor
    target: torch.Tensor  # class each map is for (the predicted one unless given)
    predicted: torch.Tensor
    probability: torch.Tensor  # softmax probability of the predicted class
    labels: torch.Tensor | None
    class_names: tuple[str, ...]


def _features_and_classifier(model: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor],
                                                        nn.Linear]:
    features = getattr(model, "forward_features", None)
    classifier = getattr(model, "classifier", None)
    if not callable(features) or not isinstance(classifier, nn.Linear):
        raise TypeError(f"class activation maps need a model with forward_features() and a "
                        f"Linear `classifier` after global pooling (space.Network), but got "
                        f"{type(model).__name__}")
    return features, classifier


@torch.no_grad()
def class_activation_maps(model: nn.Module, x: torch.Tensor, *,
                          target: torch.Tensor | None = None,
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(maps, logits, target)``: feature-resolution maps (N, h, w) for ``target`` (default:
    the predicted class) and the logits, from one forward pass in eval mode."""
    features_of, classifier = _features_and_classifier(model)
    was_training = model.training
    model.eval()
    try:
        feats = features_of(x).float()  # (N, C, h, w)
        logits = model.forward_head(feats) if hasattr(model, "forward_head") else \
            classifier(feats.mean(dim=(2, 3)))
    finally:
        model.train(was_training)
    if target is None:
        target = logits.argmax(dim=1)
    weights = classifier.weight.float()[target]  # (N, C)
    maps = torch.einsum("nc,nchw->nhw", weights, feats)
    return maps, logits, target


def upsample(maps: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(N, h, w) -> (N, H, W), bilinear."""
    size = (size, size) if isinstance(size, int) else size
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear",
                         align_corners=False).squeeze(1)


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Each map min-max scaled to [0, 1]. A map flat to float precision (e.g. upsampled from a
    1x1 feature map) becomes zeros rather than amplified rounding noise."""
    flat = maps.flatten(1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    scale = torch.maximum(hi.abs(), lo.abs()).clamp_min(1e-12)
    span = hi - lo
    flat_map = span <= 1e-5 * scale
    out = (maps - lo[:, None, None]) / span.clamp_min(1e-12)[:, None, None]
    return torch.where(flat_map[:, None, None], torch.zeros_like(out), out)


def cam_info(model: nn.Module, x: torch.Tensor, *, labels: torch.Tensor | None = None,
             class_names: Sequence[str] | None = None, mean: Sequence[float] | None = None,
             std: Sequence[float] | None = None, target: torch.Tensor | None = None) -> CamInfo:
    """CAMs of ``x`` (normalized model inputs, (N, C, H, W)); ``mean``/``std`` undo the
    normalization for display."""
    if x.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), but got shape {tuple(x.shape)}")
    device = next(iter(model.parameters()), torch.empty(0)).device
    feature_maps, logits, target = class_activation_maps(model, x.to(device), target=target)
    feature_maps, logits, target = feature_maps.cpu(), logits.cpu(), target.cpu()
    maps = upsample(feature_maps, tuple(x.shape[-2:]))
    probs = logits.float().softmax(dim=1)
    predicted = probs.argmax(dim=1)
    k = logits.shape[1]
    names = tuple(class_names) if class_names is not None else tuple(f"class{i}" for i in range(k))
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a model with {k} classes")
    shape = (1, -1, 1, 1)
    m = torch.tensor(mean if mean is not None else [0.0] * x.shape[1]).view(shape)
    s = torch.tensor(std if std is not None else [1.0] * x.shape[1]).view(shape)
    images = (x.cpu().float() * s + m).clamp(0, 1)
    return CamInfo(images=images, maps=maps, heat=normalize_maps(maps), feature_maps=feature_maps,
                   target=target, predicted=predicted,
                   probability=probs.gather(1, predicted[:, None]).squeeze(1),
                   labels=None if labels is None else labels.cpu(), class_names=names)


# --------------------------------------------------------------------------- drawing
def colorize(heat: torch.Tensor) -> torch.Tensor:
    """(..., H, W) in [0, 1] -> (..., H, W, 3) uint8 through the ramp."""
    pos = heat.clamp(0, 1) * (len(_RAMP) - 1)
    lo = pos.floor().long().clamp(max=len(_RAMP) - 2)
    frac = (pos - lo).unsqueeze(-1)
    rgb = _RAMP[lo] * (1 - frac) + _RAMP[lo + 1] * frac
    return rgb.round().to(torch.uint8)


class Panels(NamedTuple):
    """RGB uint8 (N, H, W, 3) of the inputs and of the maps over them, plus one caption each."""

    images: torch.Tensor
    overlays: torch.Tensor
    captions: tuple[str, ...]


def caption(info: CamInfo, i: int) -> str:
    pred = int(info.predicted[i])
    text = f"{info.class_names[pred]} {float(info.probability[i]):.0%}"
    if info.labels is not None and int(info.labels[i]) != pred:
        text += f" (true: {info.class_names[int(info.labels[i])]})"
    return text


def render_panels(info: CamInfo) -> Panels:
    imgs = info.images
    if imgs.shape[1] == 1:
        imgs = imgs.expand(-1, 3, -1, -1)
    elif imgs.shape[1] != 3:
        imgs = imgs[:, :1].expand(-1, 3, -1, -1)  # show the first channel of multispectral input
    rgb = (imgs.permute(0, 2, 3, 1) * 255).round().to(torch.uint8)
    heat = colorize(info.heat)
    overlay = (rgb.float() * (1 - OVERLAY_ALPHA) + heat.float() * OVERLAY_ALPHA).round()
    return Panels(images=rgb, overlays=overlay.to(torch.uint8),
                  captions=tuple(caption(info, i) for i in range(len(rgb))))


def write_html(info: CamInfo, path: Path, *, per_row: int = 4, title: str = "") -> Path:
    """A self-contained Plotly page (plotly.js inlined): input and map side by side per image."""
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    panels = render_panels(info)
    n = len(panels.images)
    rows = max(1, -(-n // per_row))
    titles = []
    for r in range(rows):
        for c in range(per_row):
            i = r * per_row + c
            titles += [panels.captions[i], "CAM"] if i < n else ["", ""]
    fig = make_subplots(rows=rows, cols=2 * per_row, subplot_titles=titles,
                        horizontal_spacing=0.01, vertical_spacing=0.06)
    for i in range(n):
        r, c = divmod(i, per_row)
        fig.add_trace(go.Image(z=panels.images[i].numpy(), name=f"image {i}"), row=r + 1,
                      col=2 * c + 1)
        fig.add_trace(go.Image(z=panels.overlays[i].numpy(), name=f"cam {i}"), row=r + 1,
                      col=2 * c + 2)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(title=title or "Class activation maps", height=220 * rows + 80,
                      width=230 * 2 * per_row, margin=dict(l=10, r=10, t=70, b=10))
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path


def write_png(info: CamInfo, path: Path, *, per_row: int = 4, title: str = "") -> Path:
    """A PNG grid (Pillow): per image the input, the map over it, and a caption below."""
    from PIL import Image, ImageDraw, ImageFont

    panels = render_panels(info)
    n, h, w = panels.images.shape[:3]
    scale = max(1, -(-96 // max(h, w)))  # small inputs (28 px) enlarged to ~100 px
    ph, pw = h * scale, w * scale
    gap, text_h = 6, 16
    cols = min(per_row, n)
    rows = -(-n // per_row)
    cell_w, cell_h = 2 * pw + gap, ph + text_h
    top = text_h + gap if title else 0
    canvas = Image.new("RGB", (cols * (cell_w + 2 * gap) + gap, top + rows * (cell_h + gap) + gap),
                       "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    if title:
        draw.text((gap, 2), title, fill="black", font=font)
    for i in range(n):
        r, c = divmod(i, per_row)
        x0, y0 = gap + c * (cell_w + 2 * gap), top + gap + r * (cell_h + gap)
        for j, arr in enumerate((panels.images[i], panels.overlays[i])):
            tile = Image.fromarray(arr.numpy(), "RGB").resize((pw, ph), Image.Resampling.NEAREST)
            canvas.paste(tile, (x0 + j * (pw + gap), y0))
        draw.text((x0, y0 + ph + 2), panels.captions[i], fill="black", font=font)
    canvas.save(path, format="PNG")
    return path


Writer = Callable[..., Path]
WRITERS: Registry[Writer] = Registry("CAM output format")
WRITERS.add(".html", write_html)
WRITERS.add(".png", write_png)


def write_cam(info: CamInfo, path: str | Path, **kw: Any) -> Path:
    """Write ``info`` in the format ``path``'s suffix names (see :data:`WRITERS`)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in WRITERS:
        raise ValueError(f"CAM output {str(p)!r} has suffix {suffix or '(none)'!r}; known: "
                         f"{', '.join(WRITERS.names())}; pass e.g. -o cam.html or -o cam.png")
    p.parent.mkdir(parents=True, exist_ok=True)
    return WRITERS.get(suffix)(info, p, **kw)


# --------------------------------------------------------------------------- from a checkpoint
def total_stride(spec: ArchSpec) -> int:
    """How many input pixels one pixel of the last feature map spans, per side."""
    return spec.stem.stride * (2 if spec.stem.maxpool else 1) * math.prod(
        st.stride for st in spec.stages)


def feature_size(spec: ArchSpec, resolution: int) -> tuple[int, int]:
    """The last feature map's height and width for ``resolution`` px inputs (the analytic
    counter's, which follows the builder's padding: :func:`space.counting.count_blocks`)."""
    from space.counting import count_blocks

    h, w = count_blocks(spec, resolution)[-1][1].hw
    return int(h), int(w)


def flat_maps(spec: ArchSpec, resolution: int) -> str | None:
    """Why class activation maps of ``spec`` at ``resolution`` px would hold no spatial
    information (the last feature map is 1x1), with the resolution to train at instead; None
    when they do. ``nas cam`` refuses such a checkpoint and ``nas train`` suggests no
    ``nas cam`` for it."""
    return None if feature_size(spec, resolution) != (1, 1) else _flat_text(spec, resolution)


def _flat_text(spec: ArchSpec, resolution: int) -> str:
    stride = total_stride(spec)
    return (f"reduces {resolution} px inputs to 1x1 features (total stride {stride}), so class "
            f"activation maps hold no spatial information; train at --resolution {2 * stride} "
            f"or more (2x2 features; {4 * stride} gives 4x4)")



def checkpoint_cam(checkpoint: str | Path, *, images: int, dataset: str | None = None,
                   data_dir: str | None = None, weights: str = "ema") -> CamInfo:
    """CAMs of the first ``images`` validation images (the split held out from the training set
    that the run validated on) for a ``nas train`` checkpoint or run folder.

    ``dataset`` defaults to the one the checkpoint was trained on; another one must have as many
    classes (ValueError otherwise) and is held out and normalized on its own.
    """
    from .data import load_dataset, proxy_data
    from .train import check_classes, load_checkpoint, model_from_checkpoint

    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ValueError(f"`images >= 1` must hold, but got images={images!r}; pass e.g. "
                         f"--images 8")
    ckpt = load_checkpoint(checkpoint)
    d = ckpt.data
    same = dataset is None or dataset == d["dataset"]
    name = d["dataset"] if same else dataset
    ds = load_dataset(name, data_dir=d.get("data_dir") if same and data_dir is None else data_dir)
    check_classes(ckpt, dataset=ds.name, num_classes=ds.num_classes)
    if ds.in_channels != ckpt.spec.in_channels:
        raise ValueError(f"dataset {ds.name!r} has {ds.in_channels}-channel images, but checkpoint "
                         f"{str(ckpt.path)!r} takes {ckpt.spec.in_channels}; pass --dataset "
                         f"{d['dataset']}")
    if same:
        data = proxy_data(ds, resolution=d["resolution"], train_samples=d["train_samples"],
                          val_samples=d["val_samples"], seed=d["seed"])
    else:
        n = len(ds.train_labels)
        data = proxy_data(ds, resolution=d["resolution"], train_samples=None,
                          val_samples=min(max(images, n // 10), n - 1), seed=d["seed"])
    if images > len(data.val_y):
        raise ValueError(f"--images {images} exceeds the {len(data.val_y)} validation images of "
                         f"{ds.name!r}; pass at most --images {len(data.val_y)}")
    model = model_from_checkpoint(ckpt, weights=weights)
    with torch.no_grad():
        h, w = model.forward_features(data.val_x[:1]).shape[-2:]
    if h * w == 1:
        raise ValueError(f"the checkpoint's model {_flat_text(ckpt.spec, d['resolution'])}")
    return cam_info(model, data.val_x[:images], labels=data.val_y[:images],
                    class_names=ds.classes, mean=data.mean, std=data.std)
