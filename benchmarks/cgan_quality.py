"""Sample quality of the default cGAN on PneumoniaMNIST (10% of the training split), over 5 seeds.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/cgan_quality.py [--steps 700] [--seeds 0 1 2 3 4] [--threads N] [--quick]

Per seed: the stratified 10% training subsample of the ``pneumonia10`` medical study
(``benchmarks/studies/medical.py``, ``load_splits``); a cGAN trained on it only (default ``CGANConfig``,
``train_generator``); as many samples as real images with the real class counts; then, in the feature space of
a SmallCNN trained on the real subsample (step budget, early stopping on val): FID, KID, precision/recall,
density/coverage (held-out real validation images give the reference values); Classification Accuracy Score
(classifier trained on synthetic only, step selected on val, scored on the real test split) next to the same
classifier trained on the real subsample; and the pixel memorization audit. BreastMNIST numbers come from the
medical study (medical_breast.md).

Generators and each seed's record are cached under ``runs/studies/`` by a hash of their full configuration
(``synthaug.study.ResultCache``; the generator key is the medical study's, so ``--steps 600`` reuses the
pneumonia10 study's own generators): a rerun resumes, a changed setting retrains. Writes
benchmarks/results/cgan_quality.{md,json}.
``--quick`` (seeds 0 1, a few steps) caches and writes under ``runs/studies_quick/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from benchmarks.studies.medical import (HARNESS_VERSION, QUICK, STUDIES, classifier_settings,  # noqa: E402
                                        generator_config, load_splits, train_generator)
from synthaug.augment import SyntheticDataset  # noqa: E402
from synthaug.eval import cas, distribution_metrics, mean_ci, memorization_audit, train_feature_encoder  # noqa: E402

STUDY = "pneumonia10"
DEFAULT_STEPS = 700
ENCODER_STEPS = 1500
KEYS = ("fid", "kid_mean", "precision", "recall", "density", "coverage")


def run_seed(seed: int, cfg: dict, clf: dict, encoder_steps: int, cache: H.ResultCache) -> dict:
    train, val, test = load_splits(cfg, seed)
    gen_cfg = generator_config(cfg, seed, len(train))
    gen_key = H.config_hash(gen_cfg)
    rec_cfg = {"benchmark": "cgan_quality", "harness": HARNESS_VERSION, "generator": gen_key,
               "generator_config": gen_cfg, "classifier": clf, "encoder_steps": encoder_steps,
               "pool": "real class counts, SyntheticDataset seed 10000 + seed"}

    def compute() -> dict:
        t0 = time.perf_counter()
        run_dir = cache.directory("cgan", gen_cfg)
        reused = (run_dir / "model" / "config.json").is_file()
        gen = train_generator(cache, train, gen_cfg, seed)
        counts = torch.bincount(train.labels, minlength=train.num_classes)
        pool = SyntheticDataset(gen, per_class=dict(enumerate(counts.tolist())), seed=10_000 + seed)
        enc = train_feature_encoder(train, val_ds=val, max_steps=encoder_steps, seed=seed, device="cpu")
        rec = {"seed": seed, "n_train": len(train),
               "gan": {**(H.read_json(run_dir / "gan_info.json") or {}), "generator_key": gen_key, "reused": reused,
                       "config": gen_cfg["cgan"]},
               "synthetic": distribution_metrics(train.images, pool.images, enc, seed=seed),
               "val_reference": distribution_metrics(train.images, val.images, enc, seed=seed),
               "cas": cas(pool.images, pool.labels, val, test, real_train=train, seed=seed, device="cpu", **clf),
               "memorization": memorization_audit(pool.images, train, space="pixel")["summary"]}
        rec["seconds"] = round(time.perf_counter() - t0, 1)
        return H.to_jsonable(rec)

    rec = cache.result("cgan_quality", rec_cfg, compute)
    print(f"[cgan_quality seed {seed}] FID {rec['synthetic']['fid']:.3f} CAS AUC {rec['cas']['cas_auc']:.4f}"
          f"{' (cached)' if rec.get('cached') else ''}", flush=True)
    return rec


def ci(values) -> str:
    """``mean [lo, hi]`` over seeds; a value saved as null (non-finite) is left out and the count shown."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    return H.fmt_ci(mean_ci(vals)) + ("" if len(vals) == len(values) else f" (n = {len(vals)} of {len(values)})")


