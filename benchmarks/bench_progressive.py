"""Progressive growing vs training at full resolution throughout, at equal CPU time: does it help a cGAN at 64 px?

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_progressive.py [--minutes 10] [--seeds 0 1 2]
    .venv/bin/python benchmarks/bench_progressive.py --quick     # smoke run: tiny nets, seconds per run

Data (``../shared/data``), 64 px RGB (shorter side resized, center crop): the Multi-class Weather Dataset photos
(cloudy / rain / shine / sunrise; its own train split trains, its test split is the held-out reference) and the
driving frames, two classes: the 199 clear nuScenes frames and the 283 unique DAWN fog photos (15% of each held out,
stratified, seed 0). Generators ``dcgan`` and ``style`` with the library's default ``CGANConfig`` (hinge loss,
spectral-norm projection D, DiffAugment, EMA), per seed and data set two runs of **the same CPU time** (one torch
thread, ``--minutes`` of training each):

* ``full``: the usual run, 64 px from the first step;
* ``progressive``: ``CGANConfig.progressive``, growing from ``--start`` px (8) with equal fade and stable phases
  of ``k`` steps at each resolution, then at 64 px for the rest of the budget.

Step counts come from a calibration (cached per data set and generator): the CPU seconds per step of every stage,
measured on a fresh recipe (``time.process_time``, one thread). ``full`` runs ``budget / t(64 px)`` steps; the
progressive run's ``k`` is chosen so that growing to 64 px takes ``--grow-fraction`` (0.5) of the budget and the
remainder runs at 64 px. The measured CPU and wall seconds of every run are reported next to the plan, so the
equal-time premise can be checked. Samples (as many as training images, the real class counts) are scored against
the training images in the feature space of a SmallCNN trained on that data set's training split (seed 0, early
stopping on the held-out split; one encoder per data set, so every arm and seed is scored in the same space):
FID, KID, precision / recall, density / coverage; the held-out real images give the reference values. Paired
differences ``progressive - full`` by seed.

Every run is cached by a hash of its full configuration (``synthaug.study.ResultCache``: results in
``benchmarks/results/cache/``, checkpoints and models under ``runs/studies/``; a killed run resumes from its
checkpoint, but its timing then covers the resumed part only and is flagged). Writes
``benchmarks/results/progressive.{md,json,png}`` and ``progressive_samples.png``, and study ``progressive`` in
headline.json. Cost: 2 data sets x 2 generators x 2 arms x seeds x ``--minutes`` (24 runs, 4 h at the defaults),
plus the calibration (about a minute per data set and generator) and two encoders.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from synthaug.eval.stats import mean_ci, paired_test  # noqa: E402
from synthaug.study import direction  # noqa: E402

STEM = "progressive"
VERSION = 1  # bump when a change of code (not of settings) must invalidate cached runs
DATASETS = ("weather", "driving")
ARCHS = ("dcgan", "style")
ARMS = ("full", "progressive")
METRICS = ("fid", "kid_mean", "precision", "recall", "density", "coverage")
LOWER_IS_BETTER = {"fid", "kid_mean"}
FULL = dict(size=64, minutes=10.0, seeds=[0, 1, 2], start=8, grow_fraction=0.5, batch_size=64, g_kwargs={},
            d_kwargs={}, max_per_class=None, encoder=dict(max_steps=1500, width=32), calibration=(3, 8))
TINY = dict(base_channels=4, max_channels=16)
QUICK = dict(FULL, minutes=0.01, seeds=[0, 1], batch_size=8, g_kwargs=dict(TINY, z_dim=8), d_kwargs=dict(TINY),
             max_per_class=12, encoder=dict(max_steps=6, width=4), calibration=(1, 2))


# --- data ------------------------------------------------------------------------------------------------------
def load(cfg: dict) -> dict[str, dict]:
    """``{data set: {"train", "val"}}``: ImageDatasets at ``cfg["size"]`` px, RGB."""
    from synthaug.data import ImageDataset, load_image_dir, load_image_folder, stratified_indices

    size = cfg["size"]
    weather = H.DATA / "weather" / "mwd"
    classes = ["cloudy", "rain", "shine", "sunrise"]
    out = {"weather": {"train": load_image_folder(weather / "train", size=size, class_names=classes),
                       "val": load_image_folder(weather / "test", size=size, class_names=classes)}}
    clear = load_image_dir(H.DATA / "driving" / "clear_nuscenes" / "images", size=size, channels=3)
    fog_dir = H.DATA / "driving" / "fog_dawn"
    unique = [Path(s.strip()).name for s in (fog_dir / "unique_images.txt").read_text().splitlines() if s.strip()]
    fog = load_image_dir(fog_dir / "images", size=size, channels=3, files=unique)
    both = ImageDataset(torch.cat([clear.images, fog.images]),
                        torch.tensor([0] * len(clear) + [1] * len(fog), dtype=torch.int64), ["clear", "fog"],
                        name="driving clear + fog")
    val = stratified_indices(both.labels, fraction=0.15, seed=0)
    out["driving"] = {"train": both.subset(np.setdiff1d(np.arange(len(both)), val)), "val": both.subset(val)}
    if cfg["max_per_class"]:
        for d in out.values():
            d["train"] = d["train"].subsample(n_per_class=cfg["max_per_class"], seed=0)
            d["val"] = d["val"].subsample(n_per_class=min(cfg["max_per_class"], 4), seed=0)
    return out


# --- runs ------------------------------------------------------------------------------------------------------
def cgan_config(cfg: dict, arch: str, progressive: dict | None = None):
    from synthaug.train import CGANConfig

    return CGANConfig(generator=arch, batch_size=cfg["batch_size"], g_kwargs=dict(cfg["g_kwargs"]),
                      d_kwargs=dict(cfg["d_kwargs"]), progressive=progressive)


def settings(config) -> dict:
    """A CGANConfig as its cache key: the fields that are set (None = off is left out)."""
    return {k: v for k, v in asdict(config).items() if v is not None}


def calibrate(cfg: dict, name: str, arch: str, train, cache: H.ResultCache) -> dict:
    """CPU seconds per step at 64 px and at every stage of the progressive schedule (cached)."""
    from synthaug.train import CGANRecipe
    from synthaug.train.progressive import ProgressiveSchedule

    warmup, n = cfg["calibration"]
    key = {"benchmark": STEM, "version": VERSION, "data": name, "n_train": len(train), "arch": arch,
           "size": cfg["size"], "start": cfg["start"], "cgan": settings(cgan_config(cfg, arch)),
           "warmup": warmup, "timed": n, "threads": torch.get_num_threads()}

    def timed(recipe, first: int) -> float:
        for s in range(first, first + warmup):
            recipe.train_step(s)
        t0 = time.process_time()
        for s in range(first + warmup, first + warmup + n):
            recipe.train_step(s)
        return (time.process_time() - t0) / n

    def compute() -> dict:
        period = warmup + n  # one stage per period: stable, then fade (alpha stays small, the cost is the same)
        sched = ProgressiveSchedule(cfg["size"], start=cfg["start"], fade_steps=period, stable_steps=period)
        out = {"full": timed(CGANRecipe(train, cgan_config(cfg, arch), device="cpu"), 0), "stable": {}, "fade": {}}
        for k, r in enumerate(sched.resolutions[:-1]):
            recipe = CGANRecipe(train, cgan_config(cfg, arch, sched.options), device="cpu")
            out["stable"][str(r)] = timed(recipe, 2 * k * period)
            out["fade"][str(sched.resolutions[k + 1])] = timed(recipe, (2 * k + 1) * period)
        return out

    return cache.result("progressive_calibration", key, compute)


def plan(cfg: dict, calib: dict) -> dict:
    """Step counts of both arms for the same CPU budget, from the calibration."""
    from synthaug.nets.layers import grow_resolutions

    budget = cfg["minutes"] * 60
    grown = [r for r in grow_resolutions(cfg["size"]) if r >= cfg["start"]]
    t_full = calib["full"]
    per_k = (calib["stable"][str(grown[0])] + sum(calib["fade"][str(r)] for r in grown[1:])
             + sum(calib["stable"][str(r)] for r in grown[1:-1]))  # CPU seconds of one step of every phase
    k = max(1, int(cfg["grow_fraction"] * budget / per_k))
    to_full = (len(grown) - 1) * 2 * k
    rest = max(0, int((budget - k * per_k) / t_full))
    return {"budget_s": budget, "full_steps": max(1, int(budget / t_full)),
            "progressive": {"start": cfg["start"], "fade_steps": k, "stable_steps": k},
            "progressive_steps": to_full + rest, "progressive_steps_to_full": to_full,
            "planned_cpu_s": {"full": max(1, int(budget / t_full)) * t_full, "progressive": k * per_k + rest * t_full}}


def run(cfg: dict, name: str, arch: str, arm: str, seed: int, d: dict, p: dict, encoder, cache: H.ResultCache) -> dict:
    """Train (or resume) one generator, sample and score it; cached by its full configuration."""
    from synthaug.eval import distribution_metrics
    from synthaug.models import GeneratorModel
    from synthaug.train import CGANRecipe, Trainer

    train = d["train"]
    config = cgan_config(cfg, arch, p["progressive"] if arm == "progressive" else None)
    steps = p["progressive_steps"] if arm == "progressive" else p["full_steps"]
    key = {"benchmark": STEM, "version": VERSION, "data": name, "n_train": len(train), "size": cfg["size"],
           "arch": arch, "arm": arm, "seed": seed, "minutes": cfg["minutes"], "steps": steps,
           "cgan": settings(config), "encoder": encoder_key(cfg, name, d)}

    def compute() -> dict:
        out_dir = cache.directory("progressive_runs", key)
        resumed = (out_dir / "checkpoints" / "latest.json").is_file()
        recipe = CGANRecipe(train, config, device="cpu", seed=seed)
        c0, w0 = time.process_time(), time.perf_counter()
        res = Trainer(recipe, out_dir, steps, log_every=max(1, steps // 50), sample_every=steps,
                      ckpt_every=max(1, steps // 4), progress=False).fit()
        cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - w0
        if res.interrupted or res.model_dir is None:
            raise SystemExit(f"{name} {arch} {arm} seed {seed}: interrupted at step {res.step}; rerun to resume")
        model = GeneratorModel.from_pretrained(res.model_dir, device="cpu")
        fake, _ = model.sample(len(train), labels=train.labels, seed=10_000 + seed)
        return H.to_jsonable({"data": name, "arch": arch, "arm": arm, "seed": seed, "steps": res.step,
                              "train_cpu_s": cpu_s, "train_wall_s": wall_s, "resumed": resumed,
                              "model_key": H.config_hash(key), "last_losses": res.last_metrics,
                              **distribution_metrics(train.images, fake, encoder(), seed=seed)})

    r = cache.result(STEM, key, compute)
    print(f"{name:8s} {arch:5s} {arm:11s} seed {seed}: {r['steps']} steps, {r['train_cpu_s']:.0f} CPU s "
          f"({r['train_wall_s']:.0f} s wall), FID {r['fid']:.3f}, KID {r['kid_mean']:.4f}"
          f"{' (cached)' if r.get('cached') else ''}", flush=True)
    return r


def encoder_key(cfg: dict, name: str, d: dict) -> dict:
    return {"data": name, "n_train": len(d["train"]), "n_val": len(d["val"]), "size": cfg["size"], "seed": 0,
            **cfg["encoder"]}


def lazy_encoder(cfg: dict, d: dict):
    """The data set's feature encoder, trained on first use only (a report of cached runs trains none)."""
    from synthaug.eval import train_feature_encoder

    box = []

    def get():
        if not box:
            box.append(train_feature_encoder(d["train"], val_ds=d["val"], max_steps=cfg["encoder"]["max_steps"],
                                             width=cfg["encoder"]["width"], seed=0, device="cpu"))
        return box[0]

    return get


