"""Memorisation audit: is a synthetic image a near-copy of a training image?

For each synthetic image s with nearest real training image r (distance ``d_sf``), compare ``d_sf`` with the
distance ``d_rr`` from r to its own nearest *other* training image. ``ratio = d_sf / d_rr`` is scale-free:
about 1 means s is as close to r as real images are to each other; far below 1 means s sits much closer to
r than any natural neighbour does, i.e. a near-copy.

Default threshold 1/3: a sample flagged is three times closer to a training image than that image's nearest
real neighbour is. This follows the relative-distance criterion of Carlini et al. 2023 ("Extracting Training
Data from Diffusion Models", which uses 1/3 against a neighbourhood of real images) and is strict enough that
ordinary GAN samples of a well-fit model are not flagged, while copies with small noise or a few changed
pixels are. Distances are Euclidean, in pixel space (default) or in an encoder's feature space.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..nearcopy import DEFAULT_THRESHOLD, distance_ratios
from ..utils import check_images, save_grid

__all__ = ["DEFAULT_THRESHOLD", "memorization_audit", "nearest_neighbour_panel", "filter_near_copies"]

QUANTILES = (0.01, 0.05, 0.25, 0.5)


def _images(x, name: str) -> torch.Tensor:
    """A float NCHW tensor from a tensor or a dataset with ``.images``."""
    if not isinstance(x, torch.Tensor) and isinstance(getattr(x, "images", None), torch.Tensor):
        x = x.images
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name}: expected float images (N, C, H, W) in [-1, 1] or a dataset with .images, "
                        f"found {type(x).__name__}")
    check_images(x, name)
    if len(x) == 0:
        raise ValueError(f"{name}: expected at least one image, found none")
    return x


def _embed(x: torch.Tensor, space: str, encoder, device) -> np.ndarray:
    if space == "pixel":
        return x.detach().cpu().double().flatten(1).numpy()
    from .features import as_feature_extractor

    return as_feature_extractor(encoder, device)(x).double().numpy()


def memorization_audit(synthetic, real_train, encoder=None, threshold: float = DEFAULT_THRESHOLD,
                       space: str = "pixel", device=None) -> dict:
    """Nearest-training-image distances of each synthetic image and the near-copy flags.

    ``synthetic``/``real_train``: float NCHW tensors in [-1, 1] (or datasets with ``.images``) of the same
    shape. ``space="features"`` needs ``encoder`` (FeatureExtractor, nn.Module or safetensors path).
    Returns per synthetic image numpy arrays ``nearest_index``, ``d_sf``, ``d_rr``, ``ratio`` (0 for an exact
    copy; inf when r has an exact duplicate in the training set, so d_rr = 0, and s is not identical), and
    ``flagged`` (ratio < threshold), plus ``summary``: n, n_flagged, fraction_flagged, ratio quantiles,
    threshold and space.
    """
    if space not in ("pixel", "features"):
        raise ValueError(f"space: expected 'pixel' or 'features', found {space!r}")
    if space == "features" and encoder is None:
        raise ValueError("encoder: expected a feature extractor for space='features', found None")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold: expected a ratio in (0, 1], found {threshold!r}")
    syn, real = _images(synthetic, "synthetic"), _images(real_train, "real_train")
    if syn.shape[1:] != real.shape[1:]:
        raise ValueError(f"synthetic: expected images of shape {tuple(real.shape[1:])} like real_train, "
                         f"found {tuple(syn.shape[1:])}")
    if len(real) < 2:
        raise ValueError(f"real_train: expected at least 2 images (d_rr needs a neighbour), found {len(real)}")
    rs, ss = _embed(real, space, encoder, device), _embed(syn, space, encoder, device)
    idx, d_sf, denom, ratio = distance_ratios(ss, rs)
    flagged = ratio < float(threshold)
    finite = ratio[np.isfinite(ratio)]
    quantiles = {f"q{int(q * 100):02d}": (float(np.quantile(finite, q)) if finite.size else float("nan"))
                 for q in QUANTILES}
    summary = {"n": int(len(syn)), "n_flagged": int(flagged.sum()), "fraction_flagged": float(flagged.mean()),
               "ratio_quantiles": quantiles, "min_ratio": float(ratio.min()), "threshold": float(threshold),
               "space": space}
    return {"nearest_index": idx.astype(np.int64), "d_sf": d_sf, "d_rr": denom, "ratio": ratio,
            "flagged": flagged, "summary": summary}


def nearest_neighbour_panel(synthetic, real_train, audit: dict, path, n: int = 8) -> Path:
    """PNG of the ``n`` synthetic images with the smallest ratio, each row: synthetic | nearest real image."""
    syn, real = _images(synthetic, "synthetic"), _images(real_train, "real_train")
    if "ratio" not in audit or len(audit["ratio"]) != len(syn):
        raise ValueError(f"audit: expected the result of memorization_audit for these {len(syn)} synthetic "
                         f"images, found {len(audit.get('ratio', []))} entries")
    order = np.argsort(audit["ratio"], kind="stable")[:max(1, int(n))]
    images, labels = [], []
    for i in order:
        images += [syn[i], real[int(audit["nearest_index"][i])]]
        flag = " COPY?" if audit["flagged"][i] else ""
        labels.append(f"#{i} ratio {audit['ratio'][i]:.2f}{flag}")
    title = f"synthetic | nearest real ({audit['summary']['space']} space)"
    return save_grid(torch.stack(images), path, nrow=2, row_labels=labels, title=title)


def filter_near_copies(synthetic_images, real_train_images, threshold: float = DEFAULT_THRESHOLD, *,
                       encoder=None, space: str = "pixel", device=None) -> tuple[torch.Tensor, int]:
    """``(kept_mask, n_dropped)``: a bool mask over the synthetic images keeping those not flagged by
    :func:`memorization_audit` at ``threshold`` (pixel space: :func:`synthaug.nearcopy.filter_near_copies`)."""
    audit = memorization_audit(synthetic_images, real_train_images, encoder=encoder, threshold=threshold,
                               space=space, device=device)
    return torch.from_numpy(~audit["flagged"]), int(audit["summary"]["n_flagged"])
