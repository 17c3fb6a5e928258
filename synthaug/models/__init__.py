"""Trained models as directories: ``config.json`` + ``*.safetensors``, loadable without training code or data.

One module per kind, on the shared model-directory base (:mod:`.base`: ``from_pretrained`` / ``save_pretrained``,
the config, ``check_compatible``, the value-range rule at the input):

* :class:`GeneratorModel` (:mod:`.generator`) wraps a class-conditional generator (``sample``);
* :class:`TranslatorModel` (:mod:`.translator`) wraps one or two image-to-image generators (``translate``, and
  ``translate_labelled`` with a label check);
* :class:`UpscalerModel` (:mod:`.upscaler`) wraps a super-resolution net (``upscale``);
* :class:`ClassifierModel` (:mod:`.classifier`) wraps an image classifier (a translator's task classifier, or one a
  user saved).

:func:`load_model` reads any of them by its ``kind``. Models give tensors; datasets of them are
:mod:`synthaug.augment`'s (``SyntheticDataset``, ``translated_dataset``).
"""

from __future__ import annotations

from ..io import read_model_config
from ..registry import model_kinds
from .base import ModelDirectory
from .classifier import ClassifierModel, classifier_spec
from .generator import GeneratorModel
from .translator import TASK_CLASSIFIER_DIR, TranslatorModel, check_direction, translator_directions
from .upscaler import UPSCALE_MEMORY_MB, UpscalerModel

__all__ = ["ModelDirectory", "GeneratorModel", "TranslatorModel", "UpscalerModel", "ClassifierModel", "load_model",
           "classifier_spec", "check_direction", "translator_directions", "TASK_CLASSIFIER_DIR", "UPSCALE_MEMORY_MB"]


def load_model(path, device=None) -> GeneratorModel | TranslatorModel | UpscalerModel | ClassifierModel:
    """Load any synthaug model directory (generator, translator, upscaler or classifier) by its ``kind``."""
    cfg = read_model_config(path)
    for cls in (GeneratorModel, TranslatorModel, UpscalerModel, ClassifierModel):
        if cfg["kind"] in model_kinds(cls.role):
            return cls.from_pretrained(path, device=device)
    raise ValueError(f"model {str(path)!r}: expected kind in {model_kinds()}, found {cfg['kind']!r}")