def reference(cfg: dict, name: str, d: dict, encoder, cache: H.ResultCache) -> dict:
    """The held-out real images scored like the samples: what a perfect generator would reach."""
    from synthaug.eval import distribution_metrics

    return cache.result("progressive_reference", encoder_key(cfg, name, d),
                        lambda: H.to_jsonable(distribution_metrics(d["train"].images, d["val"].images, encoder())))


# --- summary, report ------------------------------------------------------------------------------------------
def summarise(rows: list[dict]) -> tuple[dict, list[dict]]:
    """Per (data, arch, arm) mean / CI of every metric and of the steps and times; paired ``progressive - full``
    differences by seed; the headline records."""
    summary, records = {}, []
    for name in DATASETS:
        for arch in ARCHS:
            by = {a: sorted((r for r in rows if (r["data"], r["arch"], r["arm"]) == (name, arch, a)),
                            key=lambda r: r["seed"]) for a in ARMS}
            if not by["full"] or [r["seed"] for r in by["full"]] != [r["seed"] for r in by["progressive"]]:
                continue
            for a, rs in by.items():
                for m in (*METRICS, "steps", "train_cpu_s", "train_wall_s"):
                    summary[f"{name}/{arch}/{a}/{m}"] = mean_ci([r[m] for r in rs])
            for m in METRICS:
                diff = paired_test([r[m] for r in by["progressive"]], [r[m] for r in by["full"]]) \
                    if len(by["full"]) > 1 else None
                summary[f"{name}/{arch}/diff/{m}"] = diff
                if m in ("fid", "kid_mean", "precision", "recall"):
                    base = f"{name}/{arch}/full"
                    n = len(by["full"])
                    records.append(H.headline_record(STEM, base, None, m, summary[f"{base}/{m}"], None, n))
                    records.append(H.headline_record(STEM, f"{name}/{arch}/progressive", base, m,
                                                     summary[f"{name}/{arch}/progressive/{m}"], diff, n))
    return summary, records


