"""Domain-translation recipes on the shared engine: CycleGAN (unpaired) and Pix2Pix (paired), and the base classes
the translation recipes share (:class:`TranslationRecipe`, :class:`UnpairedTranslationRecipe`; CUT in :mod:`.cut`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checks import check_choice, check_int, check_number
from ..io import write_nets
from ..losses import GANLoss, list_losses, structure_loss
from ..nets import (TRANSLATION_DISCRIMINATORS, TRANSLATORS, list_translation_discriminators,
                    list_translators)
from . import distributed
from .recipe import Recipe, option, register_recipe
from .sampler import BatchSampler
from .task_loss import TASK_FIELDS, TaskConsistency, TaskLossConfig, check_task_settings


@dataclass
class UnpairedTranslationConfig(TaskLossConfig):
    """The settings every unpaired recipe shares (:class:`UnpairedTranslationRecipe`: CycleGAN, CUT, FastCUT):
    ResNet generator, PatchGAN, LSGAN loss, Adam with a linear decay. ``steps`` is the run length: the Trainer
    runs that many steps, and the learning-rate decay starts at ``decay_start`` (None: half way, or the config
    class's ``decay_fraction``) and reaches 0 at the last step. The task fields: :class:`TaskLossConfig`."""

    steps: int = option(2000, "run length", cli=False)  # the command line's --steps
    generator: str = option("resnet", "generator architecture", flags=("--arch",), choices=list_translators)
    discriminator: str = option("patchgan", "discriminator architecture", choices=list_translation_discriminators)
    g_kwargs: dict = option(help="JSON dict of generator arguments (e.g. ngf, n_blocks), over the defaults of the "
                                 "default generator", factory=lambda: {"ngf": 32, "n_blocks": 9})
    d_kwargs: dict = option(help="JSON dict of discriminator arguments (e.g. ndf, n_layers)",
                            factory=lambda: {"ndf": 32, "n_layers": 3})
    loss: str = option("lsgan", "GAN loss", choices=list_losses)
    batch_size: int = option(1, "images per step")
    lr: float = option(2e-4, "learning rate")
    betas: tuple = option((0.5, 0.999), "Adam's betas")
    decay_start: int | None = option(None, "step from which the learning rate decays linearly to 0 (default: half "
                                           "way)")
    amp: bool = option(True, "float16 autocast on CUDA")
    cpu_bf16: bool = option(False, "bfloat16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX): about 1.5x "
                                   "faster steps; ignored on other CPUs and on GPUs")
    # > 0: add lambda_structure * synthaug.losses.structure_loss(input, translation) to the generator loss, for
    # every direction trained: a content term blind to brightness and contrast (0: off, left out of config.json)
    lambda_structure: float = option(
        0.0, "structure weight: translations keep the input's local patterns (SSIM's structure term), whatever they "
             "do to brightness and contrast (0: off)")


@dataclass
class CycleGANConfig(UnpairedTranslationConfig):
    """CycleGAN settings: those of :class:`UnpairedTranslationConfig`, and the cycle and identity weights and the
    pool of past fakes. The task consistency fields (CyCADA's semantic loss,
    :class:`~synthaug.train.task_loss.TaskLossConfig`) apply to both directions: B->A translations must keep f_S's
    label of the real B image."""

    lambda_cycle: float = option(10.0, "cycle-consistency weight")
    lambda_identity: float = option(0.5, "identity weight, relative to lambda_cycle (as in the CycleGAN paper)")
    pool_size: int = option(50, "pool of past fakes the discriminators see")


@dataclass
class Pix2PixConfig:
    """Pix2Pix settings: U-Net generator, PatchGAN on (input, output) pairs, GAN + lambda_l1 * L1. ``steps`` is the
    run length, as for :class:`CycleGANConfig`."""

    steps: int = option(2000, "run length", cli=False)  # the command line's --steps
    generator: str = option("unet", "generator architecture", flags=("--arch",), choices=list_translators)
    discriminator: str = option("patchgan", "discriminator architecture", choices=list_translation_discriminators)
    g_kwargs: dict = option(help="JSON dict of generator arguments (e.g. ngf), over the defaults of the default "
                                 "generator", factory=lambda: {"ngf": 32})
    d_kwargs: dict = option(help="JSON dict of discriminator arguments (e.g. ndf, n_layers)",
                            factory=lambda: {"ndf": 32, "n_layers": 3})
    loss: str = option("nonsaturating", "GAN loss", choices=list_losses)
    lambda_l1: float = option(100.0, "L1 weight")
    batch_size: int = option(4, "pairs per step")
    lr: float = option(2e-4, "learning rate")
    betas: tuple = option((0.5, 0.999), "Adam's betas")
    decay_start: int | None = option(None, "step from which the learning rate decays linearly to 0 (default: half "
                                           "way)")
    amp: bool = option(True, "float16 autocast on CUDA")
    cpu_bf16: bool = option(False, "bfloat16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX): about 1.5x "
                                   "faster steps; ignored on other CPUs and on GPUs")


def _linear_decay(steps: int, decay_start: int | None, default_fraction: float = 0.5):
    start = int(steps * default_fraction) if decay_start is None else decay_start
    if not 0 <= start <= steps:
        raise ValueError(f"decay_start: expected a step in [0, {steps}], found {start}")
    return lambda step: 1.0 if step < start else max(0.0, 1.0 - (step - start) / max(1, steps - start))


def _check_domain(data, name: str):
    """A domain's images: an ImageDataset's ``.images`` or, as ``CGANRecipe(unlabelled=...)`` takes, a float tensor
    (N, C, H, W) in [-1, 1] (a tensor carries no labels: the task loss needs domain A as a labelled ImageDataset)."""
    if isinstance(data, torch.Tensor):
        from ..data import validate_images

        return validate_images(data, name=name)
    images = getattr(data, "images", None)
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise TypeError(f"{name}: expected an ImageDataset with .images (N, C, H, W) or a float tensor (N, C, H, W) "
                        f"in [-1, 1], found {type(data).__name__}")
    if len(images) == 0:
        raise ValueError(f"{name}: expected at least one image, found an empty domain")
    return images


class TranslationRecipe(Recipe):
    """Shared pieces: config checks, net construction with a size check, optimisers with linear decay (from
    ``config.decay_start``; None: at the config class's ``decay_fraction`` of the run, default half way), export."""

    exports = "translator"

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--size", type=int, default=None, help="image size (resize shorter side + center crop)")
        parser.add_argument("--channels", type=int, default=3)

    @classmethod
    def config_from_arguments(cls, values: dict, args):
        """The config's default generator arguments are sized for its default generator: another ``--arch`` starts
        from its own defaults, plus ``--g-kwargs``."""
        default = cls.config_class()
        if values.get("generator", default.generator) != default.generator:
            given = getattr(args, "g_kwargs", None)
            values = {**values, "g_kwargs": dict(given or {})}
        return cls.config_class(**values)

    def __init__(self, config, device=None, seed: int = 0):
        check_int("steps", config.steps, 1)
        check_choice("generator", config.generator, TRANSLATORS.names())
        check_choice("discriminator", config.discriminator, TRANSLATION_DISCRIMINATORS.names())
        check_choice("loss", config.loss, list_losses())
        super().__init__(config, device=device, seed=seed)
        self.gan_loss = GANLoss(config.loss)

    def _build(self, g_kwargs: dict[str, dict], d_kwargs: dict[str, dict], sample_in, heads=None):
        """Build translators ``{name: constructor arguments}`` of ``config.generator`` (given the training
        ``image_size`` if they take one) and discriminators of ``config.discriminator``, in that order. ``heads``:
        None, or a callable run after the size check returning ``{name: module}`` of training-only nets that the
        generators' optimiser also trains (checkpointed, not exported)."""
        from ..nets.translators import init_weights

        torch.manual_seed(self.seed)
        if self.config.batch_size % self.dist.world_size:
            raise ValueError(f"batch_size: expected a global batch divisible by the {self.dist.world_size} "
                             f"processes, found {self.config.batch_size}")
        g_cls = TRANSLATORS.get(self.config.generator)
        d_cls = TRANSLATION_DISCRIMINATORS.get(self.config.discriminator)
        if "image_size" in inspect.signature(g_cls).parameters:
            g_kwargs = {name: {"image_size": self.image_size, **kw} for name, kw in g_kwargs.items()}
        built = [(n, g_cls, kw) for n, kw in g_kwargs.items()] + [(n, d_cls, kw) for n, kw in d_kwargs.items()]
        for name, cls, kwargs in built:
            self.nets[name] = init_weights(cls(**kwargs)).to(self.device)
            distributed.broadcast_module(self.nets[name])
        g_names, d_names = list(g_kwargs), list(d_kwargs)
        with torch.no_grad():  # fail now, with the net's message, if the images do not fit the depth
            for name, x in sample_in.items():
                self.nets[name](x[:1].to(self.device))
        for name, module in (heads() if heads is not None else {}).items():
            self.nets[name] = module.to(self.device)
            distributed.broadcast_module(module)
            g_names.append(name)
        cfg = self.config
        g_params = [p for n in g_names for p in self.nets[n].parameters()]
        d_params = [p for n in d_names for p in self.nets[n].parameters()]
        self.optimizers = {"G": self.adam(g_params, cfg.lr, cfg.betas), "D": self.adam(d_params, cfg.lr, cfg.betas)}
        decay = _linear_decay(cfg.steps, cfg.decay_start, getattr(cfg, "decay_fraction", 0.5))
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, decay) for k, o in self.optimizers.items()}
        self._g_names, self._d_names, self._export_names = g_names, d_names, list(g_kwargs)
        # nets without batch norm treat every sample alone, so several of their calls in a step can share one
        # batch; not with spectral norm either, whose power iteration steps once per call
        self._per_sample = {n: not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                       or torch.nn.utils.parametrize.is_parametrized(m) for m in net.modules())
                            for n, net in self.nets.items()}

    def _batched(self, name: str, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``nets[name]`` applied to each of ``inputs``: in one call on their concatenation when the net treats
        samples independently (the same outputs, fewer and larger kernels: faster on a CPU), else one call each."""
        net = self.nets[name]
        if self._per_sample[name] and len(inputs) > 1:
            return net(torch.cat(inputs)).split([len(x) for x in inputs])
        return tuple(net(x) for x in inputs)

    def _train_mode(self) -> None:
        for net in self.nets.values():
            net.train()

    def _step_schedulers(self) -> None:
        for s in self.schedulers.values():
            s.step()

    def _export(self, path, extra: dict) -> None:
        nets = {n: self.nets[n] for n in self._export_names}
        write_nets(path, {"image_size": self.image_size, "train": self.config_dict(), **extra}, nets)
        for m in nets.values():
            m.train()


class UnpairedTranslationRecipe(TranslationRecipe):
    """Shared by the unpaired recipes (CycleGAN, CUT): two domains of one square size and channel count, and the
    optional task-consistency loss on domain A's labels (config fields of
    :class:`~synthaug.train.task_loss.TaskLossConfig`; :meth:`_init_task` after the nets are built)."""

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--a", required=True, help="domain A: image folder or .npz")
        parser.add_argument("--b", required=True, help="domain B: image folder or .npz")
        parser.add_argument("--name-a", default=None)
        parser.add_argument("--name-b", default=None)
        super().add_arguments(parser)

    @classmethod
    def from_arguments(cls, args, config, check):
        """Domains A and B from ``--a`` / ``--b`` (A with its labels when the task loss is on), then the recipe."""
        from ..data import load_domain

        task = config.lambda_task > 0
        if not task and (config.task_classifier is not None or config.task_min_accuracy is not None):
            raise ValueError(f"--lambda-task: --task-classifier / --task-min-accuracy set the task loss, found "
                             f"--lambda-task {config.lambda_task}; set it > 0")
        a = load_domain(args.a, args.size, args.channels, labelled=task, arg="--a")
        b = load_domain(args.b, args.size, args.channels, arg="--b")
        print(f"domain A: {len(a)} images {tuple(a.images.shape[1:])}; domain B: {len(b)} images "
              f"{tuple(b.images.shape[1:])}")
        if task:
            print(f"task loss: domain A's labels {a.class_counts()}")
        check(config)
        recipe = cls(a, b, config, device=args.device, seed=args.seed,
                     names=(args.name_a or Path(args.a).stem, args.name_b or Path(args.b).stem))
        if recipe.task is not None:
            info = recipe.task.info
            print(f"task classifier: accuracy {info['accuracy']:.3f} ({info['accuracy_on']}); the task loss is "
                  + (f"on from step {config.task_start_step}" if recipe.task.reliable
                     else f"OFF (below --task-min-accuracy {config.task_min_accuracy})"))
        return recipe

    def __init__(self, domain_a, domain_b, config, device, seed: int, names: tuple[str, str], task_classifier):
        check_task_settings(config)
        check_number("lambda_structure", config.lambda_structure, 0.0, what="a weight")
        if task_classifier is not None and not config.lambda_task > 0:
            raise ValueError("task_classifier: a classifier for the task loss was given, found lambda_task = "
                             f"{config.lambda_task}; set lambda_task > 0 to use it")
        super().__init__(config, device=device, seed=seed)
        self.A, self.B = _check_domain(domain_a, "domain_a"), _check_domain(domain_b, "domain_b")
        if self.A.shape[1] != self.B.shape[1]:
            raise ValueError(f"domains: expected the same channel count in A and B ({self.name} runs its translators "
                             f"on images of both domains), found A={self.A.shape[1]} and B={self.B.shape[1]}; load "
                             "both as RGB or both as gray")
        if self.A.shape[-2:] != self.B.shape[-2:] or self.A.shape[-1] != self.A.shape[-2]:
            raise ValueError(f"domains: expected square images of one size in A and B, found A "
                             f"{tuple(self.A.shape[-2:])} and B {tuple(self.B.shape[-2:])}")
        self.channels, self.image_size, self.domain_names = int(self.A.shape[1]), int(self.A.shape[-1]), list(names)
        self.task = None

    def _init_task(self, domain_a, task_classifier) -> None:
        """With ``lambda_task > 0``: the frozen source classifier and its term (checkpointed as ``extras["task"]``)."""
        cfg = self.config
        if not cfg.lambda_task > 0:
            return
        self.task = TaskConsistency(domain_a, self.B, weight=cfg.lambda_task, start_step=cfg.task_start_step,
                                    min_accuracy=cfg.task_min_accuracy, options=cfg.task_classifier,
                                    classifier=task_classifier, seed=self.seed, device=self.device)
        self.source_labels = domain_a.labels
        self.extras["task"] = self.task
        self.task.warn_if_unreliable()

    def config_dict(self) -> dict:
        cfg = super().config_dict()
        if not cfg.get("lambda_task"):  # off: config.json and checkpoints exactly as without the option
            for key in TASK_FIELDS:
                cfg.pop(key, None)
        if not cfg.get("lambda_structure"):
            cfg.pop("lambda_structure", None)
        return cfg

    def structure(self, pairs) -> torch.Tensor | None:
        """``lambda_structure`` times the mean :func:`~synthaug.losses.structure_loss` of the (input, translation)
        ``pairs``, or None when the term is off."""
        if not self.config.lambda_structure > 0:
            return None
        return self.config.lambda_structure * torch.stack([structure_loss(x, y) for x, y in pairs]).mean()

    def save_pretrained(self, path) -> None:
        extra = {"kind": self.name, "channels_a": self.channels, "channels_b": self.channels,
                 "domains": self.domain_names}
        if self.task is not None:
            extra["task_consistency"] = self.task.summary(self.domain_names[0])
        self._export(path, extra)
        if self.task is not None:
            from ..models import TASK_CLASSIFIER_DIR

            self.task.classifier_model(self.domain_names[0]).save_pretrained(Path(path) / TASK_CLASSIFIER_DIR)


@register_recipe("cyclegan", CycleGANConfig)
class CycleGANRecipe(UnpairedTranslationRecipe):
    """Unpaired translation A <-> B with cycle-consistency, identity loss and a pool of past fakes.

    **Task consistency** (``config.lambda_task > 0``; CyCADA's semantic loss): domain A is the labelled source
    (``domain_a.labels`` and ``.class_names``). A classifier f_S is trained on it at construction (deterministic under
    ``seed``; settings :data:`~synthaug.train.task_loss.TASK_CLASSIFIER` overridden by ``config.task_classifier``),
    or ``task_classifier`` is used (a ``ClassifierModel`` or a net of :mod:`synthaug.nets.classifiers`), then
    frozen. The generator loss gains ``lambda_task * (CE(f_S(G_A2B(a)), y_a) + CE(f_S(G_B2A(b)), argmax f_S(b)))``
    from step ``task_start_step`` on, provided f_S's held-out accuracy reaches ``task_min_accuracy``. f_S's weights
    and its labels of the B images are checkpointed; the exported model holds f_S as ``task_classifier/`` and
    config.json a ``task_consistency`` section. With ``lambda_task = 0`` training is unchanged, bit for bit.

    Example::

        a = load_npz("mnist.npz", size=28)            # labelled source
        b = load_npz("usps.npz", size=28)             # target (its labels are not used)
        cfg = CycleGANConfig(steps=4000, lambda_task=1.0, task_start_step=500, task_min_accuracy=0.9)
        Trainer(CycleGANRecipe(a, b, cfg, names=("mnist", "usps")), "runs/m2u").fit()  # 4000 steps: cfg.steps
    """

    cli_help = "unpaired translation (CycleGAN)"

    def __init__(self, domain_a, domain_b, config: CycleGANConfig | None = None, device=None, seed: int = 0,
                 names: tuple[str, str] = ("A", "B"), *, task_classifier=None):
        from ..image_pool import ImagePool

        config = config or CycleGANConfig()
        super().__init__(domain_a, domain_b, config, device, seed, names, task_classifier)
        c = self.channels
        g = {**config.g_kwargs, "in_channels": c, "out_channels": c}
        d = {**config.d_kwargs, "in_channels": c}
        self._build({"G_A2B": g, "G_B2A": g}, {"D_A": d, "D_B": d}, {"G_A2B": self.A, "D_B": self.B})
        self.samplers = {"A": BatchSampler(len(self.A), config.batch_size, seed=self.seed),
                         "B": BatchSampler(len(self.B), config.batch_size, seed=self.seed + 1)}
        self.pool_A = ImagePool(config.pool_size, seed=self.seed + 2)
        self.pool_B = ImagePool(config.pool_size, seed=self.seed + 3)
        self.extras = {"pool_A": self.pool_A, "pool_B": self.pool_B}
        self._init_task(domain_a, task_classifier)

    def train_step(self, step: int) -> dict[str, float]:
        cfg, n = self.config, self.nets
        self._train_mode()
        idx_a, idx_b = self.batch_indices("A"), self.batch_indices("B")
        real_a, real_b = self.A[idx_a].to(self.device), self.B[idx_b].to(self.device)
        identity = cfg.lambda_identity > 0
        # each translator's translation and identity image in one call where it can
        with self.frozen(*self._d_names), self.autocast():
            fake_b, *idt_b = self._batched("G_A2B", real_a, *([real_b] if identity else []))
            fake_a, *idt_a = self._batched("G_B2A", real_b, *([real_a] if identity else []))
            rec_a, rec_b = n["G_B2A"](fake_b), n["G_A2B"](fake_a)
            adv = self.gan_loss.g_loss(n["D_B"](fake_b)) + self.gan_loss.g_loss(n["D_A"](fake_a))
            cycle = F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b)
            loss_g = adv + cfg.lambda_cycle * cycle
            idt = torch.zeros((), device=self.device)
            if identity:
                idt = F.l1_loss(idt_b[0], real_b) + F.l1_loss(idt_a[0], real_a)
                loss_g = loss_g + cfg.lambda_cycle * cfg.lambda_identity * idt
            if self.task is not None:  # A->B keeps the true label; B->A keeps f_S's label of the real B image
                task = self.task(step, [(fake_b, self.source_labels[idx_a]), (fake_a, self.task.target_labels[idx_b])])
                loss_g = loss_g + self.task.weight * task
            structure = self.structure([(real_a, fake_b), (real_b, fake_a)])
            if structure is not None:
                loss_g = loss_g + structure
        self.optimize(loss_g, "G", [p for k in self._g_names for p in n[k].parameters()])
        pooled_b, pooled_a = self.pool_B.query(fake_b.detach()), self.pool_A.query(fake_a.detach())
        with self.autocast():
            loss_d = 0.5 * (self.gan_loss.d_loss(*self._batched("D_B", real_b, pooled_b))
                            + self.gan_loss.d_loss(*self._batched("D_A", real_a, pooled_a)))
        self.optimize(loss_d, "D", [p for k in self._d_names for p in n[k].parameters()])
        self._step_schedulers()
        out = {"g_adv": adv.item(), "cycle": cycle.item(), "identity": idt.item(), "d_loss": loss_d.item(),
               "lr": self.optimizers["G"].param_groups[0]["lr"]}
        if self.task is not None:
            out["task"] = task.item()
        if structure is not None:
            out["structure"] = structure.item()
        return out

    @torch.no_grad()
    def sample_grid(self):
        k = min(8, len(self.A), len(self.B))
        a, b = self.A[:k].to(self.device), self.B[:k].to(self.device)
        for m in self.nets.values():
            m.eval()
        fb, fa = self.nets["G_A2B"](a), self.nets["G_B2A"](b)
        rows = [a, fb, self.nets["G_B2A"](fb), b, fa, self.nets["G_A2B"](fa)]
        self._train_mode()
        an, bn = self.domain_names
        return torch.cat([r.float().cpu() for r in rows]), k, [an, f"{an}->{bn}", f"{an}->{bn}->{an}",
                                                                 bn, f"{bn}->{an}", f"{bn}->{an}->{bn}"]



@register_recipe("pix2pix", Pix2PixConfig)
class Pix2PixRecipe(TranslationRecipe):
    """Paired translation A -> B: conditional PatchGAN on (A, B) pairs plus an L1 term."""

    cli_help = "paired translation (Pix2Pix)"

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--data", required=True, help="folder with A/ and B/ holding same-named images")
        super().add_arguments(parser)

    @classmethod
    def from_arguments(cls, args, config, check):
        from ..data import load_paired

        pairs = load_paired(args.data, size=args.size, channels=args.channels)
        print(f"pairs: {len(pairs)}")
        check(config)
        return cls(pairs, config, device=args.device, seed=args.seed)

    def __init__(self, pairs, config: Pix2PixConfig | None = None, device=None, seed: int = 0):
        config = config or Pix2PixConfig()
        super().__init__(config, device=device, seed=seed)
        a, b = getattr(pairs, "a", None), getattr(pairs, "b", None)
        if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
            raise TypeError(f"pairs: expected a PairedDataset with .a and .b tensors, found {type(pairs).__name__}")
        if len(a) == 0 or len(a) != len(b) or a.shape[-2:] != b.shape[-2:]:
            raise ValueError(f"pairs: expected equally many A and B images of one size, found A {tuple(a.shape)} "
                             f"and B {tuple(b.shape)}")
        self.A, self.B = a, b
        self.channels_a, self.channels_b, self.image_size = int(a.shape[1]), int(b.shape[1]), int(a.shape[-1])
        g = {**config.g_kwargs, "in_channels": self.channels_a, "out_channels": self.channels_b}
        d = {**config.d_kwargs, "in_channels": self.channels_a + self.channels_b}
        self._build({"G_A2B": g}, {"D": d}, {"G_A2B": a, "D": torch.cat([a[:1], b[:1]], 1)})
        self.samplers = {"pairs": BatchSampler(len(a), config.batch_size, seed=self.seed)}

    def train_step(self, step: int) -> dict[str, float]:
        n = self.nets
        self._train_mode()
        idx = self.batch_indices("pairs")
        real_a, real_b = self.A[idx].to(self.device), self.B[idx].to(self.device)
        with self.autocast():
            fake_b = n["G_A2B"](real_a)
            loss_d = 0.5 * self.gan_loss.d_loss(n["D"](torch.cat([real_a, real_b], 1)),
                                                n["D"](torch.cat([real_a, fake_b.detach()], 1)))
        self.optimize(loss_d, "D", n["D"].parameters())
        with self.frozen("D"), self.autocast():
            adv = self.gan_loss.g_loss(n["D"](torch.cat([real_a, fake_b], 1)))
            l1 = F.l1_loss(fake_b, real_b)
            loss_g = adv + self.config.lambda_l1 * l1
        self.optimize(loss_g, "G", n["G_A2B"].parameters())
        self._step_schedulers()
        return {"g_adv": adv.item(), "l1": l1.item(), "d_loss": loss_d.item(),
                "lr": self.optimizers["G"].param_groups[0]["lr"]}

    @torch.no_grad()
    def sample_grid(self):
        k = min(8, len(self.A))
        a, b = self.A[:k].to(self.device), self.B[:k].to(self.device)
        g = self.nets["G_A2B"].eval()
        fake = g(a)
        g.train()
        to3 = (lambda t: t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t) if self.channels_a != self.channels_b \
            else (lambda t: t)
        return torch.cat([to3(a).cpu(), to3(fake).float().cpu(), to3(b).cpu()]), k, ["input A", "A->B", "target B"]

    def save_pretrained(self, path) -> None:
        self._export(path, {"kind": self.name, "channels_a": self.channels_a, "channels_b": self.channels_b})
