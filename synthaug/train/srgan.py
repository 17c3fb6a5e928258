"""SRGAN super-resolution (Ledig et al., 2017) on the shared engine: an SRResNet upscaler trained on
(low-resolution, high-resolution) pairs made by downsampling real images, with a pixel, a content and an
adversarial loss.

**Pairs.** Each step takes ``batch_size`` images, a random ``crop`` x ``crop`` window of each (flipped left-right
at random with ``flip``), and downsamples it bicubically with antialiasing by ``scale``
(:func:`synthaug.nets.superres.downscale`): the upscaler learns to invert that degradation. Crop positions come
from :meth:`~synthaug.train.recipe.Recipe.step_generator`, so a resumed run draws the same ones. Any image set
works: an image folder or an ``.npz`` as an ``ImageDataset`` (images of one size, at least ``crop`` px), or a float
tensor (N, C, H, W) in [-1, 1].

**Losses.** ``lambda_pixel * pixel(SR, HR)`` (``pixel_loss``: ``"mse"``, SRResNet's, or ``"l1"``) + ``lambda_content
* MSE(E(SR), E(HR)) / mean(E(HR)**2)`` (the features' relative squared error, so the weight means the same for any
encoder; SRGAN rescales its VGG loss by a constant for the same reason) + ``lambda_adv * adversarial`` (``loss``,
any registered GAN loss; SRGAN's is the non-saturating one, weight 1e-3), computed by ``D`` on high-resolution crops
(real) and outputs (fake). SRGAN's content loss compares ImageNet VGG features; nothing can be downloaded here, so
``E`` is an encoder of the domain itself: by default the encoder of a small convolutional autoencoder
(:class:`~synthaug.nets.superres.ContentAutoencoder`) that the recipe trains on the training images' high-resolution
crops at construction (:data:`CONTENT_ENCODER`, overridden by ``content_encoder``; deterministic under ``seed``; the
global RNG states are left as they were). An autoencoder needs no labels, so every image set has one; its features
are domain-specific edges and textures rather than object semantics. Pass ``encoder=`` to use another one: any
``nn.Module`` mapping images in [-1, 1] to a feature tensor (e.g. the conv trunk of a classifier trained on the
domain; copied, never changed), or the ``content_encoder.safetensors`` (or the model directory) of an earlier run.
``E`` is frozen, checkpointed with the run (``nets["E"]``, so a resumed run uses exactly its encoder) and, when it
is a ``ContentAutoencoder``, written next to the model as ``content_encoder.safetensors`` (training only:
:class:`~synthaug.models.UpscalerModel` never loads it). ``lambda_content = 0`` is the pixel + adversarial ablation:
no encoder is trained or taken.

**Schedule** (``steps`` is the run length): SRGAN starts from an SRResNet trained with the pixel loss alone, so
the first ``adv_start_step`` steps (None: half the run) train the upscaler without the discriminator (pixel and
content terms only); then both train. The learning rate drops 10x at ``decay_start`` (None: three quarters of the
run), as SRGAN's 1e-4 -> 1e-5.
"""

from __future__ import annotations

import copy
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checks import check_bool, check_choice, check_int, check_number
from ..io import load_safetensors, save_safetensors, write_nets
from ..losses import GANLoss, list_losses
from ..nets import TRANSLATION_DISCRIMINATORS, UPSCALERS, list_translation_discriminators, list_upscalers
from ..nets.superres import ContentAutoencoder, bicubic_upscale, check_scale, downscale
from ..utils import CONVERT_HINT, check_images, check_value_range, global_rng_kept, progress_bar, quick_steps
from . import distributed
from .recipe import Recipe, option, register_recipe
from .sampler import BatchSampler

__all__ = ["SRGANConfig", "SRGANRecipe", "CONTENT_ENCODER", "CONTENT_ENCODER_FILE", "train_content_encoder",
           "load_content_encoder"]

#: The content autoencoder the recipe trains when no encoder is given: its width, steps of Adam on L1
#: reconstruction of random high-resolution crops, batch size and learning rate.
CONTENT_ENCODER = {"width": 16, "steps": 300, "batch_size": 16, "lr": 2e-3}
CONTENT_ENCODER_FILE = "content_encoder.safetensors"
PIXEL_LOSSES = ("mse", "l1")


