"""Progressive growing (Karras et al. 2018, ProGAN; kept by StyleGAN): the schedule of the conditional GAN recipe.

Training starts at a low resolution (real images average-pooled to it) and fades in each higher-resolution block
in turn: for ``fade_steps`` steps the new block's weight ``alpha`` rises linearly to 1, blending the generator's
output with the upsampled output of the resolution below (and the discriminator's top block with the fromRGB of the
pooled input, and the real images with their own upsampled lower-resolution version, so that real and fake are
treated alike); ``stable_steps`` steps at each resolution follow, the full one last, until the run ends::

    stable(start) | fade(2 start) | stable(2 start) | ... | fade(image_size) | stable(image_size) ...

The nets are built at full size from the start (``progressive=True`` adds the toRGB / fromRGB layers of the lower
resolutions), so no parameter ever changes shape: optimisers, the EMA generator and checkpoints need nothing
special. The stage is a pure function of the step, so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..nets.layers import fade_in, grow_resolutions

__all__ = ["PROGRESSIVE_DEFAULTS", "ProgressiveSchedule", "Stage", "check_progressive_options", "default_start"]

#: Settings of ``CGANConfig.progressive`` (a dict overriding some of these; ``{}`` takes them all). ``start`` None:
#: picked from the image size by :func:`default_start` (8 px for 16-256 px images, 7 px for 28 px ones).
PROGRESSIVE_DEFAULTS = {"start": None, "fade_steps": 500, "stable_steps": 500}


def default_start(image_size: int) -> int:
    """The default first resolution of the schedule for ``image_size`` px images: of the nets' resolutions below the
    image size (``grow_resolutions``: 4, 8, 16, ... or 7, 14 for 28 px), the one nearest 8 px (the smaller on a tie):
    8 for 16-256 px images, 7 for 28 px ones, 4 for 8 px ones. ``ValueError`` if there is none (nothing to grow)."""
    below = grow_resolutions(image_size)[:-1]
    if not below:
        raise ValueError(f"progressive: expected images larger than the nets' smallest resolution to grow from, "
                         f"found image_size {image_size}")
    return min(below, key=lambda r: (abs(r - 8), r))


def check_progressive_options(options, image_size: int | None = None) -> dict | None:
    """``CGANConfig.progressive``: None (off) or a dict of :data:`PROGRESSIVE_DEFAULTS` keys with int values,
    ``start`` >= 1 (or None: :func:`default_start`), ``fade_steps`` >= 1, ``stable_steps`` >= 0. Returns the full
    settings (defaults filled in; with ``image_size``, ``start`` None resolved for that size)."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise TypeError(f"progressive: expected None (off) or a dict with keys among {sorted(PROGRESSIVE_DEFAULTS)}, "
                        f"found {type(options).__name__}")
    unknown = sorted(set(options) - set(PROGRESSIVE_DEFAULTS))
    if unknown:
        raise ValueError(f"progressive: expected keys among {sorted(PROGRESSIVE_DEFAULTS)}, found unknown {unknown}")
    full = {**PROGRESSIVE_DEFAULTS, **options}
    if full["start"] is None and image_size is not None:
        full["start"] = default_start(image_size)
    for key, low in (("start", 1), ("fade_steps", 1), ("stable_steps", 0)):
        v = full[key]
        if key == "start" and v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise ValueError(f"progressive[{key!r}]: expected an int >= {low}, found {v!r}")
        full[key] = int(v)
    return full


@dataclass(frozen=True)
class Stage:
    """Where the schedule is at one step: the training ``resolution`` and the new block's weight ``alpha``."""

    resolution: int
    alpha: float

    @property
    def kwargs(self) -> dict:
        """The keyword arguments of the nets' forward methods for this stage."""
        return {"resolution": self.resolution, "alpha": self.alpha}