def effect(summary: dict, name: str, arch: str, metric: str = "fid") -> str:
    """``helps`` / ``hurts`` (the paired interval excludes 0 in the metric's better / worse direction:
    :func:`synthaug.study.direction`, the one rule) or ``no distinguishable difference``; ``n/a`` without paired
    seeds."""
    t = summary.get(f"{name}/{arch}/diff/{metric}")
    if not t or t.get("lo") is None or np.isnan(t["lo"]):
        return "n/a"
    return {"better": "helps", "worse": "hurts"}.get(direction(t, higher_is_better=metric not in LOWER_IS_BETTER),
                                                     "no distinguishable difference")


def overall(summary: dict) -> str:
    """The report's plain answer, by FID (KID alongside)."""
    cells = [(n, a) for n in DATASETS for a in ARCHS if f"{n}/{a}/diff/fid" in summary]
    words = {c: effect(summary, *c) for c in cells}
    helps = [c for c in cells if words[c] == "helps"]
    hurts = [c for c in cells if words[c] == "hurts"]
    if not cells or all(w == "n/a" for w in words.values()):
        return "No paired comparison (one seed): nothing can be concluded; the default stays off."
    listing = "; ".join(f"{n} / {a}: {words[(n, a)]}" for n, a in cells)
    if len(helps) == len(cells):
        head = (f"Progressive growing helps: lower FID at equal CPU time in all {len(cells)} (data set, generator) "
                "cells.")
    elif not helps and not hurts:
        head = "Progressive growing does not help: no distinguishable FID difference at equal CPU time in any cell."
    elif not helps:
        head = f"Progressive growing does not help: it is worse in {len(hurts)} of {len(cells)} cells and never better."
    else:
        head = (f"Progressive growing does not help consistently: better in {len(helps)} of {len(cells)} cells, worse "
                f"in {len(hurts)}.")
    default = ("It stays optional and off by default (`CGANConfig.progressive=None`)" +
               ("; turning it on by default would need the same result on the other data sets the library is "
                "used on." if len(helps) == len(cells) else "."))
    return f"{head} By FID ({listing}). {default}"


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = [(n, a) for n in DATASETS for a in ARCHS if f"{n}/{a}/full/fid" in summary]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, m in zip(axes, ("fid", "kid_mean")):
        x = np.arange(len(cells))
        for i, arm in enumerate(ARMS):
            rows = [summary[f"{n}/{a}/{arm}/{m}"] for n, a in cells]
            mean = np.array([r["mean"] for r in rows])
            err = np.array([[r["mean"] - r["lo"], r["hi"] - r["mean"]] if not np.isnan(r["lo"]) else [0, 0]
                            for r in rows]).T
            ax.bar(x + (i - 0.5) * 0.38, mean, 0.38, yerr=err, capsize=3, label=arm)
        ax.set_xticks(x, [f"{n}\n{a}" for n, a in cells])
        ax.set_title(f"{m.split('_')[0].upper()}, mean [95% CI] over seeds (lower is better)", fontsize=10)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@torch.no_grad()