@dataclass
class SRGANConfig:
    """SRGAN settings (see the module docstring). ``scale``: a power of 2; ``crop``: the high-resolution training
    window (a multiple of ``scale``; the low-resolution input is ``crop // scale`` px). The nets are sized for a
    CPU by default (SRGAN's own: ``g_kwargs={"nf": 64, "n_blocks": 16}``, ``d_kwargs={"ndf": 64, "n_stages": 4}``,
    ``crop=96``, ``batch_size=16``)."""

    steps: int = option(2000, "run length", cli=False)  # the command line's --steps
    scale: int = option(4, "upscaling factor, a power of 2")
    crop: int = option(64, "side of the random high-resolution training crops (the input is crop / scale)")
    generator: str = option("srresnet", "upscaler architecture", flags=("--arch",), choices=list_upscalers)
    discriminator: str = option("srgan_vgg", "discriminator architecture", choices=list_translation_discriminators)
    g_kwargs: dict = option(help="JSON dict of upscaler arguments (e.g. nf, n_blocks, norm)",
                            factory=lambda: {"nf": 32, "n_blocks": 4})
    d_kwargs: dict = option(help="JSON dict of discriminator arguments (e.g. ndf, n_stages)",
                            factory=lambda: {"ndf": 16, "n_stages": 3})
    loss: str = option("nonsaturating", "GAN loss", choices=list_losses)
    pixel_loss: str = option("mse", "pixel loss", choices=PIXEL_LOSSES)
    lambda_pixel: float = option(1.0, "pixel loss weight")
    lambda_content: float = option(1.0, "weight of the content loss in a domain encoder's feature space (0: off)")
    lambda_adv: float = option(1e-3, "adversarial weight")
    adv_start_step: int | None = option(
        None, "first step of the adversarial term (default: half the run; before it, pixel + content only)")
    content_encoder: dict | None = option(
        None, "JSON dict overriding the settings of the content autoencoder trained on the crops (width, steps, "
              "batch_size, lr)")
    flip: bool = option(True, "flip training crops left-right at random")
    batch_size: int = option(8, "crops per step")
    lr: float = option(1e-4, "learning rate")
    betas: tuple = option((0.9, 0.999), "Adam's betas")
    decay_start: int | None = option(
        None, "step from which the learning rate is 10x lower (default: three quarters of the run)")
    amp: bool = option(True, "float16 autocast on CUDA")
    cpu_bf16: bool = option(False, "bfloat16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX); ignored "
                                   "elsewhere")


def _check_config(cfg: SRGANConfig) -> None:
    steps = check_int("steps", cfg.steps, 1)
    check_scale(cfg.scale)
    check_int("crop", cfg.crop, 2 * cfg.scale)
    if cfg.crop % cfg.scale:
        raise ValueError(f"crop: expected a multiple of scale = {cfg.scale} (the low-resolution crop is crop // "
                         f"scale px), found {cfg.crop}")
    check_choice("generator", cfg.generator, UPSCALERS.names())
    check_choice("discriminator", cfg.discriminator, TRANSLATION_DISCRIMINATORS.names())
    check_choice("loss", cfg.loss, list_losses())
    check_choice("pixel_loss", cfg.pixel_loss, PIXEL_LOSSES)
    for name in ("lambda_pixel", "lambda_content", "lambda_adv"):
        check_number(name, getattr(cfg, name), 0.0, what="a weight")
    if not (cfg.lambda_pixel > 0 or cfg.lambda_content > 0):
        raise ValueError("lambda_pixel: expected a pixel or a content term (lambda_pixel > 0 or lambda_content > 0; "
                         "the adversarial term alone does not tie the output to its input), found both 0")
    for name in ("adv_start_step", "decay_start"):
        value = getattr(cfg, name)
        if value is not None and check_int(name, value, 0) > steps:
            raise ValueError(f"{name}: expected None or a step in [0, {steps}], found {value}")
    for name in ("g_kwargs", "d_kwargs"):
        kw = getattr(cfg, name)
        if not isinstance(kw, dict):
            raise TypeError(f"{name}: expected a dict of constructor arguments, found {type(kw).__name__}")
    fixed = sorted({"channels", "scale"} & set(cfg.g_kwargs)) + sorted({"in_channels"} & set(cfg.d_kwargs))
    if fixed:
        raise ValueError(f"g_kwargs / d_kwargs: the channels come from the data and the scale from config.scale, "
                         f"found {fixed} set there")
    opts = cfg.content_encoder
    if opts is not None:
        if not isinstance(opts, dict):
            raise TypeError(f"content_encoder: expected None or a dict of settings, found {type(opts).__name__}")
        unknown = sorted(set(opts) - set(CONTENT_ENCODER))
        if unknown:
            raise ValueError(f"content_encoder: expected keys among {sorted(CONTENT_ENCODER)}, found unknown "
                             f"{unknown}")
        for key in ("width", "steps", "batch_size"):
            if key in opts:
                check_int(f"content_encoder[{key!r}]", opts[key], 1)
        if "lr" in opts:
            check_number("content_encoder['lr']", opts["lr"], 0.0, low_open=True)
    check_bool("flip", cfg.flip)
    check_int("batch_size", cfg.batch_size, 1)
    check_number("lr", cfg.lr, 0.0, low_open=True)


