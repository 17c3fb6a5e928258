"""Base class of a training recipe (the hooks the :class:`~synthaug.train.engine.Trainer` calls) and the recipe
registry: ``@register_recipe("cgan", CGANConfig)`` makes a recipe and its config dataclass known by name; the name is
also the ``kind`` of the model directory it writes (:func:`synthaug.registry.model_kinds`)."""

from __future__ import annotations

import contextlib
import inspect
from abc import ABC, abstractmethod
from dataclasses import asdict, is_dataclass

import torch
import torch.nn as nn

from ..registry import RECIPE_EXPORTS, Registry, add_model_kind, check_model_kind
from ..utils import get_device
from . import distributed


def cpu_has_bf16() -> bool:
    """True when this CPU has native bfloat16 instructions that oneDNN uses (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class Recipe(ABC):
    """Holds nets, optimisers, batch samplers and a private RNG; subclasses fill in the training step.

    Subclasses register what must be checkpointed in ``self.nets`` (modules, EMA copies included),
    ``self.optimizers``, ``self.samplers`` and ``self.extras`` (objects with ``state_dict``), and
    implement :meth:`train_step`, :meth:`sample_grid` and :meth:`save_pretrained`.
    """

    name = "recipe"  # set by register_recipe, as is config_class
    exports: str | None = None  # the model its save_pretrained writes: "generator", "translator" or "upscaler"

    def __init__(self, config, device=None, seed: int = 0):
        self.config = config
        self.dist = distributed.current()
        self.device = get_device(device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.seed = int(seed)
        self.rng = torch.Generator().manual_seed(self.seed)  # CPU: noise, labels, augmentation draws
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, object] = {}
        self.samplers: dict[str, object] = {}
        self.extras: dict[str, object] = {}
        self.amp = bool(getattr(config, "amp", True)) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.cpu_bf16 = bool(getattr(config, "cpu_bf16", False)) and self.device.type == "cpu" and cpu_has_bf16()

    # -------------------------------------------------------------- helpers
    @property
    def run_length(self) -> int | None:
        """Steps the recipe's schedule is planned for (its config's ``steps``), or None if it has no schedule:
        the :class:`~synthaug.train.engine.Trainer` runs this many steps and refuses any other count."""
        return getattr(self.config, "steps", None)

    def min_steps(self) -> int:
        """The shortest run this recipe's settings allow (a progressive schedule's length; default 1): the floor of
        the Trainer's run length under ``SYNTHAUG_QUICK`` (:func:`synthaug.utils.quick_steps`)."""
        return 1

    def check_steps(self, steps: int) -> None:
        """Raise ``ValueError`` if a run of ``steps`` steps cannot serve this recipe's settings (e.g. a schedule
        that needs more); the :class:`~synthaug.train.engine.Trainer` asks before training. Default: any length."""
        return None

    @classmethod
    def planned_config_dict(cls, config, **attributes) -> dict:
        """What :meth:`config_dict` of a recipe of this class built with ``config`` will return, without building it
        (no nets, no helper classifier trained): ``config_dict`` runs on a bare instance holding ``config`` and
        ``attributes`` (those it reads besides the config: the cGAN's ``seed``, ``image_size`` and ``unlabelled``).
        The command line compares it with an output folder's checkpoint (:func:`~synthaug.train.engine.check_out_dir`)
        before the expensive construction."""
        probe = cls.__new__(cls)
        probe.config = config
        for name, value in attributes.items():
            setattr(probe, name, value)
        return probe.config_dict()

    def config_dict(self) -> dict:
        """The recipe's settings as plain JSON values (a resumed run must match them)."""
        cfg = asdict(self.config) if is_dataclass(self.config) else dict(self.config)
        cfg.pop("amp", None)
        if not cfg.get("cpu_bf16"):  # off: config.json and checkpoints exactly as before the option existed
            cfg.pop("cpu_bf16", None)
        return cfg

    def autocast(self):
        """Mixed precision: float16 on CUDA when ``amp`` is on; bfloat16 on a CPU with native bf16 instructions
        when the config's ``cpu_bf16`` is on; a no-op elsewhere."""
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        if self.cpu_bf16:
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def adam(self, params, lr: float, betas) -> torch.optim.Adam:
        """Adam with the fused kernel where torch has one for the device (CPU, CUDA): the same update as the
        default implementation, several times faster on a CPU (one pass over all parameters)."""
        fused = self.device.type in ("cpu", "cuda") or None
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=fused)

    def noise(self, n: int, *dims: int) -> torch.Tensor:
        """Standard normal noise for this rank's ``n`` samples, on the training device.

        Drawn for the global batch from the recipe's RNG, so every rank's stream stays in step and N
        processes see exactly the noise that one process would."""
        z = torch.randn(n * self.dist.world_size, *dims, generator=self.rng)
        return distributed.local_slice(z).to(self.device)

    def batch_indices(self, sampler: str) -> torch.Tensor:
        """This rank's share of the next global batch of sampler ``sampler``."""
        return distributed.local_slice(self.samplers[sampler].next())

    def step_generator(self, step: int, call: int = 0) -> torch.Generator:
        """A CPU generator for per-sample random augmentation, derived from (seed, step, rank, call).

        Stateless, so resumed runs repeat exactly, and distinct per rank, so ranks augment differently."""
        key = (self.seed * 1_000_003 + step * 7_919 + self.dist.rank * 104_729 + call * 31) % (2**63)
        return torch.Generator().manual_seed(key)

    def optimize(self, loss: torch.Tensor, opt_name: str, params, clip: float | None = None) -> None:
        """Backward ``loss`` and step optimiser ``opt_name`` (AMP scaling and gradient clipping included)."""
        opt = self.optimizers[opt_name]
        params = list(params)
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        distributed.average_gradients(params)
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

    @torch.no_grad()
    def weights_finite(self) -> bool:
        """True if every parameter and floating buffer of every net is finite (checked before checkpoints)."""
        for net in self.nets.values():
            for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
                if not torch.isfinite(t).all():
                    return False
        return True

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


