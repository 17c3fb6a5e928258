"""What the three domain studies (``digits``, ``weather``, ``driving``) share (their command line and output
paths are ``harness.Study``'s): a translator (CycleGAN, or any unpaired recipe) trained per seed and cached by its
full configuration, cached arms,
albumentations on tensors, paired comparisons, plain-language verdicts, headline records and the report's
closing section.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from synthaug.models import TranslatorModel  # noqa: E402
from synthaug.train.engine import Trainer  # noqa: E402
from synthaug.train.recipe import get_recipe, list_recipes  # noqa: E402
from synthaug.study.report import paired_difference  # noqa: E402
from synthaug.train.translation import CycleGANConfig  # noqa: E402

HARNESS_VERSION = 1  # bump when a change of code (not of settings) must invalidate cached domain results


# --- translators -------------------------------------------------------------------------------------------
def cyclegan_config(steps: int, ngf: int, n_blocks: int, ndf: int, n_layers: int, batch_size: int) -> CycleGANConfig:
    """The study's CycleGAN: ResNet generator, PatchGAN, LSGAN, lambda_cycle 10, identity 0.5 (library defaults)."""
    return CycleGANConfig(steps=steps, g_kwargs={"ngf": ngf, "n_blocks": n_blocks},
                          d_kwargs={"ndf": ndf, "n_layers": n_layers}, batch_size=batch_size, amp=False)


def task_cyclegan_config(translator: dict, task: dict, quick: bool) -> CycleGANConfig:
    """The study's CycleGAN plus the task-consistency settings ``task`` (``lambda_task``, ``task_*``); ``--quick``
    trains its task classifier for a few steps and switches the accuracy gate off."""
    cfg = cyclegan_config(**translator)
    for k, v in task.items():
        setattr(cfg, k, dict(v) if isinstance(v, dict) else v)
    if quick:
        cfg.task_classifier = {**(cfg.task_classifier or {}), "max_steps": 8, "eval_every": 4}
        cfg.task_min_accuracy = None
    return cfg


def recipe_name(cfg) -> str:
    """The registered recipe whose config class is exactly ``type(cfg)`` (e.g. ``"cyclegan"``, ``"fastcut"``)."""
    names = [n for n in list_recipes() if get_recipe(n).config_class is type(cfg)]
    if len(names) != 1:
        raise ValueError(f"cfg: expected the config of one registered recipe, found {type(cfg).__name__}")
    return names[0]


# options whose off value (False / 0) is left out of a translator's cache key
OFF_WHEN_FALSY = ("cpu_bf16", "lambda_structure", "lambda_diversity")


def translator_config(study: str, data: dict, cfg, seed: int) -> dict:
    """Everything that defines a trained translator (its cache key), under the recipe's name (``"cyclegan"``,
    ``"fastcut"``, ...). Settings that are off (None, :data:`OFF_WHEN_FALSY` options, or the task-consistency fields
    while ``lambda_task`` is 0) are left out, so adding such an option to the library keeps existing translators
    valid."""
    gan = {k: v for k, v in asdict(cfg).items() if v is not None and not (k in OFF_WHEN_FALSY and not v)}
    if not gan.get("lambda_task"):
        gan = {k: v for k, v in gan.items() if k != "lambda_task" and not k.startswith("task_")}
    return {"harness": HARNESS_VERSION, "study": study, "data": data, "seed": seed, recipe_name(cfg): gan}


def _kind(config: dict) -> str:
    return next(k for k in config if k in list_recipes())