def _training_images(data) -> torch.Tensor:
    """The high-resolution images of ``data``: an ``ImageDataset`` (``.images``) or a float tensor in [-1, 1]."""
    images = getattr(data, "images", data)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"data: expected an ImageDataset or a float tensor (N, C, H, W) in [-1, 1], found "
                        f"{type(data).__name__}")
    check_images(images, "data")
    if not images.is_floating_point():
        raise TypeError(f"data: expected float pixels in [-1, 1], found dtype {images.dtype}; {CONVERT_HINT}")
    if len(images) == 0:
        raise ValueError("data: expected at least one image, found none")
    if images is data:  # an ImageDataset is in [-1, 1] by construction; a bare tensor is checked (a whole set
        check_value_range(images, "data", fix=CONVERT_HINT)  # with nothing below 0 is taken for [0, 1] data)
    return images


def random_crops(images: torch.Tensor, crop: int, generator: torch.Generator, flip: bool = False) -> torch.Tensor:
    """One random ``crop`` x ``crop`` window of each image (and, with ``flip``, a left-right flip with probability
    1/2), drawn from ``generator``."""
    h, w = images.shape[-2:]
    tops = torch.randint(0, h - crop + 1, (len(images),), generator=generator).tolist()
    lefts = torch.randint(0, w - crop + 1, (len(images),), generator=generator).tolist()
    flips = (torch.rand(len(images), generator=generator) < 0.5).tolist() if flip else [False] * len(images)
    out = [img[:, t:t + crop, s:s + crop] for img, t, s in zip(images, tops, lefts)]
    return torch.stack([o.flip(-1) if f else o for o, f in zip(out, flips)])


