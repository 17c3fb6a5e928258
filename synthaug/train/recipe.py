"""Base class of a training recipe: the small set of hooks the :class:`~synthaug.train.engine.Trainer` calls."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import asdict, is_dataclass

import torch
import torch.nn as nn

from ..utils import get_device


class Recipe(ABC):
    """Holds nets, optimisers, batch samplers and a private RNG; subclasses fill in the training step.

    Subclasses register what must be checkpointed in ``self.nets`` (modules, EMA copies included),
    ``self.optimizers``, ``self.samplers`` and ``self.extras`` (objects with ``state_dict``), and
    implement :meth:`train_step`, :meth:`sample_grid` and :meth:`save_pretrained`.
    """

    name = "recipe"

    def __init__(self, config, device=None, seed: int = 0):
        self.config = config
        self.device = get_device(device)
        self.seed = int(seed)
        self.rng = torch.Generator().manual_seed(self.seed)  # CPU: noise, labels, augmentation draws
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, object] = {}
        self.samplers: dict[str, object] = {}
        self.extras: dict[str, object] = {}
        self.amp = bool(getattr(config, "amp", True)) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    # -------------------------------------------------------------- helpers
    def config_dict(self) -> dict:
        """The recipe's settings as plain JSON values (a resumed run must match them)."""
        cfg = asdict(self.config) if is_dataclass(self.config) else dict(self.config)
        cfg.pop("amp", None)
        return cfg

    def autocast(self):
        """Mixed precision (float16) on CUDA when ``amp`` is on; a no-op elsewhere."""
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def randn(self, *shape) -> torch.Tensor:
        """Standard normal noise from the recipe's RNG, on the training device."""
        return torch.randn(*shape, generator=self.rng).to(self.device)

    def optimize(self, loss: torch.Tensor, opt_name: str, params, clip: float | None = None) -> None:
        """Backward ``loss`` and step optimiser ``opt_name`` (AMP scaling and gradient clipping included)."""
        opt = self.optimizers[opt_name]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if clip:
            self.scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, clip)
        self.scaler.step(opt)
        self.scaler.update()

    def scale_lr(self, factor: float) -> None:
        """Multiply every optimiser's learning rate by ``factor`` (used by the non-finite-loss rollback)."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] *= factor
        for sched in self.schedulers.values():
            if hasattr(sched, "base_lrs"):
                sched.base_lrs = [lr * factor for lr in sched.base_lrs]

    # ------------------------------------------------------ state for resume
    def state_dict(self) -> dict:
        return {
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedulers": {k: v.state_dict() for k, v in self.schedulers.items()},
            "samplers": {k: v.state_dict() for k, v in self.samplers.items()},
            "extras": {k: v.state_dict() for k, v in self.extras.items()},
            "scaler": self.scaler.state_dict(),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        for group in ("nets", "optimizers", "schedulers", "samplers", "extras"):
            mine, theirs = getattr(self, group), state[group]
            if set(mine) != set(theirs):
                raise ValueError(f"checkpoint: expected {group} {sorted(mine)}, found {sorted(theirs)}")
            for k, obj in mine.items():
                obj.load_state_dict(theirs[k])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.rng.set_state(state["rng"])

    # ------------------------------------------------------- recipe hooks
    @abstractmethod
    def train_step(self, step: int) -> dict[str, float]:
        """One optimisation step; returns the losses as floats."""

    @abstractmethod
    def sample_grid(self) -> tuple[torch.Tensor, int, list[str] | None]:
        """Images for the periodic PNG grid: (images in [-1, 1], images per row, row labels)."""

    @abstractmethod
    def save_pretrained(self, path) -> None:
        """Export the trained model directory (config.json + safetensors)."""
