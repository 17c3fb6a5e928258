"""MONAI 1.6: :class:`RandGANTranslate` and its dictionary form :class:`RandGANTranslated`.

Contract: channel-first 2-D images ``(C, H, W)`` (numpy, torch or ``MetaTensor``) with float intensities
in [0, 1] -- put ``ScaleIntensity(d)`` before the transform -- and the result has the same type, dtype,
range and metadata. Values outside [0, 1] raise ``ValueError`` (nothing is silently clipped).
Randomness comes from ``self.R`` only, so ``set_random_state`` and MONAI's ``DataLoader`` worker seeding
apply. As a random transform it is never cached by ``CacheDataset``.
"""

from __future__ import annotations

import os
from typing import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import convert_to_dst_type

from ..checks import check_probability
from .handle import ModelHandle

__all__ = ["RandGANTranslate", "RandGANTranslated"]


class RandGANTranslate(RandomizableTransform):
    """Translate a channel-first image with a trained translator, with probability ``prob``.

    Args:
        model_path: directory of a trained translator (loaded lazily, once per process; CPU in workers).
        prob: probability of translating.
        direction: ``"A2B"`` or ``"B2A"``.
        device: where to run the translator outside ``DataLoader`` workers.
    """

    def __init__(self, model_path, prob: float = 0.5, direction: str = "A2B", device: str | None = "cpu"):
        RandomizableTransform.__init__(self, check_probability("prob", prob))
        if not isinstance(model_path, (str, os.PathLike)):
            raise TypeError(f"model_path: expected a translator directory path, found {type(model_path).__name__}")
        self.model_path = str(model_path)
        self.handle = ModelHandle(self.model_path, "translator", name="model_path", device=device)
        self.direction = self.handle.check_direction(direction)

    def randomize(self, data=None) -> None:
        super().randomize(None)

    def __call__(self, img, randomize: bool = True):
        if randomize:
            self.randomize()
        if not self._do_transform:
            return img
        return self.translate(img)

    def translate(self, img):
        """Translate unconditionally (no random draw)."""
        if isinstance(img, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(img))
        elif isinstance(img, torch.Tensor):
            x = img.as_subclass(torch.Tensor) if type(img) is not torch.Tensor else img
        else:
            raise TypeError(f"img: expected a channel-first numpy array, tensor or MetaTensor, found "
                            f"{type(img).__name__}")
        if x.ndim != 3:
            raise ValueError(f"img: expected a channel-first 2-D image (C, H, W), found shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"img: expected float intensities in [0, 1] (apply ScaleIntensity first), found dtype "
                            f"{x.dtype}")
        y = self.handle.translate01(x.detach().cpu()[None], self.direction, name="img")[0]
        out, *_ = convert_to_dst_type(y, dst=img)
        return out


class RandGANTranslated(RandomizableTransform, MapTransform):
    """Dictionary form of :class:`RandGANTranslate`: one random decision per call, applied to all ``keys``."""

    def __init__(self, keys: KeysCollection, model_path, prob: float = 0.5, direction: str = "A2B",
                 allow_missing_keys: bool = False, device: str | None = "cpu"):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, check_probability("prob", prob))
        self.translator = RandGANTranslate(model_path, prob=1.0, direction=direction, device=device)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        self.translator.set_random_state(seed, state)
        return self

    def randomize(self, data=None) -> None:
        super().randomize(None)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = self.translator.translate(d[key])
        return d