def sample_grid(rows: list[dict], data: dict, path: Path, cache: H.ResultCache) -> bool:
    """Real training images and 8 samples of each generator (smallest seed) per data set; False if no model is
    on disk (results cached on another machine)."""
    from synthaug.models import GeneratorModel
    from synthaug.utils import save_grid

    seed = min(r["seed"] for r in rows)
    tiles, labels = [], []
    for name, d in data.items():
        train = d["train"]
        idx = torch.cat([torch.nonzero(train.labels == c).flatten()[:8 // train.num_classes or 1]
                         for c in range(train.num_classes)])[:8]
        tiles.append(train.images[idx])
        labels.append(f"{name} real")
        for arch in ARCHS:
            for arm in ARMS:
                r = next((r for r in rows if (r["data"], r["arch"], r["arm"], r["seed"]) == (name, arch, arm, seed)),
                         None)
                model_dir = None if r is None else cache.models_root / "progressive_runs" / r["model_key"] / "model"
                if model_dir is None or not (model_dir / "config.json").is_file():
                    continue
                model = GeneratorModel.from_pretrained(model_dir, device="cpu")
                tiles.append(model.sample(8, labels=train.labels[idx], seed=0)[0])
                labels.append(f"{name} {arch} {arm}")
    if len(tiles) == len(data):
        return False
    save_grid(torch.cat(tiles), path, nrow=8, row_labels=labels,
              title=f"real images and samples at equal CPU time (seed {seed}), classes as the real row")
    return True


def write_markdown(path: Path, res: dict) -> None:
    cfg, s, f = res["config"], res["summary"], H.fmt_interval
    L = H.report_head("Progressive growing vs full-resolution training at equal CPU time (cGAN, 64 px)",
                      res, "tiny nets, seconds of training, few images")
    L += [
          "", f"Data (train / held-out images, {cfg['size']} px): "
          + "; ".join(f"{k} {v['train']} / {v['val']} ({', '.join(v['classes'])})" for k, v in res["data"].items())
          + f". Seeds {res['seeds']}. Budget {cfg['minutes']:g} min of CPU time per run (one torch thread), default "
          f"`CGANConfig` (batch {cfg['batch_size']}). `progressive` grows from {cfg['start']} px: equal fade and "
          f"stable phases of k steps per resolution, planned to reach 64 px after {cfg['grow_fraction']:.0%} of the "
          "budget, then 64 px. Step counts are planned from a per-stage calibration of CPU seconds per step; the "
          "measured times are in the table. Samples: as many as training images, the real class counts; scored "
          "against the training images in the features of a SmallCNN trained on the training split "
          f"({cfg['encoder']['max_steps']} steps, early stopping on the held-out split). Mean [95% CI] over seeds.",
          "", "## Plan (from the calibration)", "",
          "| data | generator | s/step at 64 px | full: steps | progressive: k, steps to 64 px, total steps |",
          "|---|---|---:|---:|---|"]
    for key, p in res["plans"].items():
        name, arch = key.split("/")
        L.append(f"| {name} | {arch} | {res['calibration'][key]['full']:.3f} | {p['full_steps']} | "
                 f"{p['progressive']['fade_steps']}, {p['progressive_steps_to_full']}, {p['progressive_steps']} |")
    L += ["", "## Results", "",
          "| data | generator | arm | steps | CPU s | wall s | FID | KID | precision | recall |",
          "|---|---|---|---:|---:|---:|---|---|---|---|"]
    for name in DATASETS:
        for arch in ARCHS:
            for arm in ARMS:
                k = f"{name}/{arch}/{arm}"
                if f"{k}/fid" not in s:
                    continue
                L.append(f"| {name} | {arch} | {arm} | {s[k + '/steps']['mean']:.0f} | "
                         f"{s[k + '/train_cpu_s']['mean']:.0f} | {s[k + '/train_wall_s']['mean']:.0f} | "
                         + " | ".join(f(s[f'{k}/{m}']['mean'], s[f'{k}/{m}']['lo'], s[f'{k}/{m}']['hi'],
                                        4 if m == "kid_mean" else 3) for m in METRICS[:4]) + " |")
        ref = res["reference"].get(name)
        if ref:
            L.append(f"| {name} | held-out real images (reference) | | | | | {ref['fid']:.3f} | "
                     f"{ref['kid_mean']:.4f} | {ref['precision']:.3f} | {ref['recall']:.3f} |")
    L += ["", "## Progressive - full, paired by seed", "",
          "| data | generator | FID | KID | precision | recall | verdict (FID) |", "|---|---|---|---|---|---|---|"]
    for name in DATASETS:
        for arch in ARCHS:
            if f"{name}/{arch}/diff/fid" not in s:
                continue
            diffs = {m: s[f"{name}/{arch}/diff/{m}"] for m in METRICS[:4]}
            cells = [H.fmt_diff(t, 4 if m == "kid_mean" else 3) if t else "n/a (one seed)" for m, t in diffs.items()]
            L.append(f"| {name} | {arch} | " + " | ".join(cells) + f" | {effect(s, name, arch)} |")
    resumed = [r for r in res["rows"] if r.get("resumed")]
    L += ["", f"**Verdict.** {res['verdict']}", "",
          f"Measured CPU time, progressive / full (mean over runs): {res['cpu_ratio']:.2f}."
          + (f" {len(resumed)} run(s) were resumed after a stop: their times cover the resumed part only."
             if resumed else ""), ""]
    if res["samples"]:
        L += [f"![samples]({STEM}_samples.png)", ""]
    L += [f"![FID and KID]({STEM}.png)", ""]
    path.write_text("\n".join(L))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    H.add_quick_arguments(ap)
    ap.add_argument("--minutes", type=float, default=None, help="CPU minutes of training per run (default 10)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--quick: 0 1)")
    ap.add_argument("--start", type=int, default=None, help="resolution the progressive arm starts at (default 8)")
    ap.add_argument("--grow-fraction", type=float, default=None,
                    help="share of the budget the progressive arm spends growing to 64 px (default 0.5)")
    ap.add_argument("--data", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--no-headline", action="store_true")
    ap.add_argument("--runs-dir", type=Path, default=None,
                    help="models (default runs/studies), or everything with --quick (runs/studies_quick/progressive)")
    args = ap.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    for k in ("minutes", "seeds", "start", "grow_fraction"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    if not 0 < cfg["grow_fraction"] < 1:
        raise SystemExit(f"--grow-fraction: expected a value in (0, 1), found {cfg['grow_fraction']}")
    torch.set_num_threads(1)
    out = H.report_dir(args)
    cache = (H.ResultCache(args.runs_dir or H.QUICK_DIR / STEM) if args.quick
             else H.ResultCache(H.RESULT_CACHE, args.runs_dir or H.RUNS))
    t0, machine = time.perf_counter(), H.machine()
    data = {k: v for k, v in load(cfg).items() if k in args.data}
    rows, plans, calibration, refs = [], {}, {}, {}
    for name, d in data.items():
        encoder = lazy_encoder(cfg, d)
        refs[name] = reference(cfg, name, d, encoder, cache)
        for arch in ARCHS:
            calibration[f"{name}/{arch}"] = calib = calibrate(cfg, name, arch, d["train"], cache)
            plans[f"{name}/{arch}"] = p = plan(cfg, calib)
            for seed in cfg["seeds"]:
                for arm in ARMS:
                    rows.append(run(cfg, name, arch, arm, seed, d, p, encoder, cache))
    summary, records = summarise(rows)
    full_cpu = {(r["data"], r["arch"], r["seed"]): r["train_cpu_s"] for r in rows if r["arm"] == "full"}
    ratios = [r["train_cpu_s"] / full_cpu[(r["data"], r["arch"], r["seed"])] for r in rows if r["arm"] == "progressive"]
    res = {"quick": args.quick, "config": cfg, "seeds": cfg["seeds"], "rows": rows, "summary": summary,
           "plans": plans, "calibration": calibration, "reference": refs, "headline": records,
           "verdict": overall(summary), "cpu_ratio": float(np.mean(ratios)), "machine": machine,
           "data": {k: {"train": len(v["train"]), "val": len(v["val"]), "classes": v["train"].class_names}
                    for k, v in data.items()},
           "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/bench_progressive.py",
                                                        *(sys.argv[1:] if argv is None else map(str, argv))])}
    res["samples"] = sample_grid(rows, data, out / f"{STEM}_samples.png", cache)
    plot(summary, out / f"{STEM}.png")
    res["wall_s"] = time.perf_counter() - t0
    H.write_json(out / f"{STEM}.json", res)
    write_markdown(out / f"{STEM}.md", res)
    if not args.quick and not args.no_headline:
        H.update_headline(STEM, records)
    print(f"{res['verdict']}\nwrote {out / STEM}.md (.json, .png) in {res['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