def _check_recipe(name: str, cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise TypeError(f"recipe {name!r}: expected a Recipe subclass, found {cls!r}")
    if inspect.isabstract(cls):
        raise TypeError(f"recipe {name!r} ({cls.__name__}): missing method(s) {sorted(cls.__abstractmethods__)} "
                        "required of a recipe (Recipe)")
    config = getattr(cls, "config_class", None)
    if not (isinstance(config, type) and is_dataclass(config)):
        raise TypeError(f"recipe {name!r} ({cls.__name__}): expected a dataclass config class, found {config!r}")
    if cls.exports not in RECIPE_EXPORTS:
        raise TypeError(f"recipe {name!r} ({cls.__name__}): expected exports one of {list(RECIPE_EXPORTS)} (the model "
                        f"its save_pretrained writes, of kind {name!r}), found {cls.exports!r}")
    check_model_kind(name, cls.exports)  # the kind synthaug.models loads as that role


RECIPES = Registry("recipe", _check_recipe)


def register_recipe(name: str, config: type):
    """Class decorator: register a :class:`Recipe` subclass as ``name`` with its config dataclass."""

    def deco(cls):
        own = vars(cls).get("config_class")
        cls.config_class = config
        try:
            RECIPES.add(name, cls)
        except (TypeError, ValueError):  # a refused registration leaves the class as it was
            if own is None:
                del cls.config_class
            else:
                cls.config_class = own
            raise
        cls.name = name
        add_model_kind(name, cls.exports)
        return cls

    return deco


def get_recipe(name: str) -> type[Recipe]:
    """The recipe class registered as ``name`` (its config dataclass is ``.config_class``)."""
    return RECIPES.get(name)


def list_recipes() -> list[str]:
    """Names of the registered recipes."""
    return RECIPES.names()
