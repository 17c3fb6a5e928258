"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) with an ADA-style adaptive strength.

Apply the same :func:`diff_augment` to every image the discriminator sees, real and fake, so the
generator is trained through the augmentation and does not learn to reproduce it.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .checks import check_int, check_number, check_probability

__all__ = ["AdaptiveAugment", "OPS", "POLICIES", "diff_augment"]

#: Elementary operations, in the order they are applied.
OPS = ("brightness", "saturation", "contrast", "translation", "cutout")
#: Policy names accepted by :func:`diff_augment` and the operations each one stands for.
POLICIES = {
    "color": ("brightness", "saturation", "contrast"),
    "brightness": ("brightness",),
    "saturation": ("saturation",),
    "contrast": ("contrast",),
    "translation": ("translation",),
    "cutout": ("cutout",),
}
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _parse_policy(policy: str | Sequence[str]) -> list[str]:
    if isinstance(policy, str):
        names = [p.strip() for p in policy.split(",") if p.strip()]
    elif isinstance(policy, (list, tuple)) and all(isinstance(p, str) for p in policy):
        names = [p.strip() for p in policy]
    else:
        found = type(policy).__name__
        raise TypeError(f"policy: expected a comma-separated string or a list of names, found {found}")
    bad = [n for n in names if n not in POLICIES]
    if bad:
        raise ValueError(f"policy: expected names from {sorted(POLICIES)}, found {bad}")
    ops = {op for n in names for op in POLICIES[n]}
    return [op for op in OPS if op in ops]


