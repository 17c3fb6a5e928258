"""GAN objectives (a registry of them by name, one :class:`GANLoss` to apply any) and the gradient penalties
(WGAN-GP, R1), BigGAN's orthogonal regulariser of generator weights, and the structure term of translators.

Logits may be a tensor of any shape (a patch map) or a list of tensors (a multi-scale
discriminator): each tensor is reduced by its mean, then a list is averaged. Everything is computed
in float32, so the functions are safe under CUDA autocast.
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from .checks import check_choice, check_number
from .registry import Registry

__all__ = ["GANLoss", "GANObjective", "MODES", "register_loss", "list_losses", "gradient_penalty", "r1_penalty",
           "orthogonal_regularisation", "structure_loss"]

Logits = Union[torch.Tensor, Sequence[torch.Tensor]]


def _as_list(logits: Logits, name: str) -> list[torch.Tensor]:
    if isinstance(logits, torch.Tensor):
        return [logits]
    if isinstance(logits, (list, tuple)) and logits and all(isinstance(t, torch.Tensor) for t in logits):
        return list(logits)
    found = type(logits).__name__
    raise TypeError(f"{name}: expected a tensor or a non-empty list of tensors, found {found}")


class GANObjective:
    """The per-tensor terms of one GAN loss. Subclass it, override both terms, register it with
    :func:`register_loss`; :class:`GANLoss` does the reductions, float32 casts and argument checks.

    ``supports_label_smoothing``: ``d_term`` honours a real target ``1 - s`` (else ``s`` must be 0).
    ``needs_gradient_penalty``: the critic must be kept Lipschitz, so recipes add :func:`gradient_penalty`.
    """

    supports_label_smoothing = False
    needs_gradient_penalty = False

    def d_term(self, real: torch.Tensor, fake: torch.Tensor, s: float) -> torch.Tensor:
        """Discriminator loss (scalar) of float32 logits; ``s`` is the label smoothing."""
        raise NotImplementedError

    def g_term(self, fake: torch.Tensor) -> torch.Tensor:
        """Generator loss (scalar) of float32 fake logits."""
        raise NotImplementedError


def _check_objective(name: str, cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, GANObjective)):
        raise TypeError(f"loss {name!r}: expected a GANObjective subclass, found {cls!r}")
    for term in ("d_term", "g_term"):
        if getattr(cls, term) is getattr(GANObjective, term):
            raise TypeError(f"loss {name!r} ({cls.__name__}): missing method {term} required of a loss (GANObjective)")


LOSSES = Registry("loss", _check_objective)


def register_loss(name: str):
    """Class decorator: make a :class:`GANObjective` subclass selectable as ``GANLoss(name)`` / ``--loss name``."""
    return lambda cls: LOSSES.add(name, cls)


def list_losses() -> list[str]:
    """Names of the registered GAN losses."""
    return LOSSES.names()


@register_loss("minimax")
class Minimax(GANObjective):
    """d: BCE(real, 1 - s) + BCE(fake, 0); g: log(1 - D(G(z))) (saturating)."""

    supports_label_smoothing = True

    def d_term(self, real, fake, s):
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, 1.0 - s))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))

    def g_term(self, fake):
        return -F.softplus(fake).mean()  # log(1 - sigmoid(x)) = -softplus(x)


@register_loss("nonsaturating")
class NonSaturating(Minimax):
    """d: as minimax; g: BCE(fake, 1) = -log D(G(z))."""

    def g_term(self, fake):
        return F.softplus(-fake).mean()  # -log(sigmoid(x))


@register_loss("hinge")
class Hinge(GANObjective):
    """d: relu(1 - real) + relu(1 + fake); g: -fake."""

    def d_term(self, real, fake, s):
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_term(self, fake):
        return -fake.mean()


@register_loss("lsgan")
class LeastSquares(GANObjective):
    """d: (real - (1 - s))^2 + fake^2; g: (fake - 1)^2."""

    supports_label_smoothing = True

    def d_term(self, real, fake, s):
        return (real - (1.0 - s)).pow(2).mean() + fake.pow(2).mean()

    def g_term(self, fake):
        return (fake - 1.0).pow(2).mean()


@register_loss("wgan")
class Wasserstein(GANObjective):
    """d: fake - real (plus :func:`gradient_penalty`, added by the recipe); g: -fake."""

    needs_gradient_penalty = True

    def d_term(self, real, fake, s):
        return fake.mean() - real.mean()

    def g_term(self, fake):
        return -fake.mean()


MODES = tuple(list_losses())  # the built-in losses; list_losses() also names ones registered later


class GANLoss:
    """Discriminator and generator objectives of the registered loss ``mode``.

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
        self.mode = check_choice("mode", mode, list_losses())
        self.objective: GANObjective = LOSSES.get(mode)()

    def __repr__(self) -> str:
        return f"GANLoss(mode={self.mode!r})"

    @property
    def needs_gradient_penalty(self) -> bool:
        """True if the recipe must add :func:`gradient_penalty` to the discriminator loss (``wgan``)."""
        return self.objective.needs_gradient_penalty

    def d_loss(self, real_logits: Logits, fake_logits: Logits, label_smoothing: float = 0.0) -> torch.Tensor:
        """Discriminator loss (scalar), lower when real logits are high and fake logits low."""
        s = check_number("label_smoothing", label_smoothing, 0.0, 1.0, high_open=True)
        if s > 0 and not self.objective.supports_label_smoothing:
            smoothable = [m for m in list_losses() if LOSSES.get(m).supports_label_smoothing]
            raise ValueError(f"label_smoothing: expected 0 for mode {self.mode!r} (smoothing applies to "
                             f"{', '.join(smoothable)} only), found {label_smoothing!r}")
        reals, fakes = _as_list(real_logits, "real_logits"), _as_list(fake_logits, "fake_logits")
        if len(reals) != len(fakes):
            raise ValueError(f"fake_logits: expected as many tensors as real_logits ({len(reals)}), "
                             f"found {len(fakes)}")
        return torch.stack([self.objective.d_term(r.float(), f.float(), s) for r, f in zip(reals, fakes)]).mean()

    def g_loss(self, fake_logits: Logits) -> torch.Tensor:
        """Generator loss (scalar), lower when fake logits are high."""
        return torch.stack([self.objective.g_term(f.float()) for f in _as_list(fake_logits, "fake_logits")]).mean()


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


