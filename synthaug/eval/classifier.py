"""Downstream classifiers, as :mod:`synthaug.eval` uses them: the nets (SmallCNN, LeNet, the 28 px ResNet-18) are
:mod:`synthaug.nets.classifiers` (the registered role ``classifier``), training them with validation model selection,
their test-set metrics (scikit-learn) and the classical-augmentation baselines are :mod:`synthaug.train.classifier`;
this module gives both under the names evaluation code has always used.

Images are float32 NCHW in [-1, 1]. ``transform`` arguments work on whole training batches (see
:func:`classical_augment` and :func:`per_image`).
"""

from __future__ import annotations

from ..nets.classifiers import ARCHS, LeNet, ResNet18Small, SmallCNN, build_classifier, resnet18_small
from ..train.classifier import (
    CLASSICAL_KINDS,
    SELECT_ON,
    classical_augment,
    evaluate,
    metrics_from_proba,
    per_image,
    predict_proba,
    train_classifier,
)

__all__ = [
    "SmallCNN",
    "LeNet",
    "ResNet18Small",
    "resnet18_small",
    "CLASSICAL_KINDS",
    "SELECT_ON",
    "build_classifier",
    "ARCHS",
    "classical_augment",
    "per_image",
    "train_classifier",
    "predict_proba",
    "metrics_from_proba",
    "evaluate",
]