class ProgressiveSchedule:
    """The progressive-growing schedule for ``image_size`` px images (settings as :data:`PROGRESSIVE_DEFAULTS`;
    ``start`` None: :func:`default_start`).

    ``resolutions``: those trained, ``start`` up to ``image_size`` (the nets' own, e.g. 8, 16, 32, 64; 7, 14, 28
    for 28 px). Growing from ``start`` to full takes ``steps_to_full`` steps; from then on the run is at full
    resolution with ``alpha = 1``. ``steps_done`` (checkpointed) counts the steps trained, so the recipe knows
    whether the schedule has finished when it exports the model.
    """

    def __init__(self, image_size: int, start: int | None = PROGRESSIVE_DEFAULTS["start"],
                 fade_steps: int = PROGRESSIVE_DEFAULTS["fade_steps"],
                 stable_steps: int = PROGRESSIVE_DEFAULTS["stable_steps"]):
        opts = check_progressive_options({"start": start, "fade_steps": fade_steps, "stable_steps": stable_steps},
                                         image_size=image_size)
        grown = grow_resolutions(image_size)
        below = grown[:-1]
        if opts["start"] not in below:
            why = (f"larger than the image size {image_size}" if opts["start"] > image_size else
                   "the image size itself: nothing to grow" if opts["start"] == image_size else
                   f"not one of the nets' resolutions {grown} (a power of two below the image size"
                   + (", or 7 and 14 for 28 px)" if image_size == 28 else ")"))
            raise ValueError(f"progressive['start']: expected one of {below} (the resolutions below image_size "
                             f"{image_size} the nets grow through), found {opts['start']} ({why})")
        self.image_size = int(image_size)
        self.start, self.fade_steps, self.stable_steps = opts["start"], opts["fade_steps"], opts["stable_steps"]
        self.resolutions = grown[grown.index(self.start):]
        self.steps_done = 0

    @property
    def options(self) -> dict:
        """The settings, as ``CGANConfig.progressive`` records them."""
        return {"start": self.start, "fade_steps": self.fade_steps, "stable_steps": self.stable_steps}

    @property
    def steps_to_full(self) -> int:
        """Steps until the full resolution is fully in (its last fade step, ``alpha = 1``, is ``steps_to_full - 1``)."""
        return (len(self.resolutions) - 1) * (self.stable_steps + self.fade_steps)

    def stage(self, step: int) -> Stage:
        """The stage of step ``step`` (0-based). In a fade the ``t``-th step (0-based) has ``alpha = (t + 1) /
        fade_steps``: it rises linearly and reaches 1 on the fade's last step."""
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"step: expected an int >= 0, found {step!r}")
        period = self.stable_steps + self.fade_steps
        k, t = divmod(int(step), period) if period else (0, 0)
        if k >= len(self.resolutions) - 1:
            return Stage(self.image_size, 1.0)
        if t < self.stable_steps:
            return Stage(self.resolutions[k], 1.0)
        return Stage(self.resolutions[k + 1], (t - self.stable_steps + 1) / self.fade_steps)

    @property
    def finished(self) -> bool:
        """Whether the steps trained so far reach the full resolution at ``alpha = 1``."""
        return self.steps_done >= self.steps_to_full

    @staticmethod
    def real_images(x: torch.Tensor, stage: Stage) -> torch.Tensor:
        """Real images ``x`` (N, C, S, S) as the discriminator sees them at ``stage``: average-pooled to its
        resolution and, while a block fades in, blended with their own upsampled lower-resolution version exactly
        as the generator's output is."""
        factor = x.shape[-1] // stage.resolution
        if factor * stage.resolution != x.shape[-1] or x.shape[-2] != x.shape[-1]:
            raise ValueError(f"x: expected square images whose size is a multiple of {stage.resolution}, found "
                             f"{tuple(x.shape[-2:])}")
        if factor > 1:
            x = F.avg_pool2d(x, factor)
        if stage.alpha < 1.0:
            x = fade_in(F.avg_pool2d(x, 2), x, stage.alpha)
        return x

    def upsample(self, images: torch.Tensor) -> torch.Tensor:
        """Images of a lower stage brought to ``image_size`` (nearest), for sample grids."""
        if images.shape[-1] == self.image_size:
            return images
        return F.interpolate(images, size=(self.image_size, self.image_size), mode="nearest")

    def state_dict(self) -> dict:
        return {"steps_done": self.steps_done, **self.options}

    def load_state_dict(self, state: dict) -> None:
        saved = {k: state.get(k) for k in self.options}
        if saved != self.options:
            raise ValueError(f"checkpoint: expected the progressive schedule {self.options}, found {saved}")
        self.steps_done = int(state["steps_done"])
