"""CUT and FastCUT (Park et al., 2020, contrastive unpaired translation): one-sided A -> B translation with an
adversarial loss and PatchNCE (:mod:`synthaug.nets.patchnce`) instead of a cycle, on the shared engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ..checks import check_bool, check_int, check_number
from ..nets import TRANSLATORS
from ..nets.patchnce import PatchProjector, patch_nce_loss, sample_patches
from .recipe import option, register_recipe
from .sampler import BatchSampler
from .translation import UnpairedTranslationConfig, UnpairedTranslationRecipe


@dataclass
class CUTConfig(UnpairedTranslationConfig):
    """CUT settings, the paper's defaults: those of :class:`~synthaug.train.translation.UnpairedTranslationConfig`
    (``steps`` the run length; the learning rate decays linearly from ``decay_start``, None: half way, to 0 at the
    last step) and PatchNCE's.

    ``nce_layers`` name the generator's encoder maps (``ResnetGenerator.feature_layers``); the default maps CUT's
    layers 0, 4, 8, 12, 16 of its ResNet: the input, the two downsampling stages (here after norm and ReLU, in CUT
    the convs before them, one scale finer), residual blocks 1 and 5. With ``generator="lptn"`` name maps of its
    low-band CNN (``LPTNTranslator.feature_layers``: ``low``, ``stem``, ``block1``, ...), e.g. ``("low", "stem",
    "block1", "block2")``: PatchNCE then ties the translated low band to the input's, while the detail bands are the
    input's own by construction.
    ``num_patches`` positions per map (all where a map has fewer), projected by a 2-layer MLP of ``mlp_dim``
    units. The generator loss is ``lambda_gan * GAN + lambda_nce * NCE``, NCE averaged over the layers and, with
    ``nce_idt``, also over the identity term NCE(b, G(b)). ``flip_equivariance``: each step, with probability
    1/2, G translates the horizontally flipped batch and the output's maps are flipped back. The task fields
    (:class:`~synthaug.train.task_loss.TaskLossConfig`) judge the A->B translations only.

    ``lambda_diversity`` > 0 (needs a stochastic generator: ``g_kwargs`` with ``noise_dim`` or ``noise_maps``)
    adds the mode-seeking term of MSGAN / DRIT++ (Mao et al., 2019): each step G also translates the A batch with
    other noise, and ``lambda_diversity / (mean|G(a, n1) - G(a, n2)| / mean|n1 - n2| + 1e-5)`` joins the generator
    loss, so different noise gives different translations instead of the one texture a GAN with PatchNCE
    otherwise settles on. It costs one more generator pass over the A batch (0: off, left out of config.json).
    """

    lambda_gan: float = option(1.0, "GAN weight")
    lambda_nce: float = option(1.0, "PatchNCE weight")
    nce_idt: bool = option(True, "identity PatchNCE term on domain B images")
    nce_layers: tuple = option(("input", "down1", "down2", "block1", "block5"),
                               "comma-separated encoder maps of the generator for PatchNCE (resnet: input, stem, "
                               "down1, ..., block1, ...; lptn: low, stem, block1, ...); the default names the "
                               "resnet's, so another --arch needs them named")
    num_patches: int = option(256, "patches per map and image")
    nce_temperature: float = option(0.07, "PatchNCE temperature")
    mlp_dim: int = option(256, "units of the projection MLP")
    flip_equivariance: bool = option(False, "translate the flipped batch at random (FastCUT)")
    lambda_diversity: float = option(0.0, "mode-seeking term for a stochastic generator (MSGAN / DRIT++; 0: off)")
    decay_fraction: ClassVar[float] = 0.5  # where the decay starts when decay_start is None


@dataclass
class FastCUTConfig(CUTConfig):
    """FastCUT: CUT without the identity NCE term, ``lambda_nce`` 10, flip equivariance, and the decay over the last
    quarter of the run (the paper's 150 + 50 epochs)."""

    lambda_nce: float = option(10.0, "PatchNCE weight")
    nce_idt: bool = option(False, "identity PatchNCE term on domain B images")
    flip_equivariance: bool = option(True, "translate the flipped batch at random (FastCUT)")
    decay_fraction: ClassVar[float] = 0.75


def _check_config(config: CUTConfig) -> None:
    check_number("lambda_gan", config.lambda_gan, 0.0, what="a weight")
    check_number("lambda_nce", config.lambda_nce, 0.0, low_open=True, what="a weight")
    check_bool("nce_idt", config.nce_idt)
    check_bool("flip_equivariance", config.flip_equivariance)
    check_int("num_patches", config.num_patches, 1)
    check_int("mlp_dim", config.mlp_dim, 1)
    check_number("nce_temperature", config.nce_temperature, 0.0, low_open=True)
    check_number("lambda_diversity", config.lambda_diversity, 0.0, what="a weight")
    layers = config.nce_layers
    if not isinstance(layers, (list, tuple)) or not layers or len(set(layers)) != len(layers):
        raise ValueError(f"nce_layers: expected a non-empty list of distinct layer names, found {layers!r}")
    with_features = [n for n in TRANSLATORS.names() if hasattr(TRANSLATORS.get(n), "features")]
    if config.generator not in with_features:
        raise ValueError(f"generator: expected a translator with encoder features for PatchNCE, one of "
                         f"{with_features}, found {config.generator!r}")


@register_recipe("cut", CUTConfig)
class CUTRecipe(UnpairedTranslationRecipe):
    """Unpaired one-sided translation A -> B (CUT): G_A2B, a discriminator D_B on B, and PatchNCE between G's
    encoder maps of the input and of the output (negatives: other patches of the same image), through a
    projection MLP ``F`` that the generator's optimiser trains too. D sees the current fakes (no pool).

    ``F`` is built at construction from a dry run of G (so it is checkpointed and resumed exactly); only G goes to
    the model directory (kind ``"cut"``, A2B only). Task consistency as in
    :class:`~synthaug.train.translation.CycleGANRecipe`, on the A->B pair alone.

    Example::

        recipe = CUTRecipe(horses, zebras, CUTConfig(steps=4000), names=("horse", "zebra"))
        Trainer(recipe, "runs/h2z").fit()
    """

    cli_help = "one-sided unpaired translation (CUT)"

    @classmethod
    def config_from_arguments(cls, values: dict, args):
        """``--nce-layers``, or the config's default when it names maps of the generator chosen by ``--arch``; for
        another generator the maps must be named (the default ones are a ResNet's): refused naming its maps."""
        default = cls.config_class()
        arch = values.get("generator", default.generator)
        if "nce_layers" not in values and arch != default.generator:
            from ..nets import create_net

            kwargs = {**(getattr(args, "g_kwargs", None) or {}), "in_channels": args.channels,
                      "out_channels": args.channels}
            try:
                maps = list(create_net(arch, **kwargs).feature_layers)
            except (TypeError, ValueError, AttributeError):
                maps = None
            named = f"its maps are {', '.join(maps)}; e.g. --nce-layers {','.join(maps[:4])}" if maps else \
                "name maps of its encoder"
            raise ValueError(f"--nce-layers: expected the {arch} generator's maps for PatchNCE, found none given (the "
                             f"default {','.join(default.nce_layers)} names maps of the {default.generator} "
                             f"generator); {named}")
        return super().config_from_arguments(values, args)

    def __init__(self, domain_a, domain_b, config: CUTConfig | None = None, device=None, seed: int = 0,
                 names: tuple[str, str] = ("A", "B"), *, task_classifier=None):
        config = config or self.config_class()
        super().__init__(domain_a, domain_b, config, device, seed, names, task_classifier)
        _check_config(config)
        c = self.channels
        self._build({"G_A2B": {**config.g_kwargs, "in_channels": c, "out_channels": c}},
                    {"D_B": {**config.d_kwargs, "in_channels": c}}, {"G_A2B": self.A, "D_B": self.B},
                    heads=self._projector)
        self.samplers = {"A": BatchSampler(len(self.A), config.batch_size, seed=self.seed),
                         "B": BatchSampler(len(self.B), config.batch_size, seed=self.seed + 1)}
        self._init_task(domain_a, task_classifier)
        if config.lambda_diversity > 0 and not getattr(self.nets["G_A2B"], "stochastic", False):
            raise ValueError(f"lambda_diversity: needs a generator with noise inputs (g_kwargs noise_dim or "
                             f"noise_maps > 0), found {config.lambda_diversity} with a deterministic "
                             f"{config.generator!r} generator")

    def config_dict(self) -> dict:
        cfg = super().config_dict()
        if not cfg.get("lambda_diversity"):  # off: config.json and checkpoints exactly as before the option
            cfg.pop("lambda_diversity", None)
        return cfg

    def _translate(self, x: torch.Tensor, twice: int) -> tuple[torch.Tensor, torch.Tensor | None, dict | None]:
        """G(x), and with ``twice`` > 0 a second translation of ``x[:twice]`` with other noise and the mode-seeking
        ratio's pieces; one generator call either way."""
        g = self.nets["G_A2B"]
        if not twice:
            return g(x), None, None
        h, w = x.shape[-2:]
        noise = g.make_noise(len(x) + twice, h, w, device=x.device)
        out = g(torch.cat([x, x[:twice]]), noise)
        return out[:len(x)], out[len(x):], noise

    def _diversity(self, fake: torch.Tensor, fake2: torch.Tensor, noise: dict) -> torch.Tensor:
        k = len(fake2)
        dz = torch.cat([(v[:k] - v[-k:]).abs().flatten(1) for v in noise.values() if v.numel()], 1).mean()
        return 1.0 / ((fake[:k] - fake2).abs().mean() / dz + 1e-5)

    def _projector(self) -> dict[str, torch.nn.Module]:
        g, layers = self.nets["G_A2B"], list(self.config.nce_layers)
        unknown = [n for n in layers if n not in g.feature_layers]
        if unknown:
            raise ValueError(f"nce_layers: expected names among {g.feature_layers} (this generator's maps), found "
                             f"{unknown}")
        with torch.no_grad():
            maps = g.features(self.A[:1].to(self.device), layers)
        return {"F": PatchProjector([m.shape[1] for m in maps], self.config.mlp_dim)}

    def _nce(self, source: torch.Tensor, output: torch.Tensor, flipped: bool, gen: torch.Generator) -> torch.Tensor:
        """PatchNCE of G's maps of ``output`` (queries; flipped back if ``flipped``) against those of ``source``
        (keys, no gradient), averaged over the layers; unweighted."""
        g, head, cfg = self.nets["G_A2B"], self.nets["F"], self.config
        layers = list(cfg.nce_layers)
        queries = g.features(output, layers)
        if flipped:
            queries = [q.flip(3) for q in queries]
        with torch.no_grad():
            keys = g.features(source, layers)
            positions = sample_patches(keys, cfg.num_patches, gen)
            keys = head(keys, positions)
        losses = [patch_nce_loss(q, k, cfg.nce_temperature) for q, k in zip(head(queries, positions), keys)]
        return torch.stack(losses).mean()

    def train_step(self, step: int) -> dict[str, float]:
        cfg, n = self.config, self.nets
        self._train_mode()
        idx_a, idx_b = self.batch_indices("A"), self.batch_indices("B")
        real_a, real_b = self.A[idx_a].to(self.device), self.B[idx_b].to(self.device)
        gen = self.step_generator(step)  # flip and patch positions: stateless, so a resumed run repeats them
        flipped = cfg.flip_equivariance and bool(torch.rand((), generator=gen) < 0.5)
        real = torch.cat([real_a, real_b]) if cfg.nce_idt else real_a
        twice = len(real_a) if cfg.lambda_diversity > 0 else 0
        with self.autocast():
            fake, fake2, noise = self._translate(real.flip(3) if flipped else real, twice)
            fake_b = fake[:len(real_a)]
            loss_d = 0.5 * self.gan_loss.d_loss(*self._batched("D_B", real_b, fake_b.detach()))
        self.optimize(loss_d, "D", n["D_B"].parameters())
        with self.frozen("D_B"), self.autocast():
            adv = self.gan_loss.g_loss(n["D_B"](fake_b))
            nce = self._nce(real_a, fake_b, flipped, gen)
            out = {"g_adv": adv.item(), "nce": nce.item()}
            if cfg.nce_idt:
                nce_idt = self._nce(real_b, fake[len(real_a):], flipped, gen)
                out["nce_idt"] = nce_idt.item()
                nce = 0.5 * (nce + nce_idt)
            loss_g = cfg.lambda_gan * adv + cfg.lambda_nce * nce
            if twice:
                div = self._diversity(fake_b, fake2, noise)
                loss_g = loss_g + cfg.lambda_diversity * div
                out["diversity"] = div.item()
            if self.task is not None:  # judged in the input's orientation: a flip may change a label
                task = self.task(step, [(fake_b.flip(3) if flipped else fake_b, self.source_labels[idx_a])])
                loss_g = loss_g + self.task.weight * task
                out["task"] = task.item()
            structure = self.structure([(real_a.flip(3) if flipped else real_a, fake_b)])
            if structure is not None:
                loss_g = loss_g + structure
                out["structure"] = structure.item()
        self.optimize(loss_g, "G", [p for k in self._g_names for p in n[k].parameters()])
        self._step_schedulers()
        return {**out, "d_loss": loss_d.item(), "lr": self.optimizers["G"].param_groups[0]["lr"]}

    @torch.no_grad()
    def sample_grid(self):
        k = min(8, len(self.A), len(self.B))
        a, b = self.A[:k].to(self.device), self.B[:k].to(self.device)
        g = self.nets["G_A2B"].eval()
        fake = g(a)
        g.train()
        an, bn = self.domain_names
        return torch.cat([a.cpu(), fake.float().cpu(), b.cpu()]), k, [an, f"{an}->{bn}", bn]


@register_recipe("fastcut", FastCUTConfig)
class FastCUTRecipe(CUTRecipe):
    """FastCUT: :class:`CUTRecipe` with :class:`FastCUTConfig`'s settings by default (model kind ``"fastcut"``)."""

    cli_help = "one-sided unpaired translation, lighter (FastCUT)"
