"""PatchNCE (Park et al., 2020, CUT): the projection head and the patchwise contrastive loss.

A translator's encoder maps of the input and of its output are sampled at the same random positions
(:func:`sample_patches`), projected by :class:`PatchProjector` and compared by :func:`patch_nce_loss`: each output
patch must pick the input patch at its own position among the other sampled patches of the same image.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_int
from .translators import init_weights

__all__ = ["PatchProjector", "sample_patches", "patch_nce_loss"]


class PatchProjector(nn.Module):
    """One 2-layer MLP per encoder map, ``Linear(channels[l], dim)``, ReLU, ``Linear(dim, dim)``, outputs
    L2-normalised; initialised as in CUT (xavier, gain 0.02)."""

    def __init__(self, channels: Sequence[int], dim: int = 256):
        super().__init__()
        check_int("mlp_dim", dim, 1)
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(check_int("channels", c, 1), dim), nn.ReLU(),
                                                nn.Linear(dim, dim)) for c in channels)
        init_weights(self, "xavier", 0.02)

    def forward(self, maps: Sequence[torch.Tensor], positions: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Project map ``l`` (N, C_l, H, W) at flat positions ``positions[l]`` (P_l,): a list of (N, P_l, dim)."""
        if len(maps) != len(self.mlps) or len(positions) != len(self.mlps):
            raise ValueError(f"maps: expected {len(self.mlps)} maps and position sets, found {len(maps)} and "
                             f"{len(positions)}")
        return [F.normalize(mlp(m.flatten(2)[:, :, p].transpose(1, 2)), dim=-1)
                for m, p, mlp in zip(maps, positions, self.mlps)]


def sample_patches(maps: Sequence[torch.Tensor], num_patches: int, generator: torch.Generator) -> list[torch.Tensor]:
    """For each map (N, C, H, W): ``min(num_patches, H * W)`` distinct flat positions drawn from ``generator`` (CPU),
    the same for every image of the batch."""
    check_int("num_patches", num_patches, 1)
    return [torch.randperm(m.shape[2] * m.shape[3], generator=generator)[:num_patches].to(m.device) for m in maps]


def patch_nce_loss(query: torch.Tensor, key: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """InfoNCE of L2-normalised patch features ``query`` and ``key``, both (N, P, D): for each query patch the
    positive is the key at the same position, the negatives the other P - 1 keys of the same image; cross-entropy
    of the similarities / ``temperature``, averaged over the N * P patches. The keys get no gradient."""
    if query.ndim != 3 or query.shape != key.shape:
        raise ValueError(f"key: expected the shape of query (N, P, D) {tuple(query.shape)}, found {tuple(key.shape)}")
    n, p, _ = query.shape
    logits = torch.bmm(query.float(), key.detach().float().transpose(1, 2)) / temperature
    target = torch.arange(p, device=query.device).repeat(n)
    return F.cross_entropy(logits.flatten(0, 1), target)
