"""Trained generators and translators as drop-in augmentation.

* :class:`SyntheticDataset` -- samples of a class-conditional generator as a torch ``Dataset``
  (generated once in memory, or on the fly and deterministic per index; sharded to disk).
* :func:`translated_dataset` -- a translator's label-checked translations of a labelled set as a SyntheticDataset.
* :class:`MixedDataset` -- real + synthetic at a stated share, or synthetic top-up to balance classes.
* :class:`SampleFilter` -- keep synthetic samples a real-trained classifier / encoder finds typical of their
  class; :func:`weighted_cross_entropy` -- synthetic items weigh less in the loss.
* Translator transforms applied with a probability: :class:`GANTransform` (torchvision v2),
  :class:`GANTranslate` (albumentations), :class:`RandGANTranslate` / :class:`RandGANTranslated` (MONAI).
* Upscaler (SRGAN) transforms: :class:`GANUpscale` (torchvision v2), :class:`GANSuperRes` (albumentations).

Nothing heavy is imported here: each name is loaded from its submodule on first use, so importing
``synthaug.augment`` never imports albumentations or MONAI.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SyntheticDataset": "datasets",
    "MixedDataset": "mixed",
    "SampleFilter": "filtering",
    "weighted_cross_entropy": "filtering",
    "ModelHandle": "handle",
    "to_model_range": "handle",
    "reseed_transform": "handle",
    "write_shards": "datasets",
    "translated_dataset": "translated",
    "merge_manifests": "shards",
    "read_manifest": "shards",
    "GANTransform": "tv",
    "GANUpscale": "tv",
    "GANTranslate": "albu",
    "GANSuperRes": "albu",
    "AlbumentationsOnTensors": "albu",
    "RandGANTranslate": "monai",
    "RandGANTranslated": "monai",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