def _rand(shape, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(shape, generator=generator).to(device, non_blocking=True)


def _randint(low: int, high: int, shape, generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    return torch.randint(low, high, shape, generator=generator).to(device, non_blocking=True)


def _translate(x: torch.Tensor, generator, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros (padding + gather)."""
    n, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = _randint(-sh, sh + 1, (n, 1, 1), generator, x.device)
    tx = _randint(-sw, sw + 1, (n, 1, 1), generator, x.device)
    gb, gy, gx = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gy = (gy + ty + 1).clamp(0, h + 1)  # indices 0 and h + 1 land in the zero padding
    gx = (gx + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[gb, gy, gx].permute(0, 3, 1, 2).contiguous()


def _cutout(x: torch.Tensor, generator, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """Zero one square of side ``ratio`` x size per image, centred anywhere (clipped at borders)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(0, h + (1 - ch % 2), (n, 1), generator, x.device)
    cx = _randint(0, w + (1 - cw % 2), (n, 1), generator, x.device)
    rows = torch.arange(h, device=x.device).unsqueeze(0) - (cy - ch // 2)
    cols = torch.arange(w, device=x.device).unsqueeze(0) - (cx - cw // 2)
    inside = ((rows >= 0) & (rows < ch)).unsqueeze(2) & ((cols >= 0) & (cols < cw)).unsqueeze(1)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def _apply(op: str, x: torch.Tensor, generator) -> torch.Tensor:
    n = x.shape[0]
    if op == "brightness":  # add U(-0.5, 0.5)
        return x + (_rand((n, 1, 1, 1), generator, x.device).to(x.dtype) - 0.5)
    if op == "saturation":  # scale distance to the channel mean by U(0, 2)
        mean = x.mean(dim=1, keepdim=True)
        return (x - mean) * (_rand((n, 1, 1, 1), generator, x.device).to(x.dtype) * 2) + mean
    if op == "contrast":  # scale distance to the image mean by U(0.5, 1.5)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (_rand((n, 1, 1, 1), generator, x.device).to(x.dtype) + 0.5) + mean
    if op == "translation":
        return _translate(x, generator)
    return _cutout(x, generator)


def diff_augment(x: torch.Tensor, policy: str | Sequence[str] = "color,translation,cutout", p: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Differentiably augment a batch (N, C, H, W).

    ``policy`` names operations among ``color`` (brightness, saturation, contrast; saturation is
    skipped for 1-channel images), ``translation`` (shift by up to 1/8 of the size, zero fill) and
    ``cutout`` (a zeroed square of half the size); single colour ops may be named too. Each
    operation is applied to each sample independently with probability ``p``. Random numbers are
    drawn on the CPU from ``generator`` (or torch's global CPU RNG when None) and moved to
    ``x.device``, so a generator state gives the same augmentation on any device.
    """
    ops = _parse_policy(policy)
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        found = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x: expected a 4-D batch (N, C, H, W), found {found}")
    p = check_probability("p", float(p))
    cpu_gen = isinstance(generator, torch.Generator) and generator.device.type == "cpu"
    if generator is not None and not cpu_gen:
        raise ValueError(f"generator: expected a CPU torch.Generator or None, found {generator!r}")
    if p == 0.0 or x.shape[0] == 0:
        return x
    for op in ops:
        if op == "saturation" and x.shape[1] == 1:
            continue
        out = _apply(op, x, generator)
        if p < 1.0:
            keep = _rand((x.shape[0], 1, 1, 1), generator, x.device) >= p
            out = torch.where(keep, x, out)
        x = out
    return x


class AdaptiveAugment:
    """ADA heuristic (Karras et al. 2020) that sets the augmentation probability ``p``.

    Call :meth:`update` with the discriminator's logits on (augmented) real images after each D
    step. Every ``interval`` calls, ``r_t = E[sign(real logits)]`` over those calls is compared
    with ``target``: above it D is overfitting and ``p`` rises by ``speed``, below it ``p``
    falls by ``speed``; ``p`` stays in [0, 1]. With the defaults ``p`` can go from 0 to 1 in 200
    adjustments (800 D steps).
    """

    def __init__(self, target: float = 0.6, speed: float = 0.005, p_init: float = 0.0, interval: int = 4):
        check_number("target", target, 0.0, 1.0, low_open=True, high_open=True)
        check_number("speed", speed, 0.0, low_open=True)
        check_probability("p_init", p_init)
        check_int("interval", interval, 1)
        self.target = float(target)
        self.speed = float(speed)
        self.interval = interval
        self.p = float(p_init)
        self.r_t = 0.0
        self._calls = 0
        self._sign_sum: torch.Tensor | float = 0.0
        self._count = 0

    def __repr__(self) -> str:
        return (f"AdaptiveAugment(p={self.p:.4f}, r_t={self.r_t:.3f}, target={self.target}, "
                f"speed={self.speed}, interval={self.interval})")

    def update(self, real_logits: torch.Tensor | Sequence[torch.Tensor]) -> float:
        """Accumulate ``sign(real_logits)``; adjust and return ``p`` (every ``interval`` calls)."""
        tensors = [real_logits] if isinstance(real_logits, torch.Tensor) else list(real_logits)
        if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
            found = type(real_logits).__name__
            raise TypeError(f"real_logits: expected a tensor or a list of tensors, found {found}")
        for t in tensors:
            self._sign_sum = self._sign_sum + t.detach().float().sign().sum()
            self._count += t.numel()
        self._calls += 1
        if self._calls >= self.interval:
            self.r_t = float(self._sign_sum) / max(self._count, 1)
            step = self.speed if self.r_t > self.target else -self.speed if self.r_t < self.target else 0.0
            self.p = min(1.0, max(0.0, self.p + step))
            self._calls, self._sign_sum, self._count = 0, 0.0, 0
        return self.p

    def state_dict(self) -> dict:
        """Plain-number state (safe for JSON and ``torch.load(weights_only=True)``)."""
        return {"p": self.p, "r_t": self.r_t, "target": self.target, "speed": self.speed,
                "interval": self.interval, "calls": self._calls, "sign_sum": float(self._sign_sum),
                "count": self._count}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        missing = {"p", "r_t"} - set(state)
        if missing:
            raise ValueError(f"state: expected keys p and r_t, found {sorted(state)}")
        self.p, self.r_t = float(state["p"]), float(state["r_t"])
        self.target = float(state.get("target", self.target))
        self.speed = float(state.get("speed", self.speed))
        self.interval = int(state.get("interval", self.interval))
        self._calls = int(state.get("calls", 0))
        self._sign_sum = float(state.get("sign_sum", 0.0))
        self._count = int(state.get("count", 0))
