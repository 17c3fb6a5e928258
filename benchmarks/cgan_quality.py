"""Sample quality of the default cGAN on PneumoniaMNIST (10% of the training split), over 5 seeds.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/cgan_quality.py [--steps 700] [--seeds 0 1 2 3 4]

Per seed: stratified 10% training subsample; cGAN trained on it only (default CGANConfig); as many samples as
real images with the real class counts; then, in the feature space of a SmallCNN trained on the real
subsample: FID, KID, precision/recall, density/coverage (held-out real validation images give the
reference values); Classification Accuracy Score (classifier trained on synthetic only, model selection on
val, scored on the real test split) next to the same classifier trained on the real subsample; and the pixel
memorization audit. BreastMNIST numbers come from study_medical.py (medical_breast.md).
Writes benchmarks/results/cgan_quality.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_medical import load_splits, machine_info, synthetic_pool, to_jsonable, train_gan  # noqa: E402

from synthaug.eval import cas, distribution_metrics, mean_ci, memorization_audit, train_feature_encoder  # noqa: E402

RESULTS = Path(__file__).parent / "results"
KEYS = ("fid", "kid_mean", "precision", "recall", "density", "coverage")


def run_seed(seed: int, steps: int, run_root: Path) -> dict:
    train, val, test = load_splits("pneumonia10", seed)
    t0 = time.perf_counter()
    gen, gan_info = train_gan(train, seed, steps, run_root / f"seed{seed}")
    pool_x, pool_y = synthetic_pool(gen, train, seed)
    enc = train_feature_encoder(train, val_ds=val, epochs=15, seed=seed, device="cpu")
    rec = {"seed": seed, "n_train": len(train), "gan": gan_info,
           "synthetic": distribution_metrics(train.images, pool_x, enc, seed=seed),
           "val_reference": distribution_metrics(train.images, val.images, enc, seed=seed),
           "cas": cas(pool_x, pool_y, val, test, real_train=train, seed=seed, epochs=15, device="cpu"),
           "memorization": memorization_audit(pool_x, train, space="pixel")["summary"]}
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    return to_jsonable(rec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--runs", type=Path, default=Path("runs/cgan_quality"))
    args = ap.parse_args(argv)
    t0 = time.time()
    recs = [run_seed(s, args.steps, args.runs) for s in args.seeds]
    meta = {**machine_info(), "command": "OMP_WAIT_POLICY=PASSIVE python benchmarks/cgan_quality.py "
            + " ".join(sys.argv[1:] if argv is None else argv), "wall_seconds": round(time.time() - t0, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cgan_quality.json").write_text(json.dumps({"meta": meta, "runs": recs}, indent=1))

    def ci(values):
        m = mean_ci(values)
        return f"{m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"

    cas_test = [r["cas"] for r in recs]
    lines = ["# cGAN sample quality on PneumoniaMNIST (10% of train)", "",
             f"Command: `{meta['command']}` — wall time {meta['wall_seconds']} s.  ",
             f"Machine: {meta['nproc']} CPUs ({meta['cpu']}), torch {meta['torch']}. Seeds {args.seeds}; "
             f"default `CGANConfig`, {args.steps} steps per seed, trained on that seed's {recs[0]['n_train']}-image "
             "subsample only. Mean [95% CI] over seeds.", "",
             "| metric | synthetic vs real train | real val vs real train (reference) |", "|---|---|---|"]
    for k in KEYS:
        lines.append(f"| {k} | {ci([r['synthetic'][k] for r in recs])} | {ci([r['val_reference'][k] for r in recs])} |")
    lines += ["", "Classification Accuracy Score (SmallCNN, 15 epochs, epoch selected on real val, real test split):",
              "", "| trained on | test AUC | test balanced accuracy |", "|---|---|---|",
              f"| synthetic only (CAS) | {ci([c['cas_auc'] for c in cas_test])} | "
              f"{ci([c['cas_balanced_accuracy'] for c in cas_test])} |",
              f"| real subsample | {ci([c['real_reference']['test_auc'] for c in cas_test])} | "
              f"{ci([c['real_reference']['test_balanced_accuracy'] for c in cas_test])} |"]
    mem = [r["memorization"] for r in recs]
    lines += ["", f"Memorization audit (pixel space, ratio < 1/3 flagged): fraction of samples flagged "
              f"{ci([m['fraction_flagged'] for m in mem])}.", ""]
    (RESULTS / "cgan_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
