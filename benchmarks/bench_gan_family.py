"""Generator families at equal CPU time: dcgan, style and biggan on BreastMNIST and PneumoniaMNIST.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_gan_family.py [--minutes 10] [--seeds 0 1 2]
    .venv/bin/python benchmarks/bench_gan_family.py --quick                 # smoke run: seconds per generator

Data: the ``breast`` (BreastMNIST, the whole training split) and ``pneumonia10`` (PneumoniaMNIST, a stratified
10% of the training split per seed) settings of the medical study (``benchmarks/studies/medical.py``,
``load_splits``). Each generator trains with the library's defaults for it (``CGANConfig(generator=...)``: the
same projection discriminator, hinge loss, DiffAugment and EMA; ``biggan`` with its default orthogonal
regularisation 1e-4) for the same CPU time on one thread: the seconds per step of the three are measured once,
interleaved, on this machine (cached, so a rerun trains the same number of steps), and each gets
``budget / seconds per step`` steps. Per (data, generator, seed): as many samples as real training images with
the real class counts; in the feature space of a SmallCNN trained on the seed's real training images (early
stopping on val): FID, KID, precision / recall, density / coverage; the Classification Accuracy Score
(classifier trained on synthetic images only, step chosen on real val, real test split), next to the same
classifier trained on the real images; the pixel memorization audit. Differences to dcgan are paired by seed.

Every trained generator (``runs/studies/gan_family_models/``) and every result (``benchmarks/results/cache/``) is
cached under a hash of its full configuration (``synthaug.study.ResultCache``), so a rerun resumes. Writes
``gan_family.{md,json,png}``, one sample grid per data set (``gan_family_<data>_samples.png``) and, for full runs
of at least 3 seeds, the records of study ``gan_family`` in headline.json. ``--quick`` writes under
runs/studies_quick (or ``--out`` / ``--runs-dir``) and never touches headline.json.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from benchmarks.studies.medical import STUDIES, classifier_settings, load_splits  # noqa: E402
from synthaug.eval import (cas, distribution_metrics, mean_ci, memorization_audit, run_arm,  # noqa: E402
                           train_feature_encoder)
from synthaug.eval.stats import paired_test  # noqa: E402
from synthaug.train import CGANConfig  # noqa: E402

STEM = "gan_family"
HARNESS_VERSION = 1  # bump when a code change must invalidate cached generators and results
DATA = {"breast": STUDIES["breast"], "pneumonia": STUDIES["pneumonia10"]}
GENERATORS = ("dcgan", "style", "biggan")
REFERENCE = "dcgan"
FULL = dict(minutes=10.0, seeds=[0, 1, 2], encoder_steps=1500, calibration=dict(warmup=2, rounds=5, steps=4))
QUICK = dict(minutes=0.01, seeds=[0, 1], encoder_steps=10, calibration=dict(warmup=1, rounds=2, steps=1))
QUICK_PER_CLASS = 24
DIST_KEYS = ("fid", "kid_mean", "precision", "recall", "density", "coverage")
METRICS = ("fid", "kid_mean", "precision", "recall", "cas_auc", "cas_balanced_accuracy")
LOWER_IS_BETTER = {"fid", "kid_mean"}


def gan_config(generator: str) -> CGANConfig:
    """A generator family at the library's defaults (everything else as the default cGAN)."""
    return CGANConfig(generator=generator)


def settings(cfg: CGANConfig) -> dict:
    """The config as a cache-key dict; None entries dropped (a new optional field leaves old keys valid)."""
    return {k: v for k, v in cfg.__dict__.items() if v is not None}


