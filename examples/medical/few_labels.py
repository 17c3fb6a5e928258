"""PneumoniaMNIST with 5% of the labels and the rest of the training images unlabelled: a semi-supervised
conditional GAN learns from both, its samples are filtered by a real-trained classifier and mixed into the
classifier's training set, and the result is compared with real-only training and self-training on the pool.

    python examples/medical/few_labels.py           # ~15 min on 2 busy CPU cores
    python examples/medical/few_labels.py --quick   # smoke run, under a minute

Needs ``pneumoniamnist.npz`` from the shared data folder (``$SYNTHAUG_DATA`` or ../shared/data). The path:

1. a stratified 5% of the training split keeps its labels; the other 95% are the unlabelled pool;
2. ``CGANRecipe(labelled, CGANConfig(pseudo_label_threshold=0.95), unlabelled=pool)``: the discriminator's
   label-free term sees every image, the class term the labelled (and confidently pseudo-labelled) ones;
3. ``SyntheticDataset(..., keep=SampleFilter(real_only_classifier, 0.8, encoder=..., reference=labelled))``:
   samples the real-only classifier doubts, or that lie outside their class's real feature range, are replaced;
4. ``MixedDataset(labelled, filtered, ratio=0.25)`` trains the classifier (step chosen on validation), scored once
   on the test split, next to real-only training and pseudo-label self-training.

Single seed: indicative only; ``python -m benchmarks.studies.few_labels --study pneumonia_labels5`` asks the same
question over 5 seeds with every control. Outputs in ``--out``: ``samples.png``, ``results.json`` and the GAN run.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from synthaug.augment import SampleFilter, SyntheticDataset
from synthaug.data import load_medmnist, shared_data_dir, stratified_indices
from synthaug.eval import pseudo_label_arm, run_arm, train_arm
from synthaug.models import GeneratorModel
from synthaug.train import CGANConfig, CGANRecipe, Trainer
from synthaug.utils import get_device, save_grid, seed_everything


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny runs (smoke test)")
    ap.add_argument("--out", default="examples_out/few_labels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    ap.add_argument("--labels", type=float, default=0.05, help="share of the training labels kept")
    ap.add_argument("--steps", type=int, default=None, help="GAN steps (default 1000, --quick 10)")
    ap.add_argument("--clf-steps", type=int, default=None, help="classifier step budget (default 2000, --quick 12)")
    args = ap.parse_args()
    steps = args.steps or (10 if args.quick else 1000)
    clf = {"max_steps": args.clf_steps or (12 if args.quick else 2000)}
    if args.quick:
        clf.update(eval_every=4, patience=2, width=8)
    out, device = Path(args.out), get_device(args.device)
    data = shared_data_dir()
    npz = data / "medmnist" / "pneumoniamnist.npz" if data else None
    if npz is None or not npz.is_file():
        sys.exit("pneumoniamnist.npz not found: set SYNTHAUG_DATA to the shared data folder "
                 "(it must contain medmnist/pneumoniamnist.npz)")
    seed_everything(args.seed)
    full = load_medmnist(npz, "train")
    val, test = load_medmnist(npz, "val"), load_medmnist(npz, "test")
    idx = stratified_indices(full.labels, fraction=args.labels, seed=args.seed)
    rest = np.setdiff1d(np.arange(len(full)), idx)
    if args.quick:
        rest = rest[:300]
    labelled, pool = full.subset(idx), full.images[rest]
    print(f"labelled {labelled.class_counts()}, unlabelled pool {len(pool)}")

    # 1. the semi-supervised cGAN (resumable: rerun the same command to continue)
    cfg = CGANConfig(batch_size=32, pseudo_label_threshold=0.95)
    if args.quick:
        cfg.g_kwargs, cfg.d_kwargs = {"base_channels": 8, "max_channels": 32}, {"base_channels": 8, "max_channels": 32}
    recipe = CGANRecipe(labelled, cfg, device=device, seed=args.seed, unlabelled=pool)
    run = Trainer(recipe, out / "cgan", steps=steps, sample_every=max(steps // 2, 1), ckpt_every=max(steps // 2, 1),
                  progress=not args.quick).fit()
    if run.interrupted:
        return 130
    gen = GeneratorModel.from_pretrained(run.model_dir, device=device)

    # 2. filtered samples: the real-only classifier judges them, its features measure typicality
    kw = dict(seed=args.seed, device=device, **clf)
    real_clf, _, _ = train_arm(labelled, val, **kw)
    keep = SampleFilter(real_clf, 0.8, encoder=real_clf.features, reference=labelled)
    counts = labelled.class_counts()
    per_class = {c: max(1, round(n / 3)) for c, n in counts.items()}  # enough for a 0.25 share
    filtered = SyntheticDataset(gen, per_class=per_class, seed=args.seed, keep=keep, max_draws=5)
    print("filter (generated / kept per class):",
          {c: (r["generated"], r["kept"]) for c, r in filtered.filter_report.items()})
    rows = []
    for c in range(labelled.num_classes):
        rows += [labelled.images[labelled.labels == c][:8], filtered.images[filtered.labels == c][:8]]
    save_grid(torch.cat(rows), out / "samples.png", nrow=8,
              row_labels=[f"{k} {n}" for n in labelled.class_names for k in ("real", "kept synthetic")],
              title="real vs filtered semi-supervised cGAN samples")

    # 3. the classifier with each kind of extra data
    results = {
        "real_only": run_arm("real_only", labelled, val, test, **kw),
        "pseudo_label": pseudo_label_arm("pseudo_label", labelled, pool, val, test, threshold=0.9, **kw),
        "semi_synthetic@0.25_filtered": run_arm("semi_synthetic@0.25_filtered", labelled, val, test,
                                                synthetic=filtered, ratio=0.25, allow_short=True, **kw),
    }
    base = results["real_only"]["test_auc"]
    for name, r in results.items():
        print(f"{name:30s} test AUC {r['test_auc']:.4f} ({r['test_auc'] - base:+.4f} vs real only)")
    print("Single seed, indicative only; 95% intervals over 5 seeds: "
          "python -m benchmarks.studies.few_labels --study pneumonia_labels5")
    (out / "results.json").write_text(json.dumps({
        "seed": args.seed, "labels": args.labels, "gan_steps": run.step, "filter_report": filtered.filter_report,
        "test_auc": {k: r["test_auc"] for k, r in results.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
