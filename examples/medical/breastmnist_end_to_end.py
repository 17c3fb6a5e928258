"""BreastMNIST end to end: train a conditional GAN, mix its samples into a classifier's training set, and
compare the test AUC with real-only training and with classical augmentation.

    python examples/medical/breastmnist_end_to_end.py           # ~25 min on 2 busy CPU cores (2500 GAN steps)
    python examples/medical/breastmnist_end_to_end.py --quick   # smoke run, well under a minute

Uses the BreastMNIST copy shipped with synthaug (546 training images, 28x28, malignant vs normal/benign).
Four arms, one seed each: real only, real + flips/shifts, real + synthetic (``MixedDataset``, synthetic
share 0.5) and real + synthetic + flips/shifts. Every classifier picks its epoch on the validation split
and is scored once on the test split. One seed says little on a 156-image test set: the same comparison with
95% confidence intervals over 5 seeds is ``python -m benchmarks.studies.medical --study breast`` (built on
``synthaug.eval.compare_arms``; results in ``benchmarks/results/medical_breast.md``).
Outputs in ``--out``: ``real_vs_synthetic.png``, ``results.json`` and the GAN run (``cgan/model``).
"""

import argparse
import json
from pathlib import Path

import torch

from synthaug.augment import MixedDataset, SyntheticDataset
from synthaug.data import load_breastmnist
from synthaug.eval import classical_augment, evaluate, train_classifier
from synthaug.models import GeneratorModel
from synthaug.train import CGANConfig, CGANRecipe, Trainer
from synthaug.utils import get_device, save_grid, seed_everything


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny GAN, few steps (smoke test)")
    ap.add_argument("--out", default="examples_out/breastmnist_end_to_end")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    ap.add_argument("--steps", type=int, default=None, help="GAN steps (default 2500, --quick 20)")
    ap.add_argument("--clf-steps", type=int, default=None, help="classifier step budget (default 2000, --quick 20)")
    args = ap.parse_args()
    steps = args.steps or (20 if args.quick else 2500)
    clf_steps = args.clf_steps or (20 if args.quick else 2000)
    out, device = Path(args.out), get_device(args.device)
    seed_everything(args.seed)

    train, val, test = (load_breastmnist(s) for s in ("train", "val", "test"))
    print(train.summary())
    print(f"device: {device}; val {len(val)} / test {len(test)} images")

    # 1. Train the conditional GAN (resumable: run the same command again to continue an interrupted run).
    cfg = CGANConfig()  # hinge loss, projection discriminator, DiffAugment, EMA generator
    if args.quick:
        cfg = CGANConfig(batch_size=32, g_kwargs={"base_channels": 8}, d_kwargs={"base_channels": 8})
    recipe = CGANRecipe(train, cfg, device=device, seed=args.seed)
    run = Trainer(recipe, out / ("cgan_quick" if args.quick else "cgan"), steps=steps, progress=not args.quick).fit()
    model = GeneratorModel.from_pretrained(run.model_dir)
    print(f"GAN: {run.step} steps ({run.seconds:.0f} s in this run) -> {run.model_dir}")

    # 2. Look at it: per class, 8 real training images above 8 samples.
    rows, names = [], []
    for c, name in enumerate(train.class_names):
        fake, _ = model.sample(8, labels=c, seed=args.seed)
        rows += [train.images[train.labels == c][:8], fake]
        names += [f"{name} real", f"{name} synth"]
    grid = save_grid(torch.cat(rows), out / "real_vs_synthetic.png", nrow=8, row_labels=names)

    # 3. Real + synthetic as one torch Dataset. The synthetic half keeps the real class frequencies, so any
    #    gain is not just class rebalancing (MixedDataset(train, model_dir, ratio=0.5) does the same on the fly).
    synth = SyntheticDataset(run.model_dir, per_class=train.class_counts(), seed=args.seed)
    mixed = MixedDataset(train, synth, ratio=0.5, seed=args.seed, return_source=True)  # (x, y, is_synthetic)
    print(mixed, mixed.counts()["total"])
    flips_shifts = classical_augment("flips_shifts")  # batch transform: random flips + reflect-padded shifts
    arms = {"real_only": (train, None), "classical_flips_shifts": (train, flips_shifts),
            "real+synthetic": (mixed, None), "real+synthetic+flips_shifts": (mixed, flips_shifts)}
    results = {}
    for name, (train_set, transform) in arms.items():
        clf, info = train_classifier(train_set, val, max_steps=clf_steps, transform=transform, seed=args.seed,
                                     device=device, select_on="auc", num_classes=2)
        m = evaluate(clf, test, device)
        results[name] = {"test_auc": m["auc"], "test_accuracy": m["accuracy"], "best_epoch": info["best_epoch"],
                         "n_train": info["n_train"], "n_synthetic": info["n_synthetic"]}
        print(f"{name:<28} test AUC {m['auc']:.3f}  accuracy {m['accuracy']:.3f}  (epoch {info['best_epoch']}, "
              f"{info['n_train']} images, {info['n_synthetic']} synthetic)")

    base, classical = results["real_only"]["test_auc"], results["classical_flips_shifts"]["test_auc"]
    for name in ("real+synthetic", "real+synthetic+flips_shifts"):
        auc = results[name]["test_auc"]
        print(f"{name}: AUC gain {auc - base:+.3f} vs real only, {auc - classical:+.3f} vs classical augmentation")
    print("Single seed, indicative only; 95% intervals over 5 seeds: "
          "python -m benchmarks.studies.medical --study breast")
    report = {"seed": args.seed, "gan_steps": run.step, "classifier_max_steps": clf_steps,
              "model_dir": str(run.model_dir),
              "synthetic_share": 0.5, "arms": results}
    (out / "results.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {grid}, {out / 'results.json'} and the model directory {run.model_dir}")


if __name__ == "__main__":
    main()
