"""Near-copy detection: is a synthetic image much closer to a real training image than real images are to
each other? Shared by the memorisation audit (:mod:`synthaug.eval.memorization`) and the guard of
:class:`~synthaug.augment.SyntheticDataset`.

For each synthetic image s with nearest real image r (distance ``d_sf``), ``ratio = d_sf / d_rr`` where
``d_rr`` is the distance from r to its nearest *other* real image (floored at half the median of those
distances, so a training image with a near-duplicate cannot let a noisy copy of it pass). A ratio far below
1 is a near-copy; the default threshold 1/3 follows Carlini et al. 2023.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

__all__ = ["DEFAULT_THRESHOLD", "distance_ratios", "filter_near_copies"]

DEFAULT_THRESHOLD = 1.0 / 3.0


def distance_ratios(synthetic: np.ndarray, real: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(nearest_index, d_sf, d_rr, ratio)`` for embedded synthetic ``(N, D)`` and real ``(M >= 2, D)`` arrays;
    ``ratio`` is 0 for an exact copy."""
    nn_real = NearestNeighbors(n_neighbors=2).fit(real)
    dist_rr, idx_rr = nn_real.kneighbors(real)
    own = idx_rr[:, 0] == np.arange(len(real))  # self is usually first; with duplicates it may be second
    d_rr = np.where(own, dist_rr[:, 1], dist_rr[:, 0])
    d_sf, idx = nn_real.kneighbors(synthetic, n_neighbors=1)
    d_sf, idx = d_sf[:, 0], idx[:, 0]
    denom = np.maximum(d_rr[idx], 0.5 * float(np.median(d_rr)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(d_sf == 0.0, 0.0, d_sf / denom)
    return idx.astype(np.int64), d_sf, denom, ratio


def filter_near_copies(synthetic_images: torch.Tensor, real_train_images: torch.Tensor,
                       threshold: float = DEFAULT_THRESHOLD) -> tuple[torch.Tensor, int]:
    """``(kept_mask, n_dropped)``: a bool mask over the synthetic images (float NCHW) keeping those whose
    pixel-space distance ratio to ``real_train_images`` is at least ``threshold``."""
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold: expected a ratio in (0, 1], found {threshold!r}")
    flat = lambda x: x.detach().cpu().double().flatten(1).numpy()  # noqa: E731
    _, _, _, ratio = distance_ratios(flat(synthetic_images), flat(real_train_images))
    flagged = ratio < float(threshold)
    return torch.from_numpy(~flagged), int(flagged.sum())
