"""The demo's generator: transposed-conv vs nearest + conv upsampling in the breast study's cGAN, paired by seed.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/demo_generator.py [--seeds 0 1 2 3 4] [--rounds 6] [--quick]

Issue 31 asked for better samples in ``make demo`` (one seed of the ``breast`` medical study): the 700-step cGAN's
samples were blotchy next to the real images. Per seed, on that seed's training split: the study's cGAN
(``benchmarks/studies/medical.py``, 700 steps) with the DCGAN generator's two upsampling layers, ``transpose``
(transposed 4x4 convolutions, the library's default) and ``nearest`` (nearest upsampling + 3x3 convolution); the
pool the study draws from each; both scored as the study scores its generators (:func:`synthaug.eval.
distribution_metrics` against the real training split: FID, KID, precision, recall, coverage), in the features of
one SmallCNN per seed trained on that split (1,500 steps, best validation step, as the study's
``generator_eval``). Differences are paired by seed, so they include generator variance. Cost: CPU-seconds per cGAN
step of each variant, ``--rounds`` interleaved blocks on one thread. Picture: seed ``seeds[0]``'s samples of both
next to real images.

The generators are the study's own (same cache key, under ``runs/studies/cgan``): the breast study reuses the
``nearest`` ones. Per-seed records are cached in ``benchmarks/results/cache/demo_generator``, so a rerun (or a run
with ``--seeds`` split across processes) resumes. Writes ``benchmarks/results/demo_generator.{md,json,png}`` and,
for 3 or more seeds, the records of study ``demo_generator`` in ``headline.json`` (not ``--no-headline``);
``--quick`` (2 seeds, a few steps of tiny nets) writes under ``runs/studies_quick/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from benchmarks.studies import medical as M  # noqa: E402

VARIANTS = ("transpose", "nearest")
METRICS = ("fid", "kid_mean", "precision", "recall", "coverage")
LOWER_IS_BETTER = ("fid", "kid_mean")
STEM = "demo_generator"


def study_config(variant: str, quick: bool) -> dict:
    """The breast study's settings (``--quick``: as its smoke run shrinks them) with the generator's upsampling
    ``variant``."""
    cfg = M.study_settings("breast", quick)
    return {**cfg, "cgan": M.merged_cgan(cfg.get("cgan", {}), {"g_kwargs": {"upsample": variant}})}


def run_seed(seed: int, quick: bool, cache: H.ResultCache) -> dict:
    """Both variants' generator metrics for ``seed`` (cached per seed)."""
    from synthaug.augment import SyntheticDataset
    from synthaug.augment.plan import synthetic_counts
    from synthaug.eval import distribution_metrics, train_feature_encoder

    cfgs = {v: study_config(v, quick) for v in VARIANTS}
    train, val, _ = M.load_splits(cfgs["nearest"], seed)
    gen_cfgs = {v: M.generator_config(c, seed, len(train)) for v, c in cfgs.items()}
    encoder_steps = M.QUICK["encoder_steps"] if quick else 1500
    key = {"benchmark": STEM, "harness": M.HARNESS_VERSION, "seed": seed, "encoder_steps": encoder_steps,
           "generators": {v: H.config_hash(g) for v, g in gen_cfgs.items()}}

    def compute() -> dict:
        labels = train.labels.numpy()
        need = np.max([synthetic_counts(labels, train.num_classes, ratio=r) for r in M.SHARES]
                      + [synthetic_counts(labels, train.num_classes, balance=True)], axis=0)  # the study's pool
        enc = train_feature_encoder(train, val_ds=val, max_steps=encoder_steps, seed=seed, device="cpu")
        out = {}
        for v, g in gen_cfgs.items():
            gen = M.train_generator(cache, train, g, seed)
            pool = SyntheticDataset(gen, per_class=dict(enumerate(need.tolist())), seed=10_000 + seed)
            out[v] = H.to_jsonable(distribution_metrics(train.images, pool.images, enc, seed=seed))
        return out

    r = cache.result(STEM, key, compute)
    print(f"[seed {seed}] " + "; ".join(f"{v}: FID {r[v]['fid']:.2f}, recall {r[v]['recall']:.3f}"
                                        for v in VARIANTS), flush=True)
    return r


def step_rates(rounds: int, quick: bool) -> dict[str, list[float]]:
    """cGAN steps per CPU-second of each variant, ``rounds`` interleaved blocks on one thread (BreastMNIST)."""
    from synthaug.data import load_breastmnist
    from synthaug.train import CGANConfig, CGANRecipe

    train = load_breastmnist("train")
    recipes = {v: CGANRecipe(train, CGANConfig(**study_config(v, quick)["cgan"]), device="cpu", seed=0,
                             progress=False) for v in VARIANTS}
    steps = {v: 0 for v in VARIANTS}

    def run(v: str, k: int) -> float:
        c0 = time.process_time()
        for _ in range(k):
            recipes[v].train_step(steps[v])
            steps[v] += 1
        return k / (time.process_time() - c0)

    for v in VARIANTS:  # warm-up
        run(v, 2)
    k = 2 if quick else 20
    rates = {v: [] for v in VARIANTS}
    for rnd in range(rounds):
        for v in VARIANTS if rnd % 2 == 0 else VARIANTS[::-1]:
            rates[v].append(run(v, k))
    return rates


