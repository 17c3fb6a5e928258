"""albumentations 2.0.8: :class:`GANTranslate` applies a trained translator with probability ``p``;
:class:`GANSuperRes` upscales with a trained upscaler (SRGAN).

Whether a sample is translated is decided by albumentations itself (``p``, drawn from the transform's
own ``py_random``; seed it with ``A.Compose(..., seed=...)``). albumentations does not reseed per
``DataLoader`` worker, so every worker would repeat the same decisions: give the dataset a ``reseed``
method (``SyntheticDataset`` / ``MixedDataset`` have one) and pass
``worker_init_fn=synthaug.utils.seed_worker``. Importing albumentations checks for updates online unless
``NO_ALBUMENTATIONS_UPDATE=1`` is set.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import albumentations as A
import numpy as np
import torch

from ..checks import check_probability
from .handle import ModelHandle, reseed_transform

__all__ = ["GANTranslate", "GANSuperRes", "AlbumentationsOnTensors"]


class GANTranslate(A.ImageOnlyTransform):
    """Translate an image (e.g. clear -> fog) with a trained translator, with probability ``p``.

    Input: HWC (or HW) numpy, uint8 (0..255) or float32 in [0, 1]; output: the same dtype, range and
    layout (the channel count is the translator's output channels, normally the same). The model is
    loaded lazily from ``model_path`` once per process and always runs on CPU inside ``DataLoader``
    workers, so the transform pickles cheaply and serialises through its init args
    (``A.to_dict`` / ``A.from_dict``).

    Args:
        model_path: directory of a trained translator (CycleGAN / Pix2Pix).
        direction: ``"A2B"`` or ``"B2A"``.
        p: probability of translating.
        device: where to run the translator outside workers.
    """

    def __init__(self, model_path: str, direction: str = "A2B", p: float = 0.5, device: str = "cpu"):
        p = check_probability("p", p)
        if not isinstance(model_path, (str, os.PathLike)):
            raise TypeError(f"model_path: expected a translator directory path (str), found "
                            f"{type(model_path).__name__}")
        super().__init__(p=p)
        self.model_path = str(model_path)
        self.device = str(device)
        self._handle = ModelHandle(self.model_path, "translator", name="model_path", device=self.device)
        self.direction = self._handle.check_direction(direction)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("model_path", "direction", "device")

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self._translate(img[None])[0]

    def apply_to_images(self, images: np.ndarray, **params: Any) -> np.ndarray:
        return self._translate(images)

    def _translate(self, x: np.ndarray) -> np.ndarray:
        """(N, H, W[, C]) uint8 or float32 in [0, 1] -> the same, through one translator pass."""
        t, gray = _as_nchw01(x, "img")
        return _as_numpy_like(self._handle.translate01(t, self.direction, name="img"), x, gray)


def _as_nchw01(x: np.ndarray, name: str) -> tuple[torch.Tensor, bool]:
    """(N, H, W[, C]) uint8 or float32 in [0, 1] -> float NCHW in [0, 1], and whether it was gray (no C axis)."""
    if not isinstance(x, np.ndarray) or x.ndim not in (3, 4):
        raise ValueError(f"{name}: expected an HWC or HW numpy image, found {getattr(x, 'shape', type(x).__name__)}")
    if x.dtype == np.uint8:
        t = torch.from_numpy(np.require(x, requirements=("C", "W"))).float() / 255.0
    elif x.dtype == np.float32:
        t = torch.from_numpy(np.require(x, requirements=("C", "W")))
    else:
        raise TypeError(f"{name}: expected uint8 or float32 pixels, found dtype {x.dtype}")
    gray = x.ndim == 3
    return (t[..., None] if gray else t).permute(0, 3, 1, 2), gray


def _as_numpy_like(y: torch.Tensor, x: np.ndarray, gray: bool) -> np.ndarray:
    """Float NCHW in [0, 1] -> the layout and dtype of ``x`` (the transform's input)."""
    y = y.permute(0, 2, 3, 1)
    if gray and y.shape[-1] == 1:
        y = y[..., 0]
    if x.dtype == np.uint8:
        y = (y * 255.0).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(y.numpy())


class GANSuperRes(A.DualTransform):
    """Upscale an image with a trained upscaler (SRGAN), ``scale`` times (``p=1`` by default: a size-changing
    transform applied to some samples only would give a batch of mixed sizes).

    Input: HWC (or HW) numpy, uint8 (0..255) or float32 in [0, 1]; output: the same dtype, range and layout,
    ``scale`` times larger. Masks are resized nearest-neighbour and key points scaled to match (bounding boxes are
    normalised in albumentations, so they stay). The model is loaded lazily from ``model_path`` once per process and
    always runs on CPU inside ``DataLoader`` workers; the transform serialises through its init args.

    Args:
        model_path: directory of a trained upscaler (``synthaug train srgan``).
        p: probability of upscaling.
        device: where to run the upscaler outside workers.
    """

    def __init__(self, model_path: str, p: float = 1.0, device: str = "cpu"):
        p = check_probability("p", p)
        if not isinstance(model_path, (str, os.PathLike)):
            raise TypeError(f"model_path: expected an upscaler directory path (str), found {type(model_path).__name__}")
        super().__init__(p=p)
        self.model_path = str(model_path)
        self.device = str(device)
        self._handle = ModelHandle(self.model_path, "upscaler", name="model_path", device=self.device)
        self.scale = self._handle.scale

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("model_path", "device")

    def _upscale(self, x: np.ndarray) -> np.ndarray:
        t, gray = _as_nchw01(x, "img")
        return _as_numpy_like(self._handle.upscale01(t, name="img"), x, gray)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self._upscale(img[None])[0]

    def apply_to_images(self, images: np.ndarray, **params: Any) -> np.ndarray:
        return self._upscale(images)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        import cv2
        from albumentations.augmentations.geometric import functional as fgeometric

        h, w = mask.shape[:2]
        return fgeometric.resize(mask, (h * self.scale, w * self.scale), interpolation=cv2.INTER_NEAREST)

    def apply_to_bboxes(self, bboxes: np.ndarray, **params: Any) -> np.ndarray:
        return bboxes  # normalised coordinates: unchanged by a resize

    def apply_to_keypoints(self, keypoints: np.ndarray, **params: Any) -> np.ndarray:
        from albumentations.augmentations.geometric import functional as fgeometric

        return fgeometric.keypoints_scale(keypoints, self.scale, self.scale)


class AlbumentationsOnTensors:
    """Run an albumentations transform on library images: float CHW in [-1, 1] in and out.

    Lets an ``A.Compose`` pipeline serve as the ``transform`` of :class:`SyntheticDataset` /
    :class:`MixedDataset`; ``set_random_seed`` is passed on, so the datasets' ``reseed`` (called by
    ``synthaug.utils.seed_worker``) gives every worker its own albumentations stream.
    """

    def __init__(self, transform: Callable):
        if not callable(transform):
            raise TypeError(f"transform: expected an albumentations transform, found {type(transform).__name__}")
        self.transform = transform

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        hwc = ((image.detach().float().cpu() + 1.0) * 0.5).clamp(0, 1).permute(1, 2, 0).numpy()
        out = self.transform(image=np.ascontiguousarray(hwc))["image"]
        out = out[..., None] if out.ndim == 2 else out
        return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).float() * 2.0 - 1.0

    def set_random_seed(self, seed: int) -> None:
        reseed_transform(self.transform, seed)
