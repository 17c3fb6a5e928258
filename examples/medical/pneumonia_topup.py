"""PneumoniaMNIST with 5% of the training data: top up the minority class with synthetic images and compare
balanced accuracy with real-only training (and with plain oversampling of the real minority images).

    python examples/medical/pneumonia_topup.py           # ~5 min on 2 busy CPU cores (2000 GAN steps)
    python examples/medical/pneumonia_topup.py --quick   # smoke run, well under a minute

Needs ``pneumoniamnist.npz`` from the shared data folder (``$SYNTHAUG_DATA`` or ../shared/data). A stratified
5% of the training split (~235 chest X-rays, 28x28) keeps the imbalance: about 1 normal to 3 pneumonia.
A conditional GAN is trained on that subset; ``SyntheticDataset(per_class={"normal": deficit})`` makes just
the missing normal images and ``MixedDataset(balance_classes=True)`` adds them, so both classes end equal.
Classifiers select their epoch on balanced accuracy on the validation split and are scored once on the
full test split (624). Single seed: indicative only; ``python -m benchmarks.studies.medical --study pneumonia5`` runs
the 5% case over 5 seeds with 95% intervals (``synthaug.eval.compare_arms``).
Outputs in ``--out``: ``minority_real_vs_synthetic.png``, ``results.json`` and the GAN run.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from synthaug.augment import MixedDataset, SyntheticDataset
from synthaug.data import load_medmnist, shared_data_dir
from synthaug.eval import evaluate, train_classifier
from synthaug.train import CGANConfig, CGANRecipe, Trainer
from synthaug.utils import get_device, save_grid, seed_everything


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny GAN, few steps (smoke test)")
    ap.add_argument("--out", default="examples_out/pneumonia_topup")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    ap.add_argument("--fraction", type=float, default=0.05, help="share of the training split to keep")
    ap.add_argument("--steps", type=int, default=None, help="GAN steps (default 2000, --quick 20)")
    ap.add_argument("--clf-steps", type=int, default=None, help="classifier step budget (default 2000, --quick 20)")
    args = ap.parse_args()
    steps = args.steps or (20 if args.quick else 2000)
    clf_steps = args.clf_steps or (20 if args.quick else 2000)
    out, device = Path(args.out), get_device(args.device)
    data = shared_data_dir()
    npz = data / "medmnist" / "pneumoniamnist.npz" if data else None
    if npz is None or not npz.is_file():
        sys.exit("pneumoniamnist.npz not found: set SYNTHAUG_DATA to the shared data folder "
                 "(it must contain medmnist/pneumoniamnist.npz)")
    seed_everything(args.seed)

    train = load_medmnist(npz, "train", fraction=args.fraction, seed=args.seed)  # stratified subset
    val, test = load_medmnist(npz, "val"), load_medmnist(npz, "test")
    print(train.summary())
    counts = train.class_counts()
    minority = min(counts, key=counts.get)
    deficit = max(counts.values()) - counts[minority]

    # 1. A conditional GAN on the scarce subset (resumable: rerun the same command to continue).
    cfg = CGANConfig(batch_size=32)
    if args.quick:
        cfg = CGANConfig(batch_size=32, g_kwargs={"base_channels": 8}, d_kwargs={"base_channels": 8})
    recipe = CGANRecipe(train, cfg, device=device, seed=args.seed)
    run = Trainer(recipe, out / ("cgan_quick" if args.quick else "cgan"), steps=steps, progress=not args.quick).fit()

    # 2. Exactly the missing minority images, then real + synthetic with equal classes.
    synth = SyntheticDataset(run.model_dir, per_class={minority: deficit}, seed=args.seed)
    topped_up = MixedDataset(train, synth, balance_classes=True, seed=args.seed)
    print(f"top-up: {deficit} synthetic {minority!r} images -> {topped_up.counts()['total']}")
    # The classical answer to imbalance, for comparison: repeat real minority images until the classes are equal.
    idx = torch.nonzero(train.labels == train.class_names.index(minority)).flatten()
    repeats = idx[torch.randint(len(idx), (deficit,), generator=torch.Generator().manual_seed(args.seed))]
    oversampled = train.subset(torch.cat([torch.arange(len(train)), repeats]))

    results = {}
    for name, train_set in (("real_only", train), ("real_oversampled", oversampled),
                            ("real+synthetic_topup", topped_up)):
        clf, info = train_classifier(train_set, val, max_steps=clf_steps, seed=args.seed, device=device,
                                     select_on="balanced_accuracy", num_classes=2)
        m = evaluate(clf, test, device)
        results[name] = {k: m[k] for k in ("balanced_accuracy", "accuracy", "auc", "per_class_recall")}
        recall = ", ".join(f"{c} {r:.2f}" for c, r in zip(train.class_names, m["per_class_recall"]))
        print(f"{name:<22} balanced accuracy {m['balanced_accuracy']:.3f}  AUC {m['auc']:.3f}  recall: {recall}")
    gain = results["real+synthetic_topup"]["balanced_accuracy"] - results["real_only"]["balanced_accuracy"]
    print(f"balanced-accuracy gain of the synthetic top-up over real only: {gain:+.3f} (single seed)")

    real_min = train.images[idx[:8]]
    fake_min = synth.images[:8]
    grid = save_grid(torch.cat([real_min, fake_min]), out / "minority_real_vs_synthetic.png", nrow=8,
                     row_labels=[f"{minority} real", f"{minority} synth"])
    (out / "results.json").write_text(json.dumps({"fraction": args.fraction, "seed": args.seed, "gan_steps": run.step,
                                                  "minority": minority, "synthetic_added": deficit,
                                                  "arms": results}, indent=2))
    print(f"wrote {grid} and {out / 'results.json'}; model in {run.model_dir}")


if __name__ == "__main__":
    main()
