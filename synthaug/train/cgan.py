"""Conditional GAN recipe: class-conditional generator vs projection discriminator, for scarce data.

Optionally semi-supervised: a pool of unlabelled images trains the discriminator's label-free term, and
confident pseudo-labels can add some of them to the class-conditional set (see :class:`CGANRecipe`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from ..checks import check_choice, check_int, check_number, check_options, check_probability
from ..io import write_nets
from ..losses import GANLoss, list_losses, orthogonal_regularisation
from ..nets import DISCRIMINATORS, GENERATORS, list_discriminators, list_generators
from ..nets.layers import normalize_spectral_norm_vectors
from . import distributed
from .recipe import Recipe, option, register_recipe
from ..utils import global_rng_kept, progress_enabled, quick_steps
from .helper_classifier import train_helper_classifier
from .progressive import ProgressiveSchedule, check_progressive_options
from .sampler import BatchSampler
from ..utils import ema_with_warmup

# The pseudo-labelling classifier: arguments of synthaug.train.classifier.train_classifier, plus val_fraction
# (a stratified share of the labelled images held out to pick the step with the lowest validation loss, so
# the confidences come from a classifier that is not simply fitted to its training images).
PSEUDO_LABEL_CLASSIFIER = {"arch": "small_cnn", "width": 16, "max_steps": 300, "batch_size": 64, "lr": 1e-3,
                           "weight_decay": 1e-4, "patience": 5, "eval_every": None, "ema_decay": None,
                           "val_fraction": 0.2}


@dataclass
class CGANConfig:
    """Settings of a conditional GAN run (serialised into checkpoints and config.json).

    Defaults suit a few hundred images on a CPU: hinge loss, spectral-norm projection discriminator with a
    minibatch-stddev layer, DiffAugment on, EMA generator.

    ``steps``: the run length, as in every recipe's config (the Trainer then needs no ``steps``); None (default):
    the Trainer's ``steps`` says it. It is not part of the settings a checkpoint records (no schedule depends on it),
    so a finished run can be resumed for more steps with ``Trainer(recipe, out_dir, steps=...)``.
    """

    steps: int | None = option(None, "run length (None: the Trainer's)", cli=False)  # the command line's --steps

    generator: str = option("dcgan", "generator architecture", flags=("--arch",), choices=list_generators)
    discriminator: str = option("projection", "discriminator architecture", choices=list_discriminators)
    g_kwargs: dict = option(help="JSON dict of generator arguments", factory=dict)
    d_kwargs: dict = option(help="JSON dict of discriminator arguments", factory=dict)
    loss: str = option("hinge", "GAN loss", choices=list_losses)
    batch_size: int = option(64, "images per step")
    lr_g: float = option(2e-4, "generator learning rate (TTUR: set lr_d != lr_g, e.g. 1e-4 / 4e-4)")
    lr_d: float = option(2e-4, "discriminator learning rate")
    betas: tuple = option((0.0, 0.99), "Adam's betas")
    n_critic: int = option(1, "discriminator steps per generator step")
    label_smoothing: float = option(0.0, "one-sided: real targets 1 - s (minimax, nonsaturating, lsgan)")
    gp_weight: float = option(10.0, "WGAN-GP weight, used with --loss wgan")
    r1_gamma: float = option(0.0, "R1 penalty gamma", flags=("--r1",))
    grad_clip: float = option(0.0, "gradient norm clipping (0: off)")
    diffaug: str = option("color,translation,cutout", "DiffAugment policies ('' or --no-diffaug: off)")
    diffaug_p: float = option(1.0, "probability of DiffAugment per batch")
    ada: bool = option(False, "adaptive augmentation strength (from the overfitting heuristic)")
    ada_target: float = option(0.6, "ADA's target overfitting heuristic")
    ac_weight: float = option(0.0, "> 0 adds an AC-GAN classification loss (needs --d-kwargs '{\"ac_head\": true}')")
    ema_decay: float = option(0.999, "EMA decay of the generator's weights")
    sync_batchnorm: bool = option(False, "under torchrun on CUDA: SyncBatchNorm (statistics over the global batch)")
    amp: bool = option(True, "float16 autocast on CUDA")
    # semi-supervised (CGANRecipe(..., unlabelled=...)): unlabelled images whose pseudo-label probability is
    # >= this join the class-conditional set (None: off); pseudo_label_classifier overrides entries of
    # PSEUDO_LABEL_CLASSIFIER (None: those defaults)
    pseudo_label_threshold: float | None = option(
        None, "unlabelled images a classifier trained on the labelled set gives this probability or more join the "
              "conditional set with that class (default: off)")
    pseudo_label_classifier: dict | None = option(
        None, "JSON dict overriding the pseudo-labelling classifier's settings (e.g. max_steps, width)")
    # progressive growing (synthaug.train.progressive): None = off; a dict of PROGRESSIVE_DEFAULTS keys
    # ("start", "fade_steps", "stable_steps"; {} = those defaults) grows G and D from "start" px to the image size
    # (start None, the default: the nets' resolution nearest 8 px, so 8 px for 32 or 64 px images, 7 px for 28 px)
    progressive: dict | None = option(
        None, "progressive growing from a low resolution: a JSON dict of start / fade_steps / stable_steps ('{}' "
              "for the defaults) (default: off)")
    # BigGAN's orthogonal regularisation of the generator's weights (losses.orthogonal_regularisation), weight beta;
    # None: the generator class's default_ortho_reg (1e-4 for "biggan"), else 0
    ortho_reg: float | None = option(
        None, "BigGAN's orthogonal regularisation weight on the generator (default: the generator's own, 1e-4 for "
              "biggan, 0 otherwise)")

    def validate(self) -> None:
        if self.steps is not None:
            check_int("steps", self.steps, 1)
        check_choice("generator", self.generator, GENERATORS.names())
        check_choice("discriminator", self.discriminator, DISCRIMINATORS.names())
        check_choice("loss", self.loss, list_losses())
        for name in ("batch_size", "n_critic"):
            check_int(name, getattr(self, name), 1)
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a positive learning rate, found {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing: expected a value in [0, 0.5), found {self.label_smoothing}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay: expected a value in [0, 1), found {self.ema_decay}")
        if self.ac_weight > 0 and not self.d_kwargs.get("ac_head", False):
            raise ValueError("ac_weight > 0 needs an AC-GAN head: set d_kwargs={'ac_head': True}")
        check_probability("pseudo_label_threshold", self.pseudo_label_threshold, zero=False, optional=True)
        check_options("pseudo_label_classifier", self.pseudo_label_classifier, PSEUDO_LABEL_CLASSIFIER)
        check_progressive_options(self.progressive)
        check_number("ortho_reg", self.ortho_reg, 0.0, what="a weight", optional=True)


class PseudoLabels:
    """The pseudo-labelling classifier's verdict on every unlabelled image: top probability and class.

    Saved in the checkpoint (``extras["pseudo_labels"]``), so a resumed run trains on exactly the pseudo-labels
    of the run it continues, whatever a re-trained classifier would say on another device.
    """

    def __init__(self, n: int):
        self.n = int(n)
        self.confidence = torch.zeros(self.n, dtype=torch.float64)
        self.predicted = torch.zeros(self.n, dtype=torch.int64)

    def selected(self, threshold: float) -> torch.Tensor:
        """Indices (int64) of the unlabelled images whose top probability is >= ``threshold``."""
        return torch.nonzero(self.confidence >= threshold).flatten()

    def state_dict(self) -> dict:
        return {"confidence": self.confidence.clone(), "predicted": self.predicted.clone(), "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        if int(state["n"]) != self.n:
            raise ValueError(f"checkpoint: expected pseudo-labels for {self.n} unlabelled images, found them for "
                             f"{state['n']} (was the unlabelled pool changed?)")
        self.confidence = state["confidence"].clone().to(torch.float64)
        self.predicted = state["predicted"].clone().to(torch.int64)


def train_pseudo_labeller(data, options: dict, seed: int, device, progress: bool | None = False) -> torch.nn.Module:
    """Train the classifier that pseudo-labels the unlabelled pool (deterministic under ``seed`` on CPU).

    ``data`` is the labelled :class:`~synthaug.data.ImageDataset`; ``options`` are
    :data:`PSEUDO_LABEL_CLASSIFIER`'s entries. With ``val_fraction`` > 0 and every class present in the held-out
    part, the step with the lowest validation loss is kept; otherwise the last step. Returns the model in eval
    mode (its class logits are read by the recipe). ``progress``: a bar over its steps with the time left (None:
    :func:`synthaug.utils.progress_default`).
    """
    label = f"pseudo-labeller ({options.get('arch', 'small_cnn')})" if progress_enabled(progress) else False
    net, _, _, _ = train_helper_classifier(data, {"select_on": "loss", **options}, seed, device, progress=label)
    return net


def _unlabelled_images(unlabelled, like: torch.Tensor) -> torch.Tensor:
    """The unlabelled pool as a float32 (N, C, H, W) CPU tensor shaped like the labelled images ``like``."""
    from ..data import ImageDataset, validate_images

    if isinstance(unlabelled, ImageDataset):
        x = unlabelled.images
    elif isinstance(unlabelled, torch.Tensor):
        x = validate_images(unlabelled, name="unlabelled")
    else:
        raise TypeError(f"unlabelled: expected an ImageDataset (its labels are ignored) or a float tensor "
                        f"(N, C, H, W) in [-1, 1], found {type(unlabelled).__name__}")
    if x.shape[1] != like.shape[1]:
        raise ValueError(f"unlabelled: expected {like.shape[1]} channel(s) like the labelled data, found "
                         f"{x.shape[1]} (shape {tuple(x.shape)})")
    if tuple(x.shape[-2:]) != tuple(like.shape[-2:]):
        raise ValueError(f"unlabelled: expected {like.shape[-2]}x{like.shape[-1]} images like the labelled data, "
                         f"found {x.shape[-2]}x{x.shape[-1]} (resize them first; nothing is resized silently)")
    return x.detach().to("cpu", torch.float32)


@register_recipe("cgan", CGANConfig)
class CGANRecipe(Recipe):
    """Train a class-conditional generator on an :class:`~synthaug.data.ImageDataset`.

    **Semi-supervised** (``unlabelled`` given: an ImageDataset whose labels are ignored, or a float tensor
    (N, C, H, W) in [-1, 1], same channels and size as ``data``). The projection discriminator's logit is
    ``psi(h) + <embed(y), h>``: by Miyato & Koyama's derivation ``psi`` estimates the marginal ratio
    ``log p(x) / q(x)`` and the projection term ``log p(y|x) / q(y|x)``. Only the first needs a label, so the
    discriminator plays two games on each step (the split of semi-supervised conditional GANs, Sricharan et al.
    2017):

    * conditional: labelled reals (plus confident pseudo-labelled ones) against fakes of the same classes,
      scored with the full logit, exactly as without ``unlabelled`` (AC loss, R1 and WGAN-GP included);
    * unconditional: a batch drawn from ALL real images (labelled + unlabelled, one resumable sampler
      ``"all_real"``) against the same fakes, scored with ``psi(h)`` alone (R1 / WGAN-GP applied to it too).

    The two losses are summed; the generator plays both games (its loss on the full logit plus its loss on
    ``psi`` of the same fakes). No "unknown class" embedding is needed, and unlabelled images never
    train the class embedding. ADA's overfitting signal still reads the labelled reals. The discriminator
    must expose ``forward_parts`` (the ``"projection"`` one does; ``forward_parts(x)[0]`` is ``psi``). With
    ``unlabelled=None`` training is unchanged, bit for bit.

    **Pseudo-labels** (``config.pseudo_label_threshold``): a small classifier
    (:func:`train_pseudo_labeller`, settings in :data:`PSEUDO_LABEL_CLASSIFIER`) trained on ``data`` under
    ``seed`` scores the unlabelled pool once, at construction, leaving the global RNG states untouched; images
    whose top probability is >= the threshold join the conditional set with that class (and stay in the
    unconditional pool). The classifier is not refreshed during training. The verdicts are
    saved in every checkpoint, so a resumed run uses the same pseudo-labels. ``config.json`` records
    ``semi_supervised``: image counts, threshold and pseudo-labels per class. ``progress`` (on by default, as the
    Trainer's; None follows :func:`synthaug.utils.progress_default`): a bar over the pseudo-labeller's steps.

    Example::

        from synthaug.data import load_breastmnist
        from synthaug.train import CGANConfig, CGANRecipe, Trainer

        train = load_breastmnist()                               # 546 images
        labelled = train.subsample(n_per_class=20, seed=0)       # pretend only 40 carry labels
        recipe = CGANRecipe(labelled, CGANConfig(pseudo_label_threshold=0.95), unlabelled=train.images)
        Trainer(recipe, "runs/semi", steps=3000).fit()

    (The pool may hold the labelled images too; they then count twice in the unconditional game. The CLI's
    ``--n-per-class 20 --unlabelled rest`` passes exactly the images left out.)
    """

    exports = "generator"

    cli_help = "class-conditional GAN"

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--data", required=True, help="'breastmnist', an .npz file, or a folder root/<class>/*.png")
        parser.add_argument("--split", default="train")
        parser.add_argument("--size", type=int, default=None, help="image size for folders (and digits npz)")
        parser.add_argument("--channels", type=int, default=None, help="1 or 3 for folders")
        parser.add_argument("--fraction", type=float, default=None)
        parser.add_argument("--n-per-class", type=int, default=None)
        parser.add_argument("--unlabelled", default=None, metavar="PATH_OR_SPEC",
                            help="semi-supervised: unlabelled images for the unconditional part of D. 'rest' (the "
                                 "--data images left out by --fraction/--n-per-class), 'breastmnist', an .npz file, or "
                                 "an image folder (flat or class folders; labels ignored; read at --size or the "
                                 "labelled size)")
        parser.add_argument("--unlabelled-split", default="train",
                            help="split of 'breastmnist' / an .npz for --unlabelled")
        parser.add_argument("--no-diffaug", action="store_true", help="DiffAugment off (--diffaug '')")

    @classmethod
    def config_from_arguments(cls, values: dict, args):
        if args.no_diffaug:
            values = {**values, "diffaug": ""}
        return cls.config_class(**values)

    @classmethod
    def from_arguments(cls, args, config, check):
        from ..data import load_labelled_and_rest, load_training_data, load_unlabelled

        kw = dict(split=args.split, size=args.size, channels=args.channels, fraction=args.fraction,
                  n_per_class=args.n_per_class, seed=args.seed)
        unlabelled = None
        if args.unlabelled == "rest":
            data, unlabelled = load_labelled_and_rest(args.data, **kw)
        else:
            data = load_training_data(args.data, **kw)
            if args.unlabelled:
                unlabelled = load_unlabelled(args.unlabelled, data, split=args.unlabelled_split, size=args.size,
                                             channels=args.channels)
        print(data.summary())
        if unlabelled is not None:
            print(f"unlabelled: {len(unlabelled)} images {tuple(unlabelled.images.shape[1:])} from "
                  f"{args.unlabelled!r}")
        elif config.pseudo_label_threshold is not None:
            raise ValueError("--pseudo-label-threshold: needs --unlabelled (the pool to pseudo-label), found none")
        check(config, seed=args.seed, image_size=int(data.images.shape[-1]), unlabelled=unlabelled)
        recipe = cls(data, config, device=args.device, seed=args.seed, unlabelled=unlabelled)
        semi = recipe.pseudo_label_summary()
        if semi is not None and semi["pseudo_label_threshold"] is not None:
            print(f"pseudo-labelled: {semi['n_pseudo_labelled']} of {semi['n_unlabelled']} unlabelled images at "
                  f"probability >= {semi['pseudo_label_threshold']} {semi['pseudo_labels_per_class']}")
        return recipe

    def __init__(self, data, config: CGANConfig | None = None, device=None, seed: int = 0, *, unlabelled=None,
                 progress: bool | None = None):
        from ..diffaug import AdaptiveAugment

        config = config or CGANConfig()
        config.validate()
        if unlabelled is None and config.pseudo_label_threshold is not None:
            raise ValueError(f"pseudo_label_threshold: needs an unlabelled pool to label (pass unlabelled=...), "
                             f"found unlabelled=None with threshold {config.pseudo_label_threshold}")
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
        self.progressive: ProgressiveSchedule | None = None
        if config.progressive is not None:
            self.progressive = self._progressive_schedule(unlabelled is not None)
            common["progressive"] = True
        torch.manual_seed(self.seed)  # weight init is part of the seeded run
        self.G = GENERATORS.get(config.generator)(**{**config.g_kwargs, **common}).to(self.device)
        self.D = DISCRIMINATORS.get(config.discriminator)(**{**config.d_kwargs, **common}).to(self.device)
        self.ortho_reg = (float(getattr(type(self.G), "default_ortho_reg", 0.0)) if config.ortho_reg is None
                          else float(config.ortho_reg))
        if config.sync_batchnorm and self.dist.enabled:
            if self.device.type != "cuda":
                raise ValueError("sync_batchnorm: SyncBatchNorm needs CUDA; found a CPU (gloo) run, where "
                                 "BatchNorm statistics stay per rank")
            self.G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        distributed.broadcast_module(self.G)
        distributed.broadcast_module(self.D)
        if self.device.type == "cpu":
            # ~1.2x steps per CPU-second (benchmarks/bench_cpu_defaults.py); after the broadcast, as collectives want
            # contiguous tensors; the safetensors writer makes exported weights contiguous
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        self.ema = AveragedModel(self.G, multi_avg_fn=ema_with_warmup(config.ema_decay), use_buffers=True)
        self.nets = {"G": self.G, "D": self.D, "ema": self.ema}
        self.optimizers = {
            "G": self.adam(self.G.parameters(), config.lr_g, config.betas),
            "D": self.adam(self.D.parameters(), config.lr_d, config.betas),
        }
        if config.batch_size % self.dist.world_size:
            raise ValueError(f"batch_size: expected a global batch divisible by the {self.dist.world_size} "
                             f"processes, found {config.batch_size}")
        self.samplers = {"data": BatchSampler(len(self.images), config.batch_size, seed=self.seed)}
        self.augment = AdaptiveAugment(target=config.ada_target, p_init=0.0 if config.ada else config.diffaug_p)
        self.extras = {"augment": self.augment}
        if self.progressive is not None:
            self.extras["progressive"] = self.progressive
        self._stage: dict = {}  # the nets' resolution / alpha keywords of the current step ({}: full, no schedule)
        self.gan_loss = GANLoss(config.loss)
        if self.gan_loss.needs_gradient_penalty or config.r1_gamma > 0:
            self.amp = False  # penalties need plain float32 gradients
            self.scaler = torch.amp.GradScaler("cuda", enabled=False)
        self._grid_z = torch.randn(8 * self.num_classes, self.G.z_dim, generator=torch.Generator().manual_seed(1234))
        self.unlabelled: torch.Tensor | None = None
        self.pseudo: PseudoLabels | None = None
        self._progress = progress
        if unlabelled is not None:
            self._setup_semi_supervised(data, unlabelled)

    # ------------------------------------------------------ progressive growing
    def _progressive_schedule(self, semi: bool) -> ProgressiveSchedule:
        """The schedule of ``config.progressive``, after checking that the chosen nets can grow."""
        from ..nets.contracts import progressive_problems

        cfg = self.config
        for role, registry, name in (("generator", GENERATORS, cfg.generator),
                                     ("discriminator", DISCRIMINATORS, cfg.discriminator)):
            problems = progressive_problems(role, registry.get(name))
            if not semi:  # forward_parts serves the unlabelled images only
                problems = [p for p in problems if "forward_parts" not in p]
            if problems:
                able = [n for n in registry.names() if not progressive_problems(role, registry.get(n))]
                raise ValueError(f"progressive: expected a {role} that can grow progressively, one of {able} "
                                 f"(synthaug.nets.contracts.Progressive{role.title()}), found {name!r}: "
                                 + "; ".join(problems))
        opts = check_progressive_options(cfg.progressive)
        opts["fade_steps"] = quick_steps(opts["fade_steps"])  # SYNTHAUG_QUICK: a smoke test's short schedule
        opts["stable_steps"] = quick_steps(opts["stable_steps"], minimum=0)
        return ProgressiveSchedule(self.image_size, **opts)

    def _at_stage(self, x: torch.Tensor) -> torch.Tensor:
        """Real images as the discriminator sees them at this step's stage (unchanged without a schedule)."""
        if self.progressive is None:
            return x
        return self.progressive.real_images(x, self.progressive.stage(self._step))

    def min_steps(self) -> int:
        return self.progressive.steps_to_full if self.progressive is not None else 1

    def check_steps(self, steps: int) -> None:
        if self.progressive is not None and steps < self.progressive.steps_to_full:
            p = self.progressive
            raise ValueError(f"steps: expected at least {p.steps_to_full}, the steps the progressive schedule "
                             f"{p.options} takes from {p.start} px to {self.image_size} px fully faded in (only a "
                             f"finished schedule is exported), found {steps}")

    # ------------------------------------------------------ semi-supervised
    def _setup_semi_supervised(self, data, unlabelled) -> None:
        cfg = self.config
        self.unlabelled = _unlabelled_images(unlabelled, like=self.images)
        if not callable(getattr(self.D, "forward_parts", None)):
            raise ValueError(f"discriminator: expected one whose unconditional and class terms can be scored apart "
                             f"(forward_parts) to use unlabelled images, found {cfg.discriminator!r} "
                             f"({type(self.D).__name__})")
        self.labelled_images, self.labelled_labels = self.images, self.labels
        self.real_pool = torch.cat([self.images, self.unlabelled])
        self.samplers["all_real"] = BatchSampler(len(self.real_pool), cfg.batch_size,
                                                 seed=(self.seed + 1_000_003) % 2**63)
        if cfg.pseudo_label_threshold is None:
            return
        if self.num_classes < 2:
            raise ValueError(f"pseudo_label_threshold: needs at least two classes to choose between, found "
                             f"{self.num_classes} ({self.class_names}); with one class every image is of it: "
                             "pass them as labelled data")
        self.pseudo = PseudoLabels(len(self.unlabelled))
        self._pseudo_label(data)
        self.extras["pseudo_labels"] = self.pseudo
        self._use_pseudo_labels()

    def _pseudo_label(self, data) -> None:
        """Train the pseudo-labeller on the labelled data and score the unlabelled pool."""
        from ..data import ImageDataset

        labelled = ImageDataset(self.labelled_images, self.labelled_labels, self.class_names,
                                name=getattr(data, "name", "labelled"))
        options = {**PSEUDO_LABEL_CLASSIFIER, **(self.config.pseudo_label_classifier or {})}
        with global_rng_kept():
            model = train_pseudo_labeller(labelled, options, seed=self.seed, device=self.device,
                                          progress=self._progress)
        model.eval()
        conf, pred = [], []
        with torch.no_grad():
            for i in range(0, len(self.unlabelled), 256):
                p = torch.softmax(model(self.unlabelled[i:i + 256].to(self.device)).double(), dim=1).cpu()
                c, k = p.max(dim=1)
                conf.append(c)
                pred.append(k)
        conf, pred = torch.cat(conf), torch.cat(pred).long()
        if self.dist.enabled:  # every rank trains on rank 0's verdicts (GPU kernels need not agree bit for bit)
            import torch.distributed as dist

            dev = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
            conf, pred = conf.to(dev), pred.to(dev)
            dist.broadcast(conf, src=0)
            dist.broadcast(pred, src=0)
            conf, pred = conf.cpu(), pred.cpu()
        self.pseudo.confidence, self.pseudo.predicted = conf, pred

    def _use_pseudo_labels(self) -> None:
        """Conditional set = labelled images + the confidently pseudo-labelled ones; restart its sampler."""
        idx = self.pseudo.selected(self.config.pseudo_label_threshold)
        self.images = torch.cat([self.labelled_images, self.unlabelled[idx]])
        self.labels = torch.cat([self.labelled_labels, self.pseudo.predicted[idx]])
        self.samplers["data"] = BatchSampler(len(self.images), self.config.batch_size, seed=self.seed)

    def pseudo_label_summary(self) -> dict | None:
        """``semi_supervised`` of config.json: image counts, threshold, pseudo-labels per class (None if supervised)."""
        if self.unlabelled is None:
            return None
        thr = self.config.pseudo_label_threshold
        out = {"n_labelled": len(self.labelled_images), "n_unlabelled": len(self.unlabelled),
               "pseudo_label_threshold": thr, "n_pseudo_labelled": 0, "pseudo_labels_per_class": None}
        if self.pseudo is not None:
            idx = self.pseudo.selected(thr)
            counts = torch.bincount(self.pseudo.predicted[idx], minlength=self.num_classes).tolist()
            out.update(n_pseudo_labelled=len(idx), pseudo_labels_per_class=dict(zip(self.class_names, counts)),
                       pseudo_label_classifier={**PSEUDO_LABEL_CLASSIFIER,
                                                **(self.config.pseudo_label_classifier or {})})
        return out

    def load_state_dict(self, state: dict) -> None:
        if self.pseudo is not None and "pseudo_labels" in state.get("extras", {}):
            self.pseudo.load_state_dict(state["extras"]["pseudo_labels"])  # before the samplers: it sizes "data"
            self._use_pseudo_labels()
        super().load_state_dict(state)

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
        return self._at_stage(self.images[idx].to(self.device)), self.labels[idx].to(self.device)

    def _d_unconditional(self, x: torch.Tensor) -> torch.Tensor:
        return self.D.forward_parts(x, **self._stage)[0]

    def _all_real_batch(self) -> torch.Tensor:
        return self._at_stage(self.real_pool[self.batch_indices("all_real")].to(self.device))

    def _d_step(self) -> dict:
        cfg = self.config
        semi = self.unlabelled is not None
        x, y = self._real_batch()
        x_all = self._all_real_batch() if semi else None
        z = self.noise(len(y), self.G.z_dim)
        with torch.no_grad(), self.autocast():
            fake = self.G(z, y, **self._stage)
        need_r1 = cfg.r1_gamma > 0
        with self.autocast():
            xr = self._aug(x)
            if need_r1:
                xr = xr.detach().requires_grad_(True)
            real_out, real_cls = self.D.forward_with_class(xr, y, **self._stage)
            if semi:
                fake_u, fake_proj, _ = self.D.forward_parts(self._aug(fake.float()), y, **self._stage)
                fake_out = fake_u if fake_proj is None else fake_u + fake_proj
            else:
                fake_out, fake_cls = self.D.forward_with_class(self._aug(fake.float()), y, **self._stage)
            loss = self.gan_loss.d_loss(real_out.float(), fake_out.float(), label_smoothing=cfg.label_smoothing)
            if cfg.ac_weight > 0:
                loss = loss + cfg.ac_weight * F.cross_entropy(real_cls.float(), y)
            if semi:  # the unconditional game: any real image against the same fakes, label-free term only
                xa = self._aug(x_all)
                if need_r1:
                    xa = xa.detach().requires_grad_(True)
                all_out = self._d_unconditional(xa)
                loss = loss + self.gan_loss.d_loss(all_out.float(), fake_u.float(),
                                                   label_smoothing=cfg.label_smoothing)
        if self.gan_loss.needs_gradient_penalty:
            from ..losses import gradient_penalty

            loss = loss + cfg.gp_weight * gradient_penalty(lambda t: self.D(t, y, **self._stage), self._aug(x),
                                                           self._aug(fake))
            if semi:
                loss = loss + cfg.gp_weight * gradient_penalty(self._d_unconditional, self._aug(x_all),
                                                               self._aug(fake))
        if need_r1:
            from ..losses import r1_penalty

            loss = loss + cfg.r1_gamma / 2 * r1_penalty(real_out, xr)
            if semi:
                loss = loss + cfg.r1_gamma / 2 * r1_penalty(all_out, xa)
        self.optimize(loss, "D", self.D.parameters(), cfg.grad_clip)
        if cfg.ada:
            self.augment.update(real_out.detach())
        out = {"d_loss": loss.item(), "d_real": real_out.float().mean().item(),
               "d_fake": fake_out.float().mean().item()}
        if semi:
            out["d_real_all"] = all_out.float().mean().item()
        return out

    def _g_step(self) -> dict:
        cfg = self.config
        y = self.labels[self.batch_indices("data")].to(self.device)  # class frequencies of the real data
        z = self.noise(len(y), self.G.z_dim)
        with self.frozen("D"), self.autocast():
            fake = self.G(z, y, **self._stage)
            if self.unlabelled is not None:  # both games: full logit and the label-free term of the same fakes
                uncond, proj, cls = self.D.forward_parts(self._aug(fake), y, **self._stage)
                out = uncond if proj is None else uncond + proj
                loss = self.gan_loss.g_loss(out.float()) + self.gan_loss.g_loss(uncond.float())
            else:
                out, cls = self.D.forward_with_class(self._aug(fake), y, **self._stage)
                loss = self.gan_loss.g_loss(out.float())
            if cfg.ac_weight > 0:
                loss = loss + cfg.ac_weight * F.cross_entropy(cls.float(), y)
        logged = {}
        if self.ortho_reg > 0:
            ortho = orthogonal_regularisation(self.G)
            loss = loss + self.ortho_reg * ortho
            logged["g_ortho"] = ortho.item()
        self.optimize(loss, "G", self.G.parameters(), cfg.grad_clip)
        self.ema.update_parameters(self.G)
        normalize_spectral_norm_vectors(self.ema.module)
        return {"g_loss": loss.item(), **logged}

    def train_step(self, step: int) -> dict[str, float]:
        self._step, self._aug_calls = step, 0
        stage = self.progressive.stage(step) if self.progressive is not None else None
        self._stage = stage.kwargs if stage is not None else {}
        self.G.train()
        self.D.train()
        for _ in range(self.config.n_critic):
            d = self._d_step()
        g = self._g_step()
        out = {**d, **g, "aug_p": float(self.augment.p)}
        if stage is not None:
            self.progressive.steps_done = step + 1
            out.update(resolution=float(stage.resolution), alpha=stage.alpha)
        return out

    # --------------------------------------------------------------- output
    def ema_generator(self) -> torch.nn.Module:
        return self.ema.module

    @torch.no_grad()
    def sample_grid(self):
        """8 EMA samples per class; during a progressive schedule at the stage of the last step trained, upsampled
        (nearest) to the image size."""
        G = self.ema.module.eval()
        y = torch.arange(self.num_classes).repeat_interleave(8)
        p = self.progressive
        stage = {} if p is None else p.stage(max(p.steps_done - 1, 0)).kwargs
        imgs = G(self._grid_z.to(self.device), y.to(self.device), **stage).float().cpu()
        return (imgs if p is None else p.upsample(imgs)), 8, self.class_names

    def model_config(self) -> dict:
        """config.json of the exported model, less the ``nets`` section (:func:`~synthaug.io.write_nets` adds it)."""
        cfg = {
            "kind": self.name,
            "image_size": self.image_size,
            "channels": self.channels,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "train": self.config_dict(),
        }
        if self.unlabelled is not None:
            cfg["semi_supervised"] = self.pseudo_label_summary()
        return cfg

    def save_pretrained(self, path) -> None:
        write_nets(path, self.model_config(), {"generator": self._exported_generator()})

    def _exported_generator(self) -> torch.nn.Module:
        """The EMA generator; after a progressive schedule the same net without its lower-resolution toRGB layers
        (built with ``progressive=False``: an ordinary model directory). Mid-schedule nothing is exported."""
        g = self.ema.module
        p = self.progressive
        if p is None:
            return g
        if not p.finished:
            raise ValueError(f"progressive: expected a finished schedule to export ({p.steps_to_full} steps, to "
                             f"{self.image_size} px fully faded in), found {p.steps_done} steps trained")
        from ..nets import create_net

        with global_rng_kept():  # building the plain net draws initial weights: leave the run's RNG alone
            plain = create_net(g.spec["arch"], **{**g.spec["kwargs"], "progressive": False})
        missing, _ = plain.load_state_dict(g.state_dict(), strict=False)  # the extra keys: the toRGB layers
        if missing:
            raise RuntimeError(f"progressive: the plain {g.spec['arch']!r} generator expected weights the growing one "
                               f"lacks: {missing}")
        return plain.to(next(g.parameters()).device).eval()

    def config_dict(self) -> dict:
        cfg = super().config_dict()
        cfg.pop("steps", None)  # the run length, not a setting: checkpoints and config.json as before the field
        if cfg.get("progressive") is None:  # off: config.json and checkpoints exactly as before the option existed
            cfg.pop("progressive", None)
        else:
            cfg["progressive"] = check_progressive_options(cfg["progressive"], image_size=self.image_size)
        if cfg.get("ortho_reg") is None:  # the generator's default: config.json and checkpoints as before the option
            cfg.pop("ortho_reg", None)
        cfg["seed"] = self.seed
        if getattr(self, "unlabelled", None) is not None:  # a resumed run must use a pool of the same size
            cfg["unlabelled"] = len(self.unlabelled)
        return cfg