def report(recs: list[dict], meta: dict, out_prefix: Path) -> str:
    quick, steps, clf = meta["quick"], meta["gan_steps"], meta["classifier"]
    H.write_json(Path(f"{out_prefix}.json"), {"meta": meta, "runs": recs})
    cas_test = [r["cas"] for r in recs]
    late = sum(bool(c.get("best_in_last_10pct")) for c in cas_test)
    lines = [f"# {'QUICK SMOKE TEST: ' if quick else ''}cGAN sample quality on PneumoniaMNIST (10% of train)", ""]
    if quick:
        lines += ["**Quick smoke test: few steps, 2 seeds. These numbers are not results.**", ""]
    lines += [f"Command: `{meta['command']}` — wall time {meta['wall_seconds']} s.  ",
              f"Machine: {meta['nproc']} CPUs ({meta['cpu']}), torch {meta['torch']}. Seeds {meta['seeds']}; "
              f"default `CGANConfig`, {steps} steps per seed, trained on that seed's {recs[0]['n_train']}-image "
              "subsample only. Mean [95% CI] over seeds.", "",
              f"Features: penultimate layer of a SmallCNN trained on the seed's real subsample (budget "
              f"{meta['encoder_steps']} steps, early stopping on validation AUC).", "",
              "| metric | synthetic vs real train | real val vs real train (reference) |", "|---|---|---|"]
    for k in KEYS:
        lines.append(f"| {k} | {ci([r['synthetic'][k] for r in recs])} | {ci([r['val_reference'][k] for r in recs])} |")
    lines += ["", f"Classification Accuracy Score (`{clf['arch']}`, budget of {clf['max_steps']} steps, early stopping "
              f"after {clf['patience']} validation evaluations without improvement, step selected on real val, "
              "real test split):", "",
              "| trained on | test AUC | test balanced accuracy |", "|---|---|---|",
              f"| synthetic only (CAS) | {ci([c['cas_auc'] for c in cas_test])} | "
              f"{ci([c['cas_balanced_accuracy'] for c in cas_test])} |",
              f"| real subsample | {ci([c['real_reference']['test_auc'] for c in cas_test])} | "
              f"{ci([c['real_reference']['test_balanced_accuracy'] for c in cas_test])} |", "",
              f"CAS: selected step in the last 10% of the budget for {late} of {len(cas_test)} seeds."]
    mem = [r["memorization"] for r in recs]
    lines += ["", f"Memorization audit (pixel space, ratio < 1/3 flagged): fraction of samples flagged "
              f"{ci([m['fraction_flagged'] for m in mem])}.", ""]
    text = "\n".join(lines)
    Path(f"{out_prefix}.md").write_text(text + "\n")
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=None, help=f"cGAN steps per seed (default {DEFAULT_STEPS})")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 3 4 (--quick: 0 1)")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--quick", action="store_true", help="smoke test: seeds 0 1, a few steps, runs/studies_quick/")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    if args.quick:
        seeds, steps = args.seeds or [0, 1], args.steps or QUICK["gan_steps"]
        root, encoder_steps = H.ROOT / "runs" / "studies_quick", QUICK["encoder_steps"]
        cache, out_prefix = H.ResultCache(root), root / "cgan_quality"
    else:
        seeds, steps, encoder_steps = args.seeds or [0, 1, 2, 3, 4], args.steps or DEFAULT_STEPS, ENCODER_STEPS
        cache, out_prefix = H.ResultCache(H.RUNS), H.RESULTS / "cgan_quality"
    cfg = {**STUDIES[STUDY], "gan_steps": steps}
    clf = classifier_settings("small_cnn", args.quick)
    recs = [run_seed(s, cfg, clf, encoder_steps, cache) for s in seeds]
    meta = {**H.machine(), "command": "OMP_WAIT_POLICY=PASSIVE python benchmarks/cgan_quality.py "
            + " ".join(sys.argv[1:] if argv is None else argv), "wall_seconds": round(time.time() - t0, 1),
            "quick": args.quick, "study": STUDY, "seeds": seeds, "gan_steps": steps, "classifier": clf,
            "encoder_steps": encoder_steps}
    print(report(recs, meta, out_prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