def _filters(module: torch.nn.Module) -> torch.Tensor | None:
    """The trained weight of a conv or linear layer as (output filters, fan-in), or None for other modules.

    For a spectral-norm layer this is the raw weight the optimiser updates (BigGAN regularises it, not W / sigma).
    """
    if not isinstance(module, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d,
                               torch.nn.ConvTranspose2d)):
        return None
    params = getattr(module, "parametrizations", None)
    w = params["weight"].original if params is not None and "weight" in params else module.weight
    if isinstance(module, torch.nn.ConvTranspose2d):  # stored (in, out, kh, kw): output filters are dim 1
        w = w.transpose(0, 1)
    return w.reshape(w.shape[0], -1)


def orthogonal_regularisation(module: torch.nn.Module) -> torch.Tensor:
    """BigGAN's off-diagonal orthogonal regulariser: ``sum_W ||W W^T * (1 - I)||_F^2`` over the conv and linear
    weights ``W`` of ``module`` (rows: output filters; embeddings, biases and norms are left out), float32.

    Zero exactly when every layer's filters are mutually orthogonal, whatever their norms (unlike full orthogonal
    regularisation, the filter norms are free). Multiply by beta (~1e-4 in BigGAN) and add to the generator loss.
    """
    total = None
    for m in module.modules():
        w = _filters(m)
        if w is None:
            continue
        w = w.float()
        if w.shape[0] <= w.shape[1]:
            gram = w @ w.T
            term = (gram - torch.diag_embed(gram.diagonal())).pow(2).sum()
        else:  # many filters, small fan-in: ||W W^T||_F = ||W^T W||_F, without the (rows x rows) Gram matrix
            sq = w.pow(2).sum(dim=1)
            term = (w.T @ w).pow(2).sum() - sq.pow(2).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError(f"module: expected a net with conv or linear layers to regularise, found none in "
                         f"{type(module).__name__}")
    return total


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]) if x.shape[1] == 3 else x.mean(1, keepdim=True)


def structure_loss(source: torch.Tensor, translated: torch.Tensor, window: int = 7,
                   min_contrast: float = 0.25) -> torch.Tensor:
    """``1 - s`` averaged over pixels: a content term for translators that is blind to brightness and to a loss of
    contrast down to ``min_contrast`` of the source's, so a translator may add haze (fog lowers contrast, it does
    not move edges) but pays for moving, inventing or erasing shapes -- the content-keeping idea of
    structure-constrained CycleGAN (Yang et al. 2018).

    ``s`` is the local correlation of the two images' luma in ``window`` x ``window`` boxes (SSIM's structure
    term, images in [-1, 1]), with the translation's local standard deviation counted as at least ``min_contrast``
    times the source's: a kept pattern at any contrast >= that floor scores 1, a flattened one about 0, an inverted
    one -1. Areas flat in the source count as kept (SSIM's stabilising constant). Float32, so safe under autocast."""
    if source.shape != translated.shape or source.dim() != 4:
        raise ValueError(f"structure_loss: expected two NCHW batches of one shape, found {tuple(source.shape)} and "
                         f"{tuple(translated.shape)}")
    check_number("min_contrast", min_contrast, 0.0, 1.0, low_open=True)
    x, y = _luma(source.float()), _luma(translated.float())
    pad = window // 2

    def mean(t):
        return F.avg_pool2d(F.pad(t, (pad, pad, pad, pad), mode="reflect"), window, stride=1)

    mx, my = mean(x), mean(y)
    sx = (mean(x * x) - mx * mx).clamp_min(0).add(1e-8).sqrt()
    sy = (mean(y * y) - my * my).clamp_min(0).add(1e-8).sqrt()
    cov = mean(x * y) - mx * my
    c = (0.03 * 2.0) ** 2 / 2  # SSIM's C3 = C2 / 2 for a data range of 2
    return (1 - (cov + c) / (sx * torch.maximum(sy, min_contrast * sx) + c)).mean()
