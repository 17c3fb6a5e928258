"""Distribution metrics in a domain encoder's feature space: FID/KID (torchmetrics), improved precision/recall
(Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020) with scikit-learn k-NN.

No Inception weights are available offline, so the encoder is a :class:`~synthaug.eval.classifier.SmallCNN`
trained as a classifier on the real training split (:func:`train_feature_encoder`), or weights the user
supplies (an ``nn.Module`` or a safetensors file). Scores from different encoders are not comparable, and
FID depends on the number of images: compare runs only with the same encoder and the same counts.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import pairwise_distances_chunked
from sklearn.neighbors import NearestNeighbors

from ..utils import check_images, get_device
from .classifier import build_classifier, train_classifier

__all__ = [
    "FeatureExtractor",
    "train_feature_encoder",
    "as_feature_extractor",
    "fid_kid",
    "fid_kid_from_features",
    "precision_recall",
    "density_coverage",
    "distribution_metrics",
]


def _penultimate(model: nn.Module) -> nn.Module:
    """A module mapping images to penultimate features: ``model.features`` (SmallCNN), a torchvision ResNet
    with ``fc`` removed, or ``model`` itself (assumed to return features)."""
    from torchvision.models import ResNet

    if isinstance(model, ResNet):
        trunk = copy.deepcopy(model)
        trunk.fc = nn.Identity()
        return trunk
    return model


class FeatureExtractor(nn.Module):
    """Frozen encoder: float images (N, C, H, W) in [-1, 1] -> features (N, d), in eval mode, no gradients.

    ``model``: a :class:`SmallCNN` (uses ``model.features``), a torchvision ResNet (the classifier head is
    dropped) or any module that already returns features (N, d) / (N, d, 1, 1). Load saved weights with
    :meth:`from_safetensors`. ``num_features`` is ``d`` (inferred on the first call if the model has none).
    The module is moved to ``device``, put in eval mode and frozen in place.
    """

    def __init__(self, model: nn.Module, *, device=None, batch_size: int = 256, meta: dict | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected an nn.Module, found {type(model).__name__}")
        self.device = get_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.trunk = _penultimate(self.model)
        self.batch_size = int(batch_size)
        self.meta = dict(meta or {})
        nf = getattr(model, "num_features", None)
        self.num_features = int(nf) if isinstance(nf, (int, np.integer)) else None
        self.in_channels = self.meta.get("in_channels") or getattr(model, "in_channels", None)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.trunk.features(x) if hasattr(self.trunk, "features") and callable(self.trunk.features) \
            else self.trunk(x)
        return feats.flatten(1).float()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features of a batch (CPU float32), computed in chunks of ``batch_size`` on the encoder's device."""
        check_images(images, "images", channels=self.in_channels)
        self.trunk.eval()
        outs = [self._encode(images[i:i + self.batch_size].to(self.device, torch.float32)).cpu()
                for i in range(0, len(images), self.batch_size)]
        feats = torch.cat(outs) if outs else torch.empty(0, self.num_features or 0)
        if self.num_features is None and len(feats):
            self.num_features = int(feats.shape[1])
        return feats

    def save(self, path) -> Path:
        """Write the encoder's weights as safetensors (atomically), with its architecture in the file's metadata."""
        from ..io import save_safetensors

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_safetensors(self.model.state_dict(), path, metadata={"synthaug_encoder": json.dumps(self.meta)})
        return path

    @classmethod
    def from_safetensors(cls, path, arch: str | None = None, *, in_channels: int | None = None,
                         num_classes: int | None = None, image_size: int | None = None, width: int | None = None,
                         device=None) -> "FeatureExtractor":
        """Load classifier weights (``small_cnn`` or ``resnet18_small``) from a safetensors file.

        Architecture arguments not given are read from the file's metadata (written by :meth:`save`).
        """
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"path: expected a safetensors file, found nothing at {str(path)!r}")
        with safe_open(str(path), framework="pt") as f:
            stored = json.loads((f.metadata() or {}).get("synthaug_encoder", "{}"))
        given = {"arch": arch, "in_channels": in_channels, "num_classes": num_classes, "image_size": image_size,
                 "width": width}
        meta = {**{"width": 32}, **stored, **{k: v for k, v in given.items() if v is not None}}
        missing = [k for k in ("arch", "in_channels", "num_classes", "image_size") if meta.get(k) is None]
        if missing:
            raise ValueError(f"path: expected architecture arguments for {str(path)!r} (arguments or file "
                             f"metadata), found none for {missing}")
        model = build_classifier(meta["arch"], int(meta["in_channels"]), int(meta["num_classes"]),
                                 int(meta["image_size"]), width=int(meta["width"]))
        try:
            model.load_state_dict(load_file(str(path)), strict=True)
        except RuntimeError as e:
            raise ValueError(f"path: expected weights of {meta['arch']} with {meta}, found a state dict that "
                             f"does not fit {str(path)!r}: {str(e).splitlines()[0]}") from None
        return cls(model, device=device, meta=meta)


