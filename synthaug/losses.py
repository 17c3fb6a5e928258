"""GAN objectives (one class for every mode) and the gradient penalties (WGAN-GP, R1).

Logits may be a tensor of any shape (a patch map) or a list of tensors (a multi-scale
discriminator): each tensor is reduced by its mean, then a list is averaged. Everything is computed
in float32, so the functions are safe under CUDA autocast.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

__all__ = ["GANLoss", "MODES", "gradient_penalty", "r1_penalty"]

MODES = ("minimax", "nonsaturating", "hinge", "lsgan", "wgan")

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]


def _as_list(logits: Logits, name: str) -> list[torch.Tensor]:
    if isinstance(logits, torch.Tensor):
        return [logits]
    if isinstance(logits, (list, tuple)) and logits and all(isinstance(t, torch.Tensor) for t in logits):
        return list(logits)
    found = type(logits).__name__
    raise TypeError(f"{name}: expected a tensor or a non-empty list of tensors, found {found}")


class GANLoss:
    """Discriminator and generator objectives for ``mode``.

    =============== ========================================== ==========================
    mode            d_loss (real term + fake term)             g_loss
    =============== ========================================== ==========================
    minimax         BCE(real, 1 - s) + BCE(fake, 0)            log(1 - D(G(z))) (saturating)
    nonsaturating   BCE(real, 1 - s) + BCE(fake, 0)            BCE(fake, 1) = -log D(G(z))
    hinge           relu(1 - real) + relu(1 + fake)            -fake
    lsgan           (real - (1 - s))^2 + fake^2                (fake - 1)^2
    wgan            fake - real (add :func:`gradient_penalty`) -fake
    =============== ========================================== ==========================

    ``s`` is one-sided label smoothing (real target ``1 - s``); it exists only for the
    minimax, nonsaturating and lsgan modes.
    """

    def __init__(self, mode: str = "hinge"):
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {list(MODES)}, found {mode!r}")
        self.mode = mode

    def __repr__(self) -> str:
        return f"GANLoss(mode={self.mode!r})"

    def _d_single(self, real: torch.Tensor, fake: torch.Tensor, s: float) -> torch.Tensor:
        real, fake = real.float(), fake.float()
        if self.mode in ("minimax", "nonsaturating"):
            return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1.0 - s))
                    + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        if self.mode == "hinge":
            return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        if self.mode == "lsgan":
            return (real - (1.0 - s)).pow(2).mean() + fake.pow(2).mean()
        return fake.mean() - real.mean()  # wgan

    def _g_single(self, fake: torch.Tensor) -> torch.Tensor:
        fake = fake.float()
        if self.mode == "minimax":
            return -F.softplus(fake).mean()  # log(1 - sigmoid(x)) = -softplus(x)
        if self.mode == "nonsaturating":
            return F.softplus(-fake).mean()  # -log(sigmoid(x))
        if self.mode == "lsgan":
            return (fake - 1.0).pow(2).mean()
        return -fake.mean()  # hinge, wgan

    def d_loss(self, real_logits: Logits, fake_logits: Logits, label_smoothing: float = 0.0) -> torch.Tensor:
        """Discriminator loss (scalar), lower when real logits are high and fake logits low."""
        s = float(label_smoothing)
        if not 0.0 <= s < 1.0:
            raise ValueError(f"label_smoothing: expected a float in [0, 1), found {label_smoothing!r}")
        if s > 0 and self.mode in ("hinge", "wgan"):
            raise ValueError(f"label_smoothing: expected 0 for mode {self.mode!r} (smoothing applies to "
                             f"minimax, nonsaturating and lsgan only), found {label_smoothing!r}")
        reals, fakes = _as_list(real_logits, "real_logits"), _as_list(fake_logits, "fake_logits")
        if len(reals) != len(fakes):
            raise ValueError(f"fake_logits: expected as many tensors as real_logits ({len(reals)}), "
                             f"found {len(fakes)}")
        return torch.stack([self._d_single(r, f, s) for r, f in zip(reals, fakes)]).mean()

    def g_loss(self, fake_logits: Logits) -> torch.Tensor:
        """Generator loss (scalar), lower when fake logits are high."""
        return torch.stack([self._g_single(f) for f in _as_list(fake_logits, "fake_logits")]).mean()


def _logit_sum(out: Logits) -> torch.Tensor:
    return sum(t.float().sum() for t in _as_list(out, "logits"))


def gradient_penalty(d_fn: Callable[[torch.Tensor], Logits], real: torch.Tensor, fake: torch.Tensor,
                     target: float = 1.0) -> torch.Tensor:
    """WGAN-GP: ``mean((||grad_x d_fn(x_hat)||_2 - target)^2)`` on random interpolates of real and fake.

    ``d_fn`` maps images to logits (close over the labels). The critic is evaluated on the
    interpolates in float32 with autocast off, and the graph is kept so the penalty trains D.
    Multiply the result by the penalty weight (usually 10).
    """
    if real.shape != fake.shape:
        raise ValueError(f"fake: expected the shape of real {tuple(real.shape)}, found {tuple(fake.shape)}")
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=torch.float32)
    x_hat = (eps * real.detach().float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        out = d_fn(x_hat)
        (grad,) = torch.autograd.grad(_logit_sum(out), x_hat, create_graph=True)
        norm = (grad.flatten(1).pow(2).sum(dim=1) + 1e-12).sqrt()
        return (norm - target).pow(2).mean()


def r1_penalty(real_logits: Logits, real_images: torch.Tensor) -> torch.Tensor:
    """R1: mean over the batch of ``||grad_x D(x)||^2`` at real images (multiply by gamma / 2).

    ``real_images`` must be the tensor (with ``requires_grad=True``) that produced ``real_logits``.
    """
    if not isinstance(real_images, torch.Tensor) or not real_images.requires_grad:
        raise ValueError("real_images: expected the D input with requires_grad=True (call x.detach()"
                         ".requires_grad_(True) before the forward pass), found requires_grad=False")
    (grad,) = torch.autograd.grad(_logit_sum(real_logits), real_images, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(dim=1).mean()
