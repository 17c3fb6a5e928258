"""MNIST -> MNIST-M with FastCUT and noise inputs: translate the labelled grey MNIST digits into the MNIST-M style
(colour photo patches behind and through the digit), then train a LeNet on the translations and on raw MNIST and
score both on MNIST-M test.

    python examples/domain/mnist_to_mnistm.py            # ~10 min on one CPU core (2000 FastCUT steps)
    python examples/domain/mnist_to_mnistm.py --quick    # a few steps on a subset: a smoke run, not a result

Data (shared data folder, ``$SYNTHAUG_DATA`` or ../shared/data): ``digits/mnist_t10k.npz`` (10k labelled MNIST, as
RGB at 32 px) is the source and ``digits/mnistm_25k.npz`` the target: its 20,000 training images are used without
labels by the translator, its 5,000 test images only for scoring. The translator is stochastic (``noise_dim``: a
style vector through AdaIN; ``noise_maps``: per-pixel noise) and trained with the mode-seeking term
(``lambda_diversity``), so one digit gets many backgrounds instead of one texture. Each classifier keeps the step
with the best accuracy on 1,000 held-out MNIST images (translated by the same translator for the translated arm):
no MNIST-M label is used. Single seed; ``python -m benchmarks.studies.mnistm`` asks the same question over 5 seeds
against every classical colour augmentation, with 95% intervals.
Outputs in ``--out``: ``mnist_to_mnistm.png`` (rows: MNIST | two translations with other noise | real MNIST-M),
``results.json``.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from synthaug.data import ImageDataset, load_digits, shared_data_dir, stratified_indices
from synthaug.eval import evaluate, train_classifier
from synthaug.models import TranslatorModel
from synthaug.train import FastCUTConfig, FastCUTRecipe, Trainer
from synthaug.utils import get_device, save_grid, seed_everything


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subset, tiny nets, a few steps (smoke test)")
    ap.add_argument("--out", default="examples_out/mnist_to_mnistm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    ap.add_argument("--steps", type=int, default=None, help="FastCUT steps (default 2000, --quick 6)")
    ap.add_argument("--clf-steps", type=int, default=None, help="classifier step budget (default 2500, --quick 20)")
    args = ap.parse_args()
    data = shared_data_dir()
    if data is None or not (data / "digits" / "mnistm_25k.npz").is_file():
        sys.exit("digits data not found: set SYNTHAUG_DATA to the shared data folder (digits/mnist_t10k.npz, "
                 "digits/mnistm_25k.npz)")
    out, device = Path(args.out), get_device(args.device)
    seed_everything(args.seed)

    subset = dict(n_per_class=30, seed=args.seed) if args.quick else {}
    mnist = load_digits(data / "digits" / "mnist_t10k.npz", size=32, channels=3, **subset)
    pool = load_digits(data / "digits" / "mnistm_25k.npz", split="train", **subset)  # its labels are not used
    test = load_digits(data / "digits" / "mnistm_25k.npz", split="test")
    if args.quick:
        test = test.subset(np.arange(300))
    val_idx = stratified_indices(mnist.labels, fraction=0.1, seed=0)
    train, val = mnist.subset(np.setdiff1d(np.arange(len(mnist)), val_idx)), mnist.subset(val_idx)
    print(f"MNIST train {len(train)} / val {len(val)} (RGB, 32 px), MNIST-M pool {len(pool)} (labels unused), "
          f"MNIST-M test {len(test)}")

    g = dict(ngf=8, n_blocks=2) if args.quick else dict(ngf=32, n_blocks=6)
    cfg = FastCUTConfig(steps=args.steps or (6 if args.quick else 2000), batch_size=4, amp=False,
                        g_kwargs={**g, "noise_dim": 16, "noise_maps": 2}, lambda_diversity=1.0,
                        d_kwargs={"ndf": 8 if args.quick else 32, "n_layers": 2},
                        **({"nce_layers": ("input", "down1", "down2", "block1", "block2")} if args.quick else {}))
    recipe = FastCUTRecipe(train, pool, cfg, device=device, seed=args.seed, names=("mnist", "mnistm"))
    model_dir = Trainer(recipe, out / "fastcut", progress=not args.quick).fit().model_dir
    translator = TranslatorModel.from_pretrained(model_dir, device=device)
    to_mnistm = ImageDataset(translator.translate(train.images, batch_size=256, seed=args.seed), train.labels,
                             train.class_names, name="mnist->mnistm")
    val_mnistm = ImageDataset(translator.translate(val.images, batch_size=256, seed=args.seed + 1), val.labels,
                              val.class_names)
    first = [int(np.flatnonzero(train.labels.numpy() == c)[0]) for c in range(10)]
    grid = save_grid(torch.cat([train.images[first], to_mnistm.images[first],
                                translator.translate(train.images[first], seed=args.seed + 2), test.images[:10]]),
                     out / "mnist_to_mnistm.png", nrow=10,
                     row_labels=["MNIST", "-> MNIST-M", "other noise", "real MNIST-M"])

    results = {}
    clf_kw = dict(arch="lenet", max_steps=args.clf_steps or (20 if args.quick else 2500), eval_every=150,
                  patience=8, select_on="accuracy", seed=args.seed, device=device)
    if args.quick:
        clf_kw.update(eval_every=5, patience=2)
    for name, train_set, val_set in (("raw_mnist", train, val), ("translated_mnist", to_mnistm, val_mnistm)):
        clf, info = train_classifier(train_set, val_set, **clf_kw)
        m = evaluate(clf, test, device)
        results[name] = {"mnistm_test_accuracy": m["accuracy"], "selected_step": info["best_step"]}
        print(f"trained on {name:<18} MNIST-M test accuracy {m['accuracy']:.3f}")
    gain = results["translated_mnist"]["mnistm_test_accuracy"] - results["raw_mnist"]["mnistm_test_accuracy"]
    print(f"accuracy gain from translation: {gain:+.3f} (single seed)")
    (out / "results.json").write_text(json.dumps({"seed": args.seed, "model_dir": str(model_dir),
                                                  "n_mnist": len(train), "arms": results}, indent=2))
    print(f"wrote {grid} and {out / 'results.json'}; translator: {model_dir}")


if __name__ == "__main__":
    main()