def as_feature_extractor(encoder, device=None) -> FeatureExtractor:
    """``encoder`` as a :class:`FeatureExtractor`: one already, an ``nn.Module``, or a safetensors path
    carrying synthaug encoder metadata."""
    if isinstance(encoder, FeatureExtractor):
        return encoder
    if isinstance(encoder, nn.Module):
        return FeatureExtractor(encoder, device=device)
    if isinstance(encoder, (str, Path)):
        return FeatureExtractor.from_safetensors(encoder, device=device)
    raise TypeError(f"encoder: expected a FeatureExtractor, nn.Module or safetensors path, "
                    f"found {type(encoder).__name__}")


def train_feature_encoder(train_ds, *, val_ds=None, max_steps: int = 1500, seed: int = 0, device=None,
                          width: int = 32, arch: str = "small_cnn") -> FeatureExtractor:
    """Train a classifier on the real training split and return its penultimate-layer encoder.

    With ``val_ds`` the step with the best validation AUC is kept (early stopping), else the last. Never pass test data.
    """
    model, info = train_classifier(train_ds, val_ds, arch=arch, max_steps=max_steps, seed=seed, device=device,
                                   width=width)
    img = train_ds[0][0]
    meta = {"arch": arch, "in_channels": int(img.shape[0]), "num_classes": int(info["num_classes"]),
            "image_size": int(img.shape[-1]), "width": int(width), "max_steps": max_steps, "seed": seed}
    return FeatureExtractor(model, device=device, meta=meta)


# --- FID / KID ------------------------------------------------------------------------------------------
class _Precomputed(nn.Module):
    """Identity 'feature extractor' so torchmetrics can consume features computed once."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _as_features(feats, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(feats) if not isinstance(feats, torch.Tensor) else feats)
    if t.ndim != 2 or t.shape[0] < 2:
        raise ValueError(f"{name}: expected features of shape (N >= 2, d), found {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: expected finite features, found NaN/Inf")
    return t.double()


def fid_kid_from_features(real_feats, fake_feats, *, subset_size: int | None = None, subsets: int = 50,
                          seed: int = 0) -> dict:
    """FID and KID (torchmetrics) from features already extracted; see :func:`fid_kid`."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    r, f = _as_features(real_feats, "real_feats"), _as_features(fake_feats, "fake_feats")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"fake_feats: expected {r.shape[1]} features like real_feats, found {f.shape[1]}")
    n_max = min(len(r), len(f))
    subset_size = min(1000, n_max) if subset_size is None else int(subset_size)
    if not 2 <= subset_size <= n_max:
        raise ValueError(f"subset_size: expected an int in [2, {n_max}] (the smaller set's size), "
                         f"found {subset_size}")
    enc = _Precomputed(r.shape[1])
    fid = FrechetInceptionDistance(feature=enc, reset_real_features=True)
    fid.update(r, real=True)
    fid.update(f, real=False)
    with warnings.catch_warnings():  # its memory warning is moot: the features are already in memory
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(feature=enc, subsets=int(subsets), subset_size=subset_size)
    kid.update(r, real=True)
    kid.update(f, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))  # KID draws its subsets from torch's global RNG
        kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std),
            "n_real": int(len(r)), "n_fake": int(len(f)), "feature_dim": int(r.shape[1]),
            "kid_subset_size": subset_size}