# --- equal CPU time --------------------------------------------------------------------------------------------
def calibrate(cache: H.ResultCache, train, generators, plan: dict, threads: int) -> dict:
    """Seconds per training step of each generator on this machine, measured interleaved (round-robin rounds of a
    few steps each, median over rounds) so a change of load hits all alike; cached, so reruns keep their steps."""
    from synthaug.train import CGANRecipe

    key = {"benchmark": "gan_family_calibration", "harness": HARNESS_VERSION, "cpu": H.cpu_model(),
           "threads": threads, "image": list(train.images.shape[1:]), "plan": plan,
           "generators": {g: settings(gan_config(g)) for g in generators}}

    def compute() -> dict:
        recipes = {g: CGANRecipe(train, gan_config(g), device="cpu", seed=0) for g in generators}
        step = 0
        for r in recipes.values():
            for _ in range(plan["warmup"]):
                r.train_step(step)
                step += 1
        times = {g: [] for g in generators}
        for _ in range(plan["rounds"]):
            for g, r in recipes.items():
                t0 = time.perf_counter()
                for _ in range(plan["steps"]):
                    r.train_step(step)
                    step += 1
                times[g].append((time.perf_counter() - t0) / plan["steps"])
        params = {g: sum(p.numel() for p in r.G.parameters()) for g, r in recipes.items()}
        return {"s_per_step": {g: sorted(t)[len(t) // 2] for g, t in times.items()}, "rounds": times,
                "g_params": params, "load_average": H.machine()["load_average"]}

    return cache.result("gan_family_calibration", key, compute)


# --- one (data set, generator, seed) -----------------------------------------------------------------------------
def train_generator(cache: H.ResultCache, train, gen_cfg: dict):
    return H.trained_cgan(cache, "gan_family_models", gen_cfg, train, gan_config(gen_cfg["generator"]),
                          gen_cfg["seed"], gen_cfg["steps"])


def generator_config(data: str, generator: str, seed: int, n_train: int, steps: int, calib: dict,
                     minutes: float) -> dict:
    """The full configuration of one trained generator (its cache key)."""
    return {"benchmark": STEM, "harness": HARNESS_VERSION, "study_data": {k: DATA[data][k] for k in ("data",
            "fraction")}, "seed": seed, "n_train": n_train, "generator": generator,
            "cgan": settings(gan_config(generator)), "steps": steps, "budget_minutes": minutes,
            "s_per_step_calibrated": calib["s_per_step"][generator]}


def run_one(cache: H.ResultCache, data: str, generator: str, seed: int, splits, steps: int, calib: dict, meta: dict,
            encoder) -> dict:
    """Train (or reuse) one generator and evaluate its samples; the record is cached by its full configuration."""
    from synthaug.augment import SyntheticDataset

    train, val, test = splits
    gen_cfg = generator_config(data, generator, seed, len(train), steps, calib, meta["minutes"])
    rec_cfg = {"benchmark": STEM, "harness": HARNESS_VERSION, "generator": H.config_hash(gen_cfg),
               "generator_config": gen_cfg, "classifier": meta["classifier"], "encoder_steps": meta["encoder_steps"],
               "pool": "real class counts, SyntheticDataset seed 10000 + seed"}

    def compute() -> dict:
        t0 = time.perf_counter()
        gen, info = train_generator(cache, train, gen_cfg)
        counts = torch.bincount(train.labels, minlength=train.num_classes)
        pool = SyntheticDataset(gen, per_class=dict(enumerate(counts.tolist())), seed=10_000 + seed)
        dist = distribution_metrics(train.images, pool.images, encoder(), seed=seed)
        c = cas(pool.images, pool.labels, val, test, seed=seed, device="cpu", **meta["classifier"])
        return H.to_jsonable({
            "data": data, "generator": generator, "seed": seed, "n_train": len(train), "steps": steps,
            "model_key": H.config_hash(gen_cfg),
            "train_seconds": info.get("seconds"), "g_params": calib["g_params"][generator],
            **{k: dist[k] for k in DIST_KEYS}, "cas_auc": c["cas_auc"],
            "cas_balanced_accuracy": c["cas_balanced_accuracy"], "cas_best_in_last_10pct": c["best_in_last_10pct"],
            "memorization_flagged": memorization_audit(pool.images, train, space="pixel")["summary"][
                "fraction_flagged"],
            "eval_seconds": round(time.perf_counter() - t0 - (info.get("seconds") or 0), 1)})

    return cache.result(STEM, rec_cfg, compute)


def real_reference(cache: H.ResultCache, data: str, seed: int, splits, meta: dict) -> dict:
    """The CAS classifier trained on the real training images (the scale CAS is read against)."""
    train, val, test = splits
    cfg = {"benchmark": STEM, "harness": HARNESS_VERSION, "study_data": DATA[data], "seed": seed,
           "n_train": len(train), "classifier": meta["classifier"]}
    return cache.result(f"{STEM}_real", cfg, lambda: H.to_jsonable(
        run_arm("real_only", train, val, test, seed=seed, device="cpu", **meta["classifier"])))


# --- report --------------------------------------------------------------------------------------------------------
def summarise(rows: list[dict], generators) -> tuple[dict, list[dict]]:
    """Mean [CI] per (data, generator, metric), paired differences to dcgan by seed, and headline records."""
    summary, records = {}, []
    for data in DATA:
        by = {g: sorted((r for r in rows if r["data"] == data and r["generator"] == g), key=lambda r: r["seed"])
              for g in generators}
        if not any(by.values()):
            continue
        for m in METRICS:
            for g, rs in by.items():
                if not rs:
                    continue
                vals = [r[m] for r in rs]
                summary[f"{data}/{g}/{m}"] = row = mean_ci(vals)
                diff = None
                ref = by.get(REFERENCE) or []
                if g != REFERENCE and ref and [r["seed"] for r in ref] == [r["seed"] for r in rs] and len(rs) > 1:
                    diff = paired_test(vals, [r[m] for r in ref])
                    summary[f"{data}/{g}/{m}/vs_{REFERENCE}"] = diff
                records.append(H.headline_record(STEM, f"{data}/{g}", None if g == REFERENCE else
                                                 f"{data}/{REFERENCE}", m, row, diff, len(rs)))
    return summary, records


def pictures(rows: list[dict], splits: dict, out: Path, cache: H.ResultCache, generators, steps: dict) -> list[str]:
    """Per data set: real images and each generator's samples, one row per (source, class), first seed."""
    from synthaug.models import GeneratorModel
    from synthaug.utils import save_grid

    written = []
    for data, by_seed in splits.items():
        seed = min(by_seed)
        train = by_seed[seed][0]
        imgs, labels = [], []
        for k, name in enumerate(train.class_names):
            imgs.append(train.images[train.labels == k][:8])
            labels.append(f"real {name}")
            for g in generators:
                r = next((r for r in rows if (r["data"], r["generator"], r["seed"]) == (data, g, seed)), None)
                if r is None:
                    continue
                model_dir = cache.models_root / "gan_family_models" / r["model_key"] / "model"
                x, _ = GeneratorModel.from_pretrained(model_dir, device="cpu").sample(8, labels=k, seed=seed)
                imgs.append(x)
                labels.append(f"{g} {name}")
        name = f"{STEM}_{data}_samples.png"
        save_grid(torch.cat(imgs), out / name, nrow=8, row_labels=labels,
                  title=f"{data}: real vs samples at equal CPU time (seed {seed}; steps "
                        + ", ".join(f"{g} {steps[g]}" for g in generators) + ")")
        written.append(name)
    return written


def plot(summary: dict, generators, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ("fid", "recall", "cas_auc")
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 3.4))
    for ax, m in zip(axes, shown):
        for i, data in enumerate(DATA):
            xs, ys, err = [], [], []
            for j, g in enumerate(generators):
                s = summary.get(f"{data}/{g}/{m}")
                if s is None:
                    continue
                xs.append(j + (i - 0.5) * 0.3)
                ys.append(s["mean"])
                half = (s["hi"] - s["lo"]) / 2 if s["n"] > 1 else 0.0
                err.append(half)
            ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3, label=data)
        ax.set_xticks(range(len(generators)), generators)
        ax.set_title(m + (" (lower is better)" if m in LOWER_IS_BETTER else ""))
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("generators at equal CPU time: mean and 95% CI over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(path: Path, res: dict) -> None:
    s, gens = res["summary"], res["generators"]
    cal = res["calibration"]
    L = H.report_head("Generator families at equal CPU time: dcgan, style, biggan",
                      res, "seconds of training per generator")
    L += [
          "", f"Budget: {res['minutes']:g} min of training per generator and seed on {res['threads']} thread(s); "
          "seconds per step measured interleaved on this machine (load average then "
          f"{cal.get('load_average')}): " + "; ".join(
              f"`{g}` {cal['s_per_step'][g]:.3f} s/step, {cal['g_params'][g]:,} G parameters -> "
              f"{res['steps'][g]} steps" for g in gens) + ". Realised training time per run (mean, checkpoints and "
          "sample grids included): " + "; ".join(
              f"`{g}` {sum(r['train_seconds'] or 0 for r in rows) / len(rows):.0f} s"
              for g in gens if (rows := [r for r in res["rows"] if r["generator"] == g])) + ".", "",
          f"Seeds {res['seeds']}. Data: " + ", ".join(
              f"{d} ({DATA[d]['data']}, {100 * DATA[d]['fraction']:g}% of train)" for d in res["data"]) + ". "
          "Every generator at its library defaults (`CGANConfig(generator=...)`: the same projection "
          "discriminator, hinge loss, DiffAugment, EMA; biggan with orthogonal regularisation 1e-4). Samples: as many "
          "as real training images, real class counts. Features: a SmallCNN trained on the seed's real training "
          f"images ({res['encoder_steps']} steps, early stopping on val). CAS: `{res['classifier']['arch']}` trained "
          "on synthetic images only (step chosen on real val), scored on the real test split.", "",
          "| data | generator | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for data in res["data"]:
        for g in gens:
            cells = []
            for m in METRICS:
                r = s.get(f"{data}/{g}/{m}")
                cells.append("-" if r is None else H.fmt_interval(r["mean"], r["lo"], r["hi"], 3))
            L.append(f"| {data} | {g} | " + " | ".join(cells) + " |")
    L += ["", "Real-image reference for CAS (same classifier trained on the real training images): " + "; ".join(
        f"{d} test AUC {H.fmt_ci(r, 3)}" for d, r in res["real_reference"].items()) + ".", "",
          f"## Paired differences to `{REFERENCE}` (same seeds; FID / KID: negative is better)", "",
          "| data | generator | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for data in res["data"]:
        for g in gens:
            if g == REFERENCE:
                continue
            cells = [H.fmt_diff(s.get(f"{data}/{g}/{m}/vs_{REFERENCE}"), 3) if s.get(f"{data}/{g}/{m}/vs_{REFERENCE}")
                     else "n/a (fewer than 2 paired seeds)" for m in METRICS]
            L.append(f"| {data} | {g} | " + " | ".join(cells) + " |")
    mem = "; ".join(f"{d} {g} {sum(r['memorization_flagged'] for r in rows) / len(rows):.3f}"
                    for d in res["data"] for g in gens
                    if (rows := [r for r in res["rows"] if (r["data"], r["generator"]) == (d, g)]))
    L += ["", f"Memorization audit (pixel space; fraction of samples flagged as near copies, mean over seeds): "
              f"{mem}.", "",
          f"![{STEM}.png]({STEM}.png)", "", *(f"![{p}]({p})" for p in res["figures"]), ""]
    path.write_text("\n".join(L))


def _few(ds, per_class: int):
    """The first ``per_class`` images of each class of ``ds``."""
    idx = torch.cat([torch.nonzero(ds.labels == c).flatten()[:per_class] for c in range(ds.num_classes)])
    return ds.subset(idx.sort().values.numpy())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    H.add_quick_arguments(ap)
    ap.add_argument("--minutes", type=float, default=None,
                    help=f"training budget per generator and seed (default {FULL['minutes']:g}; --quick: "
                         f"{QUICK['minutes'] * 60:g} s)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 (--quick: 0 1)")
    ap.add_argument("--data", nargs="+", choices=list(DATA), default=list(DATA))
    ap.add_argument("--generators", nargs="+", choices=GENERATORS, default=list(GENERATORS))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: equal CPU time on one core)")
    ap.add_argument("--runs-dir", type=Path, default=None,
                    help="trained generators (default runs/studies), or everything with --quick (runs/studies_quick)")
    ap.add_argument("--no-headline", action="store_true")
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    minutes = plan["minutes"] if args.minutes is None else args.minutes
    if not minutes > 0:
        raise SystemExit(f"--minutes: expected a positive budget, found {minutes}")
    seeds = args.seeds or plan["seeds"]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds: expected distinct seeds, found {seeds}")
    generators = list(dict.fromkeys(args.generators))
    torch.set_num_threads(args.threads)
    out = H.report_dir(args)
    cache = (H.ResultCache(args.runs_dir or H.QUICK_DIR) if args.quick
             else H.ResultCache(H.RESULT_CACHE, args.runs_dir or H.RUNS))
    t0, machine = time.perf_counter(), H.machine()
    clf = classifier_settings("small_cnn", args.quick)
    meta = {"minutes": minutes, "classifier": clf, "encoder_steps": plan["encoder_steps"]}

    splits = {d: {s: load_splits(DATA[d], s) for s in seeds} for d in args.data}
    if args.quick:  # a smoke run: the first QUICK_PER_CLASS images of each class in every split
        splits = {d: {s: tuple(_few(x, QUICK_PER_CLASS) for x in sp) for s, sp in by_seed.items()}
                  for d, by_seed in splits.items()}
    first = splits[args.data[0]][seeds[0]][0]
    calib = calibrate(cache, first, generators, plan["calibration"], args.threads)
    steps = {g: max(1, int(minutes * 60 / calib["s_per_step"][g])) for g in generators}
    print(f"[{STEM}] s/step " + ", ".join(f"{g} {calib['s_per_step'][g]:.3f}" for g in generators)
          + f" -> steps {steps} for {minutes:g} min each", flush=True)

    rows, reference = [], {}
    for data in args.data:
        ref = []
        for seed in seeds:
            sp = splits[data][seed]
            memo = {}

            def encoder(sp=sp, seed=seed, memo=memo):
                if "enc" not in memo:
                    memo["enc"] = train_feature_encoder(sp[0], val_ds=sp[1], max_steps=plan["encoder_steps"],
                                                        seed=seed, device="cpu")
                return memo["enc"]

            for g in generators:
                r = run_one(cache, data, g, seed, sp, steps[g], calib, meta, encoder)
                rows.append(r)
                print(f"[{STEM}] {data} {g:6s} seed {seed}: FID {r['fid']:.3f} recall {r['recall']:.3f} "
                      f"CAS AUC {r['cas_auc']:.4f}{' (cached)' if r.get('cached') else ''}", flush=True)
            ref.append(real_reference(cache, data, seed, sp, meta)["test_auc"])
        reference[data] = mean_ci(ref)
    summary, records = summarise(rows, generators)
    figs = pictures(rows, splits, out, cache, generators, steps)
    plot(summary, generators, out / f"{STEM}.png")
    res = {"quick": args.quick, "minutes": minutes, "threads": args.threads, "seeds": seeds, "data": args.data,
           "generators": generators, "steps": steps, "calibration": calib, "classifier": clf,
           "encoder_steps": plan["encoder_steps"], "rows": rows, "summary": summary, "real_reference": reference,
           "headline": records, "figures": figs, "machine": machine, "wall_s": time.perf_counter() - t0,
           "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/bench_gan_family.py",
                                                        *(sys.argv[1:] if argv is None else map(str, argv))])}
    H.write_json(out / f"{STEM}.json", res)
    write_markdown(out / f"{STEM}.md", res)
    if not args.quick and not args.no_headline and len(seeds) >= 3:
        H.update_headline(STEM, records)
    print(f"[{STEM}] wrote {out / STEM}.md (.json, .png) in {res['wall_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