def translator(st: H.Study, config: dict, cfg, domains, names: tuple[str, str]):
    """The translator of ``config`` (made by :func:`translator_config` from ``cfg``) as two lazy getters
    ``(model, info)``. ``model()`` loads it from ``runs/studies/<recipe>/<hash>/`` or trains it there first (the
    recipe of ``cfg`` + ``Trainer``, seed ``config['seed']``; a killed run resumes from its checkpoint);
    ``domains()`` gives the two training sets. ``info()`` is its training record, kept in the result cache, so a
    report of cached arms trains nothing."""
    kind = _kind(config)

    def train() -> TranslatorModel:
        d = st.cache.directory(kind, config)
        if not (d / "model" / "config.json").is_file() or H.read_json(d / "translator_info.json") is None:
            a, b = domains()
            t0 = time.perf_counter()
            recipe = get_recipe(kind)(a, b, cfg, device="cpu", seed=config["seed"], names=names)
            res = Trainer(recipe, d, cfg.steps, log_every=max(1, cfg.steps // 40), sample_every=cfg.steps,
                          ckpt_every=max(1, cfg.steps // 4), progress=False).fit()
            if res.interrupted or res.model_dir is None:
                raise SystemExit(f"{kind} training interrupted at step {res.step}; rerun the command to resume")
            secs = time.perf_counter() - t0
            H.write_json(d / "translator_info.json", {
                "steps": cfg.steps, "seconds": round(secs, 1), "s_per_step": round(secs / cfg.steps, 4),
                "n_a": len(a), "n_b": len(b), "last_losses": {k: round(v, 4) for k, v in res.last_metrics.items()},
                "task_consistency": (H.read_json(d / "model" / "config.json") or {}).get("task_consistency")})
            st.log(f"seed {config['seed']}: {kind} {names[0]}->{names[1]} {cfg.steps} steps in {secs:.0f} s")
        return TranslatorModel.from_pretrained(d / "model", device="cpu")

    model = lazy(train)

    def info() -> dict:
        def record() -> dict:
            model()
            return H.read_json(st.cache.directory(kind, config) / "translator_info.json")

        return {**st.cache.result("translators", config, record), "key": H.config_hash(config),
                "seed": config["seed"]}

    return model, lazy(info)


def translator_on_disk(st: H.Study, config: dict) -> bool:
    """Whether the trained translator is in the model folder (the example grids need it; results do not)."""
    return (st.cache.models_root / _kind(config) / H.config_hash(config) / "model" / "config.json").is_file()


def lazy(fn):
    """A zero-argument function computed on first call only (a pool or translator no uncached arm needs is never
    built)."""
    box = []

    def get():
        if not box:
            box.append(fn())
        return box[0]

    return get


# --- arms and training sets --------------------------------------------------------------------------------
def albumentations_on(images: torch.Tensor, transform, seed: int) -> torch.Tensor:
    """An albumentations transform (``p=1``) on float NCHW images in [-1, 1], one ``Compose`` seeded with
    ``seed`` for the whole batch (new random parameters per image)."""
    import albumentations as A

    aug = A.Compose([transform], seed=int(seed))
    u8 = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = np.stack([aug(image=np.ascontiguousarray(im))["image"] for im in u8])
    return (torch.from_numpy(out).permute(0, 3, 1, 2).float() / 127.5 - 1.0).clamp(-1, 1)


# --- the study loop ---------------------------------------------------------------------------------------
def run_study(name: str, doc: str, argv, full: dict, quick: dict, load, describe, run_seed, report) -> int:
    """The ``main`` of a domain study: settings (``quick`` with ``--quick``), data, every seed's arms (cached) and
    translator record(s), the report, the headline records."""
    st = H.Study(name, doc, argv, report_prefix="domain_")
    cfg = quick if st.quick else full
    d = load(cfg)
    st.log(describe(d))
    per_seed, translators = {}, []
    for seed in st.seeds:
        per_seed[seed], info = run_seed(st, d, cfg, seed)
        translators += info if isinstance(info, list) else [info]
    out = report(st, per_seed, translators, cfg, d)
    st.finish(out["headline"])
    return 0


# --- comparisons and records ---------------------------------------------------------------------------------
def by_arm(per_seed: dict[int, dict], order) -> tuple[dict[str, list[dict]], dict[str, int]]:
    """``{arm: [result per seed]}`` in ``order`` for the arms every seed has, and how many seeds each arm has."""
    seeds = sorted(per_seed)
    n = {a: sum(a in per_seed[s] for s in seeds) for a in order}
    return {a: [per_seed[s][a] for s in seeds] for a in order if n[a] == len(seeds) and n[a]}, n


def diff_table(results: dict, pairs: list[tuple[str, str]], metric: str, scale: float = 1.0) -> list[str]:
    """Markdown rows ``| arm - ref | difference |`` for the given pairs."""
    rows = ["| comparison | difference in " + metric.replace("test_", "test ") + " [95% CI], p |", "|---|---|"]
    for arm, ref in pairs:
        t = paired_difference(results, arm, ref, metric)
        if t is not None:
            rows.append(f"| `{arm}` - `{ref}` | {H.fmt_diff(t, scale=scale)} |")
    return rows


def run_section(st: H.Study, results: dict, translators: list[dict], extra_seconds: dict | None = None) -> list[str]:
    """The report's closing lines: selection, wall time per arm and translator, machine, command."""
    m = st.meta
    secs = {a: float(np.mean([r.get("seconds") or 0 for r in rs])) for a, rs in results.items()}
    lines = ["## Run", "", H.selection_line(results), "", "| step | mean seconds per seed |", "|---|---|"]
    lines += [f"| arm `{a}` | {s:.0f} |" for a, s in secs.items()]
    for kind in sorted({t.get("kind", "translator") for t in translators}):
        ts = [t for t in translators if t.get("kind", "translator") == kind]
        lines.append(f"| {kind} ({ts[0]['steps']} steps) | {np.mean([t['seconds'] for t in ts]):.0f} "
                     f"({np.mean([t['s_per_step'] for t in ts]):.3f} s/step) |")
    lines += [f"| {k} | {v:.0f} |" for k, v in (extra_seconds or {}).items()]
    total = sum(sum(r.get("seconds") or 0 for r in rs) for rs in results.values()) + sum(
        t["seconds"] for t in translators)
    lines += ["", f"Compute recorded for these results (arms + translators, all seeds): {total / 60:.1f} min; this "
              f"invocation: {st.wall() / 60:.1f} min (cached arms and translators are not retrained).", "",
              H.machine_line(m), "", f"Command: `{m['command']}`", ""]
    return lines


def quick_banner(st: H.Study) -> list[str]:
    return ["**QUICK SMOKE TEST: a few steps, 2 seeds. These numbers are not results.**", ""] if st.quick else []