def fid_kid(real_images: torch.Tensor, fake_images: torch.Tensor, encoder, *, subset_size: int | None = None,
            subsets: int = 50, seed: int = 0, device=None) -> dict:
    """FID and KID between two image sets (float NCHW in [-1, 1]) in ``encoder``'s feature space.

    ``encoder``: a :class:`FeatureExtractor`, ``nn.Module`` or safetensors path. Features are extracted once
    and handed to torchmetrics' ``FrechetInceptionDistance``/``KernelInceptionDistance`` through an identity
    ``feature`` module (torchmetrics passes inputs of a custom module through unchanged, so no uint8
    conversion is involved). KID uses ``subsets`` random subsets of ``subset_size`` (default
    ``min(1000, n_real, n_fake)``), drawn under ``seed``. Returns ``fid, kid_mean, kid_std`` and the counts.
    """
    enc = as_feature_extractor(encoder, device)
    return fid_kid_from_features(enc(real_images), enc(fake_images), subset_size=subset_size, subsets=subsets,
                                 seed=seed)


# --- k-NN manifold metrics -------------------------------------------------------------------------------
def _knn_radii(feats: np.ndarray, k: int, name: str) -> np.ndarray:
    """Distance of each point to its k-th nearest other point."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < len(feats):
        raise ValueError(f"k: expected an int in [1, {len(feats) - 1}] ({name} has {len(feats)} points), "
                         f"found {k!r}")
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(feats).kneighbors(feats)
    return dist[:, k]


def _ball_counts(queries: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """For each query, the number of balls ``B(centre_i, radius_i)`` containing it."""
    counts = [(chunk <= radii[None, :]).sum(1)
              for chunk in pairwise_distances_chunked(queries, centres, working_memory=64)]
    return np.concatenate(counts)


def _np_feats(feats, name: str) -> np.ndarray:
    return _as_features(feats, name).numpy()


def precision_recall(real_feats, fake_feats, k: int = 5) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each real point's ball reaches its k-th nearest real neighbour; precision is the share of fake points
    inside at least one real ball. Recall is the same with the roles swapped (real points inside fake balls).
    """
    r, f = _np_feats(real_feats, "real_feats"), _np_feats(fake_feats, "fake_feats")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"fake_feats: expected {r.shape[1]} features like real_feats, found {f.shape[1]}")
    precision = float((_ball_counts(f, r, _knn_radii(r, k, "real_feats")) > 0).mean())
    recall = float((_ball_counts(r, f, _knn_radii(f, k, "fake_feats")) > 0).mean())
    return {"precision": precision, "recall": recall, "k": int(k)}


def density_coverage(real_feats, fake_feats, k: int = 5) -> dict:
    """Density and coverage (Naeem et al. 2020), with k-NN balls around real points only.

    density = mean over fake points of (number of real balls containing it) / k (about 1 when the
    distributions match, can exceed 1); coverage = share of real balls containing at least one fake point.
    """
    r, f = _np_feats(real_feats, "real_feats"), _np_feats(fake_feats, "fake_feats")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"fake_feats: expected {r.shape[1]} features like real_feats, found {f.shape[1]}")
    radii = _knn_radii(r, k, "real_feats")
    density = float(_ball_counts(f, r, radii).sum() / (k * len(f)))
    nearest_fake, _ = NearestNeighbors(n_neighbors=1).fit(f).kneighbors(r)
    coverage = float((nearest_fake[:, 0] <= radii).mean())
    return {"density": density, "coverage": coverage, "k": int(k)}


def distribution_metrics(real_images: torch.Tensor, fake_images: torch.Tensor, encoder, *, k: int = 5,
                         subset_size: int | None = None, seed: int = 0, device=None) -> dict:
    """FID, KID, precision, recall, density and coverage of ``fake_images`` against ``real_images``."""
    enc = as_feature_extractor(encoder, device)
    rf, ff = enc(real_images), enc(fake_images)
    out = fid_kid_from_features(rf, ff, subset_size=subset_size, seed=seed)
    out.update(precision_recall(rf, ff, k))
    out.update(density_coverage(rf, ff, k))
    return out
