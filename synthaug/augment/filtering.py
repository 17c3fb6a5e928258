"""Keep only the synthetic samples that look like their class: :class:`SampleFilter`.

A sample of class c is kept when (1) a classifier trained on the real labelled data gives class c a
probability of at least ``min_confidence``, and/or (2) its nearest real class-c image, in the feature space of an
encoder trained on the real data, is no farther than the ``quantile`` of the real class-c images' own
nearest-neighbour distances (it lies within the class's real feature distribution). Used by
``SyntheticDataset(keep=...)``, ``MixedDataset(keep=...)`` and the downstream harness.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..checks import check_number, check_probability
from ..data import ImageDataset
from ..train.classifier import weighted_cross_entropy  # noqa: F401  (re-exported: a classifier's loss)
from ..utils import CONVERT_HINT, check_value_range

__all__ = ["SampleFilter", "weighted_cross_entropy"]


def _batched(fn: Callable, x: torch.Tensor, batch_size: int, device) -> torch.Tensor:
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(fn(x[i:i + batch_size].to(device)).float().cpu())
    return torch.cat(outs) if outs else torch.empty(0)


class SampleFilter:
    """``keep(images, labels) -> bool mask`` over synthetic float NCHW images in [-1, 1] and their labels.

    Args:
        classifier: an ``nn.Module`` mapping images to class logits, trained on the real labelled data
            (None: no confidence check).
        min_confidence: the probability the classifier must give the sample's conditioned class.
        encoder: a callable mapping images to ``(N, D)`` features (e.g. ``synthaug.eval.FeatureExtractor``) and
        reference: the real labelled images and labels it is compared with (a dataset with ``.images`` and
            ``.labels``, or an ``(images, labels)`` pair); both None: no distance check.
        quantile: the share of real class-c images whose nearest other real class-c image is at most as far as
            the threshold (0.95 keeps samples about as typical as 95% of the real ones).

    After each call, :attr:`last_report` holds per class the number checked, kept, and why samples were dropped.
    """

    def __init__(self, classifier: torch.nn.Module | None = None, min_confidence: float = 0.5, *,
                 encoder: Callable | None = None, reference=None, quantile: float = 0.95, batch_size: int = 256,
                 device=None):
        if classifier is None and encoder is None:
            raise ValueError("classifier / encoder: expected at least one of them, found neither")
        if classifier is not None and not callable(classifier):
            raise TypeError(f"classifier: expected an nn.Module returning logits, found {type(classifier).__name__}")
        check_probability("min_confidence", min_confidence)
        if (encoder is None) != (reference is None):
            raise ValueError("encoder / reference: expected both (the distance check) or neither, found "
                             f"encoder={'set' if encoder is not None else None}, "
                             f"reference={'set' if reference is not None else None}")
        check_number("quantile", quantile, 0.0, 1.0, low_open=True)
        self.classifier, self.min_confidence = classifier, float(min_confidence)
        self.encoder, self.quantile, self.batch_size = encoder, float(quantile), int(batch_size)
        self.device = device if device is not None else (
            next(classifier.parameters()).device if isinstance(classifier, torch.nn.Module)
            and any(True for _ in classifier.parameters()) else "cpu")
        self.last_report: dict[int, dict[str, int]] = {}
        self._real: dict[int, torch.Tensor] = {}
        self._radius: dict[int, float] = {}
        if encoder is not None:
            self._fit_reference(reference)

    def _fit_reference(self, reference) -> None:
        if isinstance(reference, (tuple, list)) and len(reference) == 2:
            images, labels = reference
        else:
            images, labels = getattr(reference, "images", None), getattr(reference, "labels", None)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
            raise TypeError(f"reference: expected real float images (N, C, H, W) in [-1, 1] with labels, found "
                            f"{type(reference).__name__}")
        if not isinstance(reference, ImageDataset):  # an ImageDataset is [-1, 1] by construction
            check_value_range(images, "reference", fix=CONVERT_HINT)
        labels = torch.as_tensor(labels).long().reshape(-1)
        feats = _batched(self.encoder, images, self.batch_size, self.device)
        for c in labels.unique().tolist():
            f = feats[labels == c]
            if len(f) < 2:
                raise ValueError(f"reference: expected at least 2 real images of class {c} for the distance check, "
                                 f"found {len(f)}")
            d = torch.cdist(f, f)
            d.fill_diagonal_(float("inf"))
            self._real[c] = f
            self._radius[c] = float(torch.quantile(d.min(1).values, self.quantile))

    def __call__(self, images: torch.Tensor, labels) -> torch.Tensor:
        labels = torch.as_tensor(labels).long().reshape(-1)
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or len(images) != len(labels):
            raise ValueError(f"images: expected (N, C, H, W) with one label each ({len(labels)}), found "
                             f"{tuple(getattr(images, 'shape', ()))}")
        n = len(labels)
        confident = torch.ones(n, dtype=torch.bool)
        typical = torch.ones(n, dtype=torch.bool)
        if self.classifier is not None and n:
            was = self.classifier.training
            self.classifier.eval()
            p = torch.softmax(_batched(self.classifier, images, self.batch_size, self.device), dim=1)
            self.classifier.train(was)
            confident = p[torch.arange(n), labels] >= self.min_confidence
        if self.encoder is not None and n:
            feats = _batched(self.encoder, images, self.batch_size, self.device)
            for c in labels.unique().tolist():
                sel = labels == c
                if c not in self._real:
                    raise ValueError(f"labels: expected classes present in the reference {sorted(self._real)}, "
                                     f"found class {c}")
                typical[sel] = torch.cdist(feats[sel], self._real[c]).min(1).values <= self._radius[c]
        keep = confident & typical
        self.last_report = {
            int(c): {"checked": int((labels == c).sum()), "kept": int(keep[labels == c].sum()),
                     "dropped_low_confidence": int((~confident[labels == c]).sum()),
                     "dropped_atypical": int((confident & ~typical)[labels == c].sum())}
            for c in labels.unique().tolist()}
        return keep