def _relative_feature_error(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE(features, target) / mean(target**2): the content loss, free of the encoder's feature scale."""
    target = target.float()
    return F.mse_loss(features.float(), target) / target.pow(2).mean().clamp_min(1e-8)


def train_content_encoder(images: torch.Tensor, crop: int, options: dict | None = None, seed: int = 0,
                          device=None, progress: bool | None = False) -> tuple[ContentAutoencoder, dict]:
    """Train the content :class:`~synthaug.nets.superres.ContentAutoencoder` on random ``crop`` px windows of
    ``images`` (rounded down to a multiple of 4) to reconstruct them (L1), with :data:`CONTENT_ENCODER`'s settings
    overridden by ``options``; deterministic under ``seed`` on a CPU, and the global RNG states are left as they
    were. Returns ``(autoencoder in eval mode, frozen, info)``; ``info["reconstruction_l1"]`` is the last 20 steps'
    mean loss. ``progress``: a bar over the steps with the time left (None: :func:`synthaug.utils.progress_default`).
    """
    opts = {**CONTENT_ENCODER, **(options or {})}
    side = crop - crop % 4
    if side < 4:
        raise ValueError(f"crop: expected at least 4 px to train the content encoder on, found {crop}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    gen = torch.Generator().manual_seed(int(seed))
    losses = []
    with global_rng_kept():
        torch.manual_seed(int(seed))
        net = ContentAutoencoder(int(images.shape[1]), int(opts["width"])).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=float(opts["lr"]))
        steps = quick_steps(int(opts["steps"]))  # SYNTHAUG_QUICK: a smoke test's cap
        bar = progress_bar(steps, "content encoder", unit="step", enabled=progress, leave=False)
        for _ in range(steps):
            bar.update(1)
            idx = torch.randint(0, len(images), (int(opts["batch_size"]),), generator=gen)
            x = random_crops(images[idx], side, gen, flip=True).to(device)
            loss = F.l1_loss(net(x), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        bar.close()
    net.eval().requires_grad_(False)
    tail = losses[-20:]
    info = {"source": "trained", "seed": int(seed), **opts, "crop": side,
            "reconstruction_l1": sum(tail) / len(tail) if tail else None}
    return net, info


def load_content_encoder(path, device=None) -> ContentAutoencoder:
    """A content encoder written by an SRGAN run: its ``content_encoder.safetensors``, or the model directory
    holding it. Frozen, eval mode."""
    path = Path(path)
    if path.is_dir():
        path = path / CONTENT_ENCODER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"encoder: expected a {CONTENT_ENCODER_FILE} file or a model directory holding one, "
                                f"found nothing at {str(path)!r}")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            spec = json.loads((f.metadata() or {}).get("synthaug_content_encoder", "null"))
    except Exception as e:  # safetensors raises its own error type for malformed files
        raise ValueError(f"encoder: {str(path)!r} is not a valid safetensors file ({str(e)[:200]})") from None
    if not isinstance(spec, dict):
        raise ValueError(f"encoder: {str(path)!r} holds no content encoder description (written by an SRGAN run?)")
    with torch.random.fork_rng(devices=[]):  # its throw-away init weights come from no RNG of the caller
        net = ContentAutoencoder(**spec)
    state = load_safetensors(path)
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"encoder: the weights in {str(path)!r} do not fit {spec} ({str(e).splitlines()[0]})") \
            from None
    return net.to(device or "cpu").eval().requires_grad_(False)


