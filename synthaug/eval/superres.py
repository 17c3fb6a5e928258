"""Super-resolution quality: PSNR and SSIM (torchmetrics) of upscaled images against the originals, and the
bicubic baseline every upscaler is compared with.

Conventions (those of the SR literature, stated so numbers can be compared): images are float NCHW in [-1, 1] and
are scored as [0, 1] pixels (data range 1); ``shave`` pixels are cut from every border first (the usual choice is
the scale factor); ``y_channel=True`` scores RGB images on their BT.601 luma (Y of YCbCr) only, as SRGAN's tables
do. Scores are means over images of the per-image PSNR / SSIM.
"""

from __future__ import annotations

from functools import partial

import torch

from ..checks import check_bool, check_int
from ..nets.superres import bicubic_upscale, check_scale, downscale
from ..utils import MODEL_RANGE, check_images, check_value_range

__all__ = ["modcrop", "psnr", "ssim", "sr_metrics", "evaluate_upscaler", "bicubic_upscale", "downscale"]


def modcrop(images: torch.Tensor, scale: int) -> torch.Tensor:
    """``images`` with their bottom and right edges cut to make height and width multiples of ``scale``."""
    check_int("scale", scale, 1)
    h, w = check_images(images, "images").shape[-2:]
    return images[..., :h - h % scale, :w - w % scale]


def _prepare(pred: torch.Tensor, target: torch.Tensor, shave: int, y_channel: bool) -> tuple[torch.Tensor, ...]:
    check_images(pred, "pred")
    check_images(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred: expected the shape of target {tuple(target.shape)}, found {tuple(pred.shape)}")
    check_value_range(pred, "pred", MODEL_RANGE)
    check_value_range(target, "target", MODEL_RANGE)
    shave = check_int("shave", shave, 0)
    check_bool("y_channel", y_channel)
    h, w = pred.shape[-2:]
    if 2 * shave >= min(h, w):
        raise ValueError(f"shave: expected fewer than half the image side ({h}x{w}) to cut from each border, found "
                         f"{shave}")
    out = []
    for x in (pred, target):
        x = (x.float() + 1.0) * 0.5
        if shave:
            x = x[..., shave:h - shave, shave:w - shave]
        if y_channel:
            if x.shape[1] != 3:
                raise ValueError(f"y_channel: expected RGB images (3 channels) to take luma from, found "
                                 f"{x.shape[1]} channel(s)")
            # ITU-R BT.601 luma of [0, 1] RGB, on the [16, 235] / 255 scale (MATLAB's rgb2ycbcr, as SR papers use)
            x = (16.0 + 65.481 * x[:, :1] + 128.553 * x[:, 1:2] + 24.966 * x[:, 2:3]) / 255.0
        out.append(x.cpu())
    return out[0], out[1]


def psnr(pred: torch.Tensor, target: torch.Tensor, shave: int = 0, y_channel: bool = False) -> float:
    """Mean per-image PSNR (dB) of ``pred`` against ``target``, both float NCHW in [-1, 1] of one shape."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = _prepare(pred, target, shave, y_channel)
    if len(p) == 0:
        raise ValueError("pred: expected at least one image, found none")
    per_image = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return float(per_image.mean())


def ssim(pred: torch.Tensor, target: torch.Tensor, shave: int = 0, y_channel: bool = False) -> float:
    """Mean per-image SSIM (Gaussian window 11, sigma 1.5) of ``pred`` against ``target``, as :func:`psnr`. Images
    must be at least 11 px on each side after ``shave``."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, t = _prepare(pred, target, shave, y_channel)
    if len(p) == 0:
        raise ValueError("pred: expected at least one image, found none")
    if min(p.shape[-2:]) < 11:
        raise ValueError(f"pred: expected images of at least 11x11 px for SSIM's window (after shave), found "
                         f"{tuple(p.shape[-2:])}")
    per_image = structural_similarity_index_measure(p, t, data_range=1.0, reduction="none")
    return float(per_image.mean())


def sr_metrics(pred: torch.Tensor, target: torch.Tensor, shave: int = 0, y_channel: bool = False) -> dict:
    """``{"psnr", "ssim"}`` of ``pred`` against ``target`` (see :func:`psnr` / :func:`ssim`)."""
    return {"psnr": psnr(pred, target, shave, y_channel), "ssim": ssim(pred, target, shave, y_channel)}


def evaluate_upscaler(model, images: torch.Tensor, scale: int | None = None, shave: int | None = None,
                      y_channel: bool = False, batch_size: int = 16) -> dict:
    """Score an upscaler against the bicubic baseline on high-resolution ``images`` (float NCHW in [-1, 1]).

    Each image is cut to a multiple of ``scale`` (:func:`modcrop`), downsampled bicubically with antialiasing
    (:func:`~synthaug.nets.superres.downscale`, the training degradation), then brought back by ``model`` and by
    bicubic interpolation (:func:`~synthaug.nets.superres.bicubic_upscale`); both are scored against the original.
    ``model``: an :class:`~synthaug.models.UpscalerModel` (``scale`` is its own) or any callable mapping a batch to
    its ``scale`` x upscaling (then ``scale`` is required). ``shave`` defaults to ``scale``. Returns
    ``{"model": {"psnr", "ssim"}, "bicubic": {...}, "gain": {...}, "n", "scale", "shave", "y_channel"}``.
    """
    own = getattr(model, "scale", None)
    if scale is None:
        if own is None:
            raise ValueError("scale: expected the upscaling factor (the model does not tell it), found None")
        scale = own
    scale = check_scale(scale)
    if own is not None and int(own) != scale:
        raise ValueError(f"scale: expected the model's scale {own}, found {scale}")
    if not callable(model) and not hasattr(model, "upscale"):
        raise TypeError(f"model: expected an UpscalerModel or a callable, found {type(model).__name__}")
    shave = scale if shave is None else shave
    hr = modcrop(images, scale)
    check_value_range(hr, "images", MODEL_RANGE)
    lr = downscale(hr, scale)
    from ..models import UpscalerModel

    run = model.upscale if hasattr(model, "upscale") else model
    if isinstance(model, UpscalerModel):  # checked above: model data, whether or not a batch has dark pixels
        run = partial(model.upscale, value_range=MODEL_RANGE)
    batch_size = check_int("batch_size", batch_size, 1)
    with torch.no_grad():
        sr = torch.cat([run(lr[i:i + batch_size]).float().cpu() for i in range(0, len(lr), batch_size)])
    if sr.shape != hr.shape:
        raise ValueError(f"model: expected outputs of shape {tuple(hr.shape[1:])} (x{scale}), found "
                         f"{tuple(sr.shape[1:])}")
    ours, base = sr_metrics(sr.clamp(-1, 1), hr, shave, y_channel), sr_metrics(bicubic_upscale(lr, scale), hr, shave,
                                                                            y_channel)
    return {"model": ours, "bicubic": base, "gain": {k: ours[k] - base[k] for k in ours}, "n": int(len(hr)),
            "scale": scale, "shave": int(shave), "y_channel": bool(y_channel)}
