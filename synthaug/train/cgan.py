"""Conditional GAN recipe: class-conditional generator vs projection discriminator, for scarce data."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from ..io import write_model_dir
from . import distributed
from .recipe import Recipe
from .sampler import BatchSampler
from ..utils import ema_with_warmup

LOSSES = ("minimax", "nonsaturating", "hinge", "lsgan", "wgan")


@dataclass
class CGANConfig:
    """Settings of a conditional GAN run (serialised into checkpoints and config.json).

    Defaults suit a few hundred images on a CPU: hinge loss, spectral-norm projection discriminator with a
    minibatch-stddev layer, DiffAugment on, EMA generator.
    """

    generator: str = "dcgan"
    discriminator: str = "projection"
    g_kwargs: dict = field(default_factory=dict)
    d_kwargs: dict = field(default_factory=dict)
    loss: str = "hinge"
    batch_size: int = 64
    lr_g: float = 2e-4            # TTUR: set lr_d != lr_g (e.g. 1e-4 / 4e-4)
    lr_d: float = 2e-4
    betas: tuple = (0.0, 0.99)
    n_critic: int = 1
    label_smoothing: float = 0.0  # one-sided, real targets 1 - s (minimax, nonsaturating, lsgan)
    gp_weight: float = 10.0       # WGAN-GP weight, used with loss="wgan"
    r1_gamma: float = 0.0
    grad_clip: float = 0.0
    diffaug: str = "color,translation,cutout"  # "" turns DiffAugment off
    diffaug_p: float = 1.0
    ada: bool = False             # adaptive augmentation strength from the overfitting heuristic
    ada_target: float = 0.6
    ac_weight: float = 0.0        # > 0 adds an AC-GAN classification loss (needs d_kwargs ac_head=True)
    ema_decay: float = 0.999
    sync_batchnorm: bool = False  # under torchrun on CUDA: BatchNorm statistics over the global batch
    amp: bool = True

    def validate(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, found {self.loss!r}")
        for name in ("batch_size", "n_critic"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected a positive int, found {getattr(self, name)}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a positive learning rate, found {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing: expected a value in [0, 0.5), found {self.label_smoothing}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay: expected a value in [0, 1), found {self.ema_decay}")
        if self.ac_weight > 0 and not self.d_kwargs.get("ac_head", False):
            raise ValueError("ac_weight > 0 needs an AC-GAN head: set d_kwargs={'ac_head': True}")


class CGANRecipe(Recipe):
    """Train a class-conditional generator on an :class:`~synthaug.data.ImageDataset`."""

    name = "cgan"

    def __init__(self, data, config: CGANConfig | None = None, device=None, seed: int = 0):
        from ..diffaug import AdaptiveAugment
        from ..losses import GANLoss
        from ..nets import create_net

        config = config or CGANConfig()
        config.validate()
        super().__init__(config, device=device, seed=seed)
        if len(data) == 0:
            raise ValueError("data: expected at least one training image, found an empty dataset")
        self.images = data.images
        self.labels = data.labels
        self.class_names = list(data.class_names)
        counts = torch.bincount(self.labels, minlength=len(self.class_names))
        empty = [self.class_names[i] for i in range(len(counts)) if counts[i] == 0]
        if empty:
            raise ValueError(f"data: expected every class to have images, found none for {empty}")
        self.num_classes = len(self.class_names)
        self.channels = int(self.images.shape[1])
        self.image_size = int(self.images.shape[-1])
        if self.images.shape[-2] != self.images.shape[-1]:
            raise ValueError(f"data: expected square images, found {tuple(self.images.shape[-2:])}")
        common = dict(num_classes=self.num_classes, image_size=self.image_size, channels=self.channels)
        self.g_spec = {"arch": config.generator, "kwargs": {**config.g_kwargs, **common}}
        self.d_spec = {"arch": config.discriminator, "kwargs": {**config.d_kwargs, **common}}
        torch.manual_seed(self.seed)  # weight init is part of the seeded run
        self.G = create_net(self.g_spec["arch"], **self.g_spec["kwargs"]).to(self.device)
        self.D = create_net(self.d_spec["arch"], **self.d_spec["kwargs"]).to(self.device)
        if config.sync_batchnorm and self.dist.enabled:
            if self.device.type != "cuda":
                raise ValueError("sync_batchnorm: SyncBatchNorm needs CUDA; found a CPU (gloo) run, where "
                                 "BatchNorm statistics stay per rank")
            self.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        distributed.broadcast_module(self.G)
        distributed.broadcast_module(self.D)
        self.ema = AveragedModel(self.G, multi_avg_fn=ema_with_warmup(config.ema_decay), use_buffers=True)
        self.nets = {"G": self.G, "D": self.D, "ema": self.ema}
        self.optimizers = {
            "G": torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=tuple(config.betas)),
            "D": torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=tuple(config.betas)),
        }
        if config.batch_size % self.dist.world_size:
            raise ValueError(f"batch_size: expected a global batch divisible by the {self.dist.world_size} "
                             f"processes, found {config.batch_size}")
        self.samplers = {"data": BatchSampler(len(self.images), config.batch_size, seed=self.seed)}
        self.augment = AdaptiveAugment(target=config.ada_target, p_init=0.0 if config.ada else config.diffaug_p)
        self.extras = {"augment": self.augment}
        self.gan_loss = GANLoss(config.loss)
        if config.loss == "wgan" or config.r1_gamma > 0:
            self.amp = False  # penalties need plain float32 gradients
            self.scaler = torch.amp.GradScaler("cuda", enabled=False)
        self._grid_z = torch.randn(8 * self.num_classes, self.G.z_dim, generator=torch.Generator().manual_seed(1234))

    # ---------------------------------------------------------------- steps
    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        if not self.config.diffaug or self.augment.p <= 0:
            return x
        from ..diffaug import diff_augment

        self._aug_calls += 1
        return diff_augment(x, policy=self.config.diffaug, p=self.augment.p,
                            generator=self.step_generator(self._step, self._aug_calls))

    def _real_batch(self):
        idx = self.batch_indices("data")
        return self.images[idx].to(self.device), self.labels[idx].to(self.device)

    def _d_step(self) -> dict:
        cfg = self.config
        x, y = self._real_batch()
        z = self.noise(len(y), self.G.z_dim)
        with torch.no_grad(), self.autocast():
            fake = self.G(z, y)
        need_r1 = cfg.r1_gamma > 0
        with self.autocast():
            xr = self._aug(x)
            if need_r1:
                xr = xr.detach().requires_grad_(True)
            real_out, real_cls = self.D.forward_with_class(xr, y)
            fake_out, fake_cls = self.D.forward_with_class(self._aug(fake.float()), y)
            loss = self.gan_loss.d_loss(real_out.float(), fake_out.float(), label_smoothing=cfg.label_smoothing)
            if cfg.ac_weight > 0:
                loss = loss + cfg.ac_weight * F.cross_entropy(real_cls.float(), y)
        if cfg.loss == "wgan":
            from ..losses import gradient_penalty

            loss = loss + cfg.gp_weight * gradient_penalty(lambda t: self.D(t, y), self._aug(x), self._aug(fake))
        if need_r1:
            from ..losses import r1_penalty

            loss = loss + cfg.r1_gamma / 2 * r1_penalty(real_out, xr)
        self.optimize(loss, "D", self.D.parameters(), cfg.grad_clip)
        if cfg.ada:
            self.augment.update(real_out.detach())
        return {"d_loss": loss.item(), "d_real": real_out.float().mean().item(),
                "d_fake": fake_out.float().mean().item()}

    def _g_step(self) -> dict:
        cfg = self.config
        y = self.labels[self.batch_indices("data")].to(self.device)  # class frequencies of the real data
        z = self.noise(len(y), self.G.z_dim)
        with self.autocast():
            fake = self.G(z, y)
            out, cls = self.D.forward_with_class(self._aug(fake), y)
            loss = self.gan_loss.g_loss(out.float())
            if cfg.ac_weight > 0:
                loss = loss + cfg.ac_weight * F.cross_entropy(cls.float(), y)
        self.optimize(loss, "G", self.G.parameters(), cfg.grad_clip)
        self.ema.update_parameters(self.G)
        return {"g_loss": loss.item()}

    def train_step(self, step: int) -> dict[str, float]:
        self._step, self._aug_calls = step, 0
        self.G.train()
        self.D.train()
        for _ in range(self.config.n_critic):
            d = self._d_step()
        g = self._g_step()
        return {**d, **g, "aug_p": float(self.augment.p)}

    # --------------------------------------------------------------- output
    def ema_generator(self) -> torch.nn.Module:
        return self.ema.module

    @torch.no_grad()
    def sample_grid(self):
        G = self.ema.module.eval()
        y = torch.arange(self.num_classes).repeat_interleave(8)
        imgs = G(self._grid_z.to(self.device), y.to(self.device)).float().cpu()
        return imgs, 8, self.class_names

    def model_config(self) -> dict:
        return {
            "kind": "cgan",
            "image_size": self.image_size,
            "channels": self.channels,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "nets": {"generator": self.g_spec},
            "train": self.config_dict(),
        }

    def save_pretrained(self, path) -> None:
        write_model_dir(path, self.model_config(), {"generator": self.ema.module.state_dict()})

    def config_dict(self) -> dict:
        cfg = super().config_dict()
        cfg["seed"] = self.seed
        return cfg