@register_recipe("srgan", SRGANConfig)
class SRGANRecipe(Recipe):
    """SRGAN: upscaler ``G`` (``config.generator``, default SRResNet), discriminator ``D`` on high-resolution crops
    (``config.discriminator``, default SRGAN's VGG-style net; any translation discriminator, e.g. ``patchgan``),
    and the frozen content encoder ``E`` (see the module docstring). Exports ``G`` as an upscaler model directory
    (kind ``"srgan"``; :class:`~synthaug.models.UpscalerModel`). ``progress`` (on by default, as the Trainer's; None
    follows :func:`synthaug.utils.progress_default`): a bar over the content encoder's training steps.

    Example::

        photos = load_domain("photos/", size=256, channels=3)
        recipe = SRGANRecipe(photos, SRGANConfig(steps=4000, scale=4, crop=64))
        Trainer(recipe, "runs/sr").fit()
        UpscalerModel.from_pretrained("runs/sr/model").upscale(small_images)   # 4x larger
    """

    exports = "upscaler"

    cli_help = "super-resolution (SRGAN)"

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--data", required=True, help="high-resolution images: an image folder (flat or class "
                                                          "folders, labels ignored) or an .npz")
        parser.add_argument("--split", default="train", help="split of an .npz --data")
        parser.add_argument("--size", type=int, default=None, help="read the images at this size (shorter side "
                                                                   "resized, centre cropped); required for folders")
        parser.add_argument("--channels", type=int, default=3)
        parser.add_argument("--encoder", default=None,
                            help="use the content encoder of an earlier run instead (its model directory or "
                                 "content_encoder.safetensors)")

    @classmethod
    def from_arguments(cls, args, config, check):
        from ..data import load_domain

        data = load_domain(args.data, args.size, args.channels, split=args.split, arg="--data")
        print(f"high-resolution images: {len(data)} {tuple(data.images.shape[1:])} from {args.data!r}")
        check(config)
        recipe = cls(data, config, device=args.device, seed=args.seed, encoder=args.encoder)
        info = recipe.content_info
        if info is None:
            print("content loss: off (--lambda-content 0)")
        elif info.get("source") == "trained":
            print(f"content encoder: autoencoder trained on the crops ({info['steps']} steps, reconstruction L1 "
                  f"{info['reconstruction_l1']:.4f})")
        else:
            print(f"content encoder: {info['source']}")
        print(f"adversarial term from step {recipe.adv_start} (of {config.steps}); learning rate x0.1 from step "
              f"{recipe.decay_at}")
        return recipe

    def __init__(self, data, config: SRGANConfig | None = None, device=None, seed: int = 0, *, encoder=None,
                 progress: bool | None = None):
        config = config or SRGANConfig()
        _check_config(config)
        if encoder is not None and not config.lambda_content > 0:
            raise ValueError(f"encoder: a content encoder was given, found lambda_content = {config.lambda_content}; "
                             "set lambda_content > 0 to use it")
        if encoder is not None and config.content_encoder:
            raise ValueError("content_encoder: settings are for the encoder trained here, found them together with a "
                             "given encoder; pass one or the other")
        self.images = _training_images(data)
        h, w = self.images.shape[-2:]
        if h < config.crop or w < config.crop:
            raise ValueError(f"crop: expected at most the images' size ({h}x{w}), found crop {config.crop}; lower "
                             "the crop or load the images larger")
        super().__init__(config, device=device, seed=seed)
        if config.batch_size % self.dist.world_size:
            raise ValueError(f"batch_size: expected a global batch divisible by the {self.dist.world_size} "
                             f"processes, found {config.batch_size}")
        self.channels, self.scale, self.crop = int(self.images.shape[1]), int(config.scale), int(config.crop)
        self.gan_loss = GANLoss(config.loss)
        self.adv_start = config.steps // 2 if config.adv_start_step is None else int(config.adv_start_step)
        self.decay_at = config.steps * 3 // 4 if config.decay_start is None else int(config.decay_start)

        torch.manual_seed(self.seed)
        g = UPSCALERS.get(config.generator)(**config.g_kwargs, channels=self.channels, scale=self.scale)
        d = TRANSLATION_DISCRIMINATORS.get(config.discriminator)(**config.d_kwargs, in_channels=self.channels)
        self.nets = {"G": g.to(self.device), "D": d.to(self.device)}
        for net in self.nets.values():
            distributed.broadcast_module(net)
        hr = self.images[:1, :, :self.crop, :self.crop].to(self.device)
        with torch.no_grad():  # fail now, with the net's message, if the crop does not fit the nets
            self.nets["D"](hr)
            sr = self.nets["G"](downscale(hr, self.scale))
        if sr.shape != hr.shape:
            raise ValueError(f"generator: expected an upscaler returning {tuple(hr.shape[1:])} from a "
                             f"{self.crop // self.scale} px input, found {tuple(sr.shape[1:])}")
        self.content_info = None
        self._progress = progress
        if config.lambda_content > 0:
            self.nets["E"], self.content_info = self._content_encoder(encoder)
            with torch.no_grad():
                feats = self._features(hr)
            if not isinstance(feats, torch.Tensor) or not feats.is_floating_point():
                raise TypeError(f"encoder: expected a module returning a float feature tensor, found "
                                f"{type(feats).__name__}")
        self.optimizers = {"G": self.adam(self.nets["G"].parameters(), config.lr, config.betas),
                           "D": self.adam(self.nets["D"].parameters(), config.lr, config.betas)}
        drop = self.decay_at
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0 if s < drop else 0.1)
                           for k, o in self.optimizers.items()}
        self.samplers = {"hr": BatchSampler(len(self.images), config.batch_size, seed=self.seed)}

    # ------------------------------------------------------------------ content encoder
    def _content_encoder(self, encoder) -> tuple[nn.Module, dict]:
        if encoder is None:
            net, info = train_content_encoder(self.images, self.crop, self.config.content_encoder, self.seed,
                                              self.device, progress=self._progress)
        elif isinstance(encoder, ContentAutoencoder):
            net, info = copy.deepcopy(encoder), {"source": "given", **encoder.spec}
        elif isinstance(encoder, nn.Module):
            net, info = copy.deepcopy(encoder), {"source": "given", "class": type(encoder).__name__}
        elif isinstance(encoder, (str, Path)):
            net, info = load_content_encoder(encoder), {"source": str(encoder)}
        else:
            raise TypeError(f"encoder: expected None (train one here), an nn.Module or the path of a content "
                            f"encoder file, found {type(encoder).__name__}")
        if isinstance(net, ContentAutoencoder) and net.channels != self.channels:
            raise ValueError(f"encoder: expected a content encoder of {self.channels}-channel images like the data, "
                             f"found one of {net.channels}")
        net = net.to(self.device).eval().requires_grad_(False)
        distributed.broadcast_module(net)
        return net, info

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        e = self.nets["E"]
        return e.encode(x) if isinstance(e, ContentAutoencoder) else e(x)

    # ------------------------------------------------------------------------ training
    def _batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(low-resolution, high-resolution) crops of this rank's next batch."""
        idx = self.batch_indices("hr")
        hr = random_crops(self.images[idx], self.crop, self.step_generator(step), flip=self.config.flip)
        hr = hr.to(self.device)
        return downscale(hr, self.scale), hr

    def train_step(self, step: int) -> dict[str, float]:
        cfg, G, D = self.config, self.nets["G"], self.nets["D"]
        G.train()
        D.train()
        lr, hr = self._batch(step)
        adversarial = cfg.lambda_adv > 0 and step >= self.adv_start
        with self.autocast():
            sr = G(lr)
        out = {}
        if cfg.lambda_adv > 0:
            out["g_adv"] = out["d_loss"] = 0.0
        if adversarial:
            with self.autocast():
                loss_d = self.gan_loss.d_loss(D(hr), D(sr.detach()))
            self.optimize(loss_d, "D", D.parameters())
            out["d_loss"] = loss_d.item()
            D.requires_grad_(False)
        with self.autocast():
            pixel = (F.mse_loss if cfg.pixel_loss == "mse" else F.l1_loss)(sr.float(), hr)
            loss_g = cfg.lambda_pixel * pixel
            if "E" in self.nets:
                with torch.no_grad():
                    target = self._features(hr)
                content = _relative_feature_error(self._features(sr), target)
                loss_g = loss_g + cfg.lambda_content * content
                out["content"] = content.item()
            if adversarial:
                adv = self.gan_loss.g_loss(D(sr))
                loss_g = loss_g + cfg.lambda_adv * adv
                out["g_adv"] = adv.item()
        self.optimize(loss_g, "G", G.parameters())
        D.requires_grad_(True)
        with warnings.catch_warnings():  # D's optimiser has not stepped before adv_start_step: its schedule runs on
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            for s in self.schedulers.values():
                s.step()
        with torch.no_grad():  # PSNR of this batch, in dB on [0, 1] pixels (a progress figure)
            mse01 = F.mse_loss(sr.detach().float(), hr).item() / 4.0
        psnr = 10.0 * torch.log10(torch.tensor(1.0 / max(mse01, 1e-10))).item()
        return {"pixel": pixel.item(), **out, "psnr": psnr, "lr": self.optimizers["G"].param_groups[0]["lr"]}

    @torch.no_grad()
    def sample_grid(self):
        """Rows: the bicubic upsampling of the low-resolution centre crops, the upscaler's output, the crops."""
        k = min(8, len(self.images))
        h, w = self.images.shape[-2:]
        top, left = (h - self.crop) // 2, (w - self.crop) // 2
        hr = self.images[:k, :, top:top + self.crop, left:left + self.crop].to(self.device)
        lr = downscale(hr, self.scale)
        g = self.nets["G"].eval()
        sr = g(lr).float()
        g.train()
        rows = [bicubic_upscale(lr, self.scale), sr, hr]
        return torch.cat([r.float().cpu() for r in rows]), k, ["bicubic", f"{self.name} x{self.scale}", "high-res"]

    def save_pretrained(self, path) -> None:
        cfg = {"kind": self.name, "scale": self.scale, "channels": self.channels, "crop": self.crop,
               "train": self.config_dict(), "content_encoder": self.content_info}
        e = self.nets.get("E")
        if isinstance(e, ContentAutoencoder):
            cfg["content_encoder"] = {**self.content_info, "file": CONTENT_ENCODER_FILE}
        write_nets(path, cfg, {"upscaler": self.nets["G"]})
        if isinstance(e, ContentAutoencoder):  # training only: UpscalerModel does not load it
            save_safetensors(e.state_dict(), Path(path) / CONTENT_ENCODER_FILE,
                             metadata={"format": "synthaug", "net": "content_encoder",
                                       "synthaug_content_encoder": json.dumps(e.spec)})