def comparison_picture(seed: int, quick: bool, cache: H.ResultCache, path: Path) -> Path:
    """Real images and both variants' samples, 8 per class, for ``seed``."""
    from synthaug.utils import save_grid

    train = M.load_splits(study_config("nearest", quick), seed)[0]
    gens = {v: M.train_generator(cache, train, M.generator_config(study_config(v, quick), seed, len(train)), seed)
            for v in VARIANTS}
    rows, names = [], []
    for c, name in enumerate(train.class_names):
        rows.append(train.images[train.labels == c][:8])
        names.append(f"{name} real")
        for v, g in gens.items():
            rows.append(g.sample(8, labels=c, seed=seed + c)[0])
            names.append(f"{name} {v}")
    steps = study_config("nearest", quick)["gan_steps"]
    return save_grid(torch.cat(rows), path, nrow=8, row_labels=names, dpi=150,
                     title=f"BreastMNIST seed {seed}: real vs cGAN samples ({steps} steps) by upsampling")


def main(argv=None) -> int:
    from synthaug.eval import mean_ci, paired_test

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 3 4 (--quick: 0 1)")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved timing blocks per variant (0: no timing)")
    ap.add_argument("--records-only", action="store_true",
                    help="compute and cache the seeds' records, write no report (for runs split across processes)")
    ap.add_argument("--no-headline", action="store_true", help="do not write benchmarks/results/headline.json")
    H.add_quick_arguments(ap)
    args = ap.parse_args(argv)
    if args.rounds == 1 or args.rounds < 0:
        ap.error(f"--rounds: expected 0 (no timing) or at least 2 (a paired interval), found {args.rounds}")
    t0 = time.time()
    torch.set_num_threads(1)
    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2, 3, 4])
    out_dir = H.report_dir(args)
    cache = H.ResultCache(out_dir / "cache") if args.quick else H.ResultCache(H.RESULT_CACHE, H.RUNS)
    per_seed = {s: run_seed(s, args.quick, cache) for s in seeds}
    if args.records_only:
        return 0
    picture = comparison_picture(seeds[0], args.quick, cache, out_dir / f"{STEM}.png")
    rates = step_rates(args.rounds, args.quick) if args.rounds else {}

    rows, stats, records = [], {}, []
    for m in METRICS:
        vals = {v: [per_seed[s][v][m] for s in seeds] for v in VARIANTS}
        d = paired_test(vals["nearest"], vals["transpose"]) if len(seeds) > 1 else None
        stats[m] = {"values": vals, **{v: mean_ci(x) for v, x in vals.items()}, "nearest_minus_transpose": d}
        records += [H.headline_record(STEM, "transpose", None, m, stats[m]["transpose"], None, len(seeds)),
                    H.headline_record(STEM, "nearest", "transpose", m, stats[m]["nearest"], d, len(seeds))]
        better = "lower" if m in LOWER_IS_BETTER else "higher"
        rows.append(f"| {m} ({better} is better) | {H.fmt_ci(stats[m]['transpose'], 3)} | "
                    f"{H.fmt_ci(stats[m]['nearest'], 3)} | {H.fmt_diff(d)} |")
    speed = None
    if rates:
        ratio = mean_ci(np.array(rates["nearest"]) / np.array(rates["transpose"]))
        speed = {"steps_per_cpu_s": rates, "nearest_over_transpose": ratio,
                 **{v: mean_ci(x) for v, x in rates.items()}}
        records += [H.headline_record(STEM, "transpose", None, "steps_per_cpu_s", speed["transpose"], None),
                    H.headline_record(STEM, "nearest", "transpose", "steps_per_cpu_s", speed["nearest"],
                                      paired_test(rates["nearest"], rates["transpose"]))]
    res = {"quick": args.quick, "command": " ".join(["python benchmarks/demo_generator.py",
                                                     *(sys.argv[1:] if argv is None else argv)]),
           "machine": H.machine(), "seeds": seeds,
           "gan_steps": study_config("nearest", args.quick)["gan_steps"], "per_seed": per_seed, "metrics": stats,
           "speed": speed, "picture": picture.name, "headline": records, "wall_s": round(time.time() - t0, 1)}
    L = H.report_head("The demo's generator: transposed vs nearest + conv upsampling (breast study cGAN)", res,
                      "tiny nets, a few steps")
    L += ["", f"Seeds {seeds}, each retraining both generators ({res['gan_steps']} steps, the breast study's "
          "settings) on its training split; metrics against that split in the features of a SmallCNN trained on it "
          "(one per seed, shared by both variants); mean [95% t-interval] over seeds, differences paired by seed.",
          "", "| metric | transpose | nearest + conv | nearest - transpose |", "|---|---|---|---|", *rows, ""]
    if speed:
        r = speed["nearest_over_transpose"]
        L += [f"Cost: {H.fmt_ci(speed['transpose'], 2)} (transpose) vs {H.fmt_ci(speed['nearest'], 2)} (nearest) "
              f"cGAN steps per CPU-second, 1 thread, {args.rounds} interleaved blocks each; nearest / transpose "
              f"{r['mean']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}].", ""]
    L += [f"![samples]({picture.name})", ""]
    (out_dir / f"{STEM}.md").write_text("\n".join(L) + "\n")
    H.write_json(out_dir / f"{STEM}.json", res)
    if not args.quick and not args.no_headline and len(seeds) >= 3:
        H.update_headline(STEM, records)
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
