"""MNIST -> USPS with a CycleGAN at 16 px: translate MNIST into USPS style, then train a SmallCNN on translated
MNIST vs on raw MNIST and score both on the USPS test set.

    python examples/digits/mnist_to_usps.py            # ~20 min on 2 busy CPU cores (2000 CycleGAN steps)
    python examples/digits/mnist_to_usps.py --quick    # a few steps on a subset: a smoke run, not a result

Data (shared data folder, ``$SYNTHAUG_DATA`` or ../shared/data): ``digits/mnist_t10k.npz`` (the official
MNIST test set, 10k, resized from 28 to 16 px) as the labelled source and ``digits/usps.npz`` (16 px) as the
target: its training images are used without labels for the CycleGAN, its test split (2007) only for scoring.
No USPS label is used for training or model selection (each classifier keeps its last epoch); a classifier
trained on labelled USPS is reported as the upper bound. Published reference (CyCADA, Hoffman et al. 2018,
MNIST->USPS accuracy): source only 82.2, CyCADA 95.6, target-supervised 96.3 -- other nets and sizes, for scale.
Single seed; ``python -m benchmarks.studies.digits`` asks the same question over 5 seeds, with 95% intervals.
Outputs in ``--out``: ``mnist_to_usps.png`` (rows: MNIST | MNIST->USPS | real USPS), ``results.json``.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from synthaug.data import ImageDataset, load_digits, shared_data_dir
from synthaug.eval import evaluate, train_classifier
from synthaug.models import TranslatorModel
from synthaug.train import CycleGANConfig, CycleGANRecipe, Trainer
from synthaug.utils import get_device, save_grid, seed_everything


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="subset, tiny nets, a few steps (smoke test)")
    ap.add_argument("--out", default="examples_out/mnist_to_usps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    ap.add_argument("--model", default=None, help="a trained MNIST -> USPS translator directory (skips training)")
    ap.add_argument("--steps", type=int, default=None, help="CycleGAN steps (default 2000, --quick 10)")
    ap.add_argument("--clf-steps", type=int, default=None, help="classifier step budget (default 1500, --quick 40)")
    args = ap.parse_args()
    data = shared_data_dir()
    if data is None or not (data / "digits" / "usps.npz").is_file():
        sys.exit("digits data not found: set SYNTHAUG_DATA to the shared data folder (digits/mnist_t10k.npz, "
                 "digits/usps.npz)")
    out, device = Path(args.out), get_device(args.device)
    clf_steps = args.clf_steps or (40 if args.quick else 1500)
    seed_everything(args.seed)

    subset = dict(n_per_class=50, seed=args.seed) if args.quick else {}
    mnist = load_digits(data / "digits" / "mnist_t10k.npz", size=16, **subset)
    usps_train = load_digits(data / "digits" / "usps.npz", split="train", **subset)
    usps_test = load_digits(data / "digits" / "usps.npz", split="test")
    print(f"MNIST {len(mnist)} (16 px), USPS train {len(usps_train)} (labels unused), USPS test {len(usps_test)}")

    model_dir = args.model
    if model_dir is None:
        nets = (dict(ngf=8, n_blocks=2), dict(ndf=8)) if args.quick else (dict(ngf=16, n_blocks=3), dict(ndf=16))
        cfg = CycleGANConfig(steps=args.steps or (10 if args.quick else 2000), batch_size=8, g_kwargs=nets[0],
                             d_kwargs={**nets[1], "n_layers": 2})  # n_layers=2: the PatchGAN fits 16 px
        recipe = CycleGANRecipe(mnist, usps_train, cfg, device=device, seed=args.seed, names=("mnist", "usps"))
        model_dir = Trainer(recipe, out / ("cyclegan_quick" if args.quick else "cyclegan"), steps=cfg.steps,
                            progress=not args.quick).fit().model_dir
    translator = TranslatorModel.from_pretrained(model_dir, device=device)
    translator.check_compatible(image_size=16, channels_a=1, what="16 px digits")  # a --model of another size
    translated = ImageDataset(translator.translate(mnist.images, direction="A2B", batch_size=256), mnist.labels,
                              mnist.class_names, name="mnist->usps")
    grid = save_grid(torch.cat([mnist.images[:10], translated.images[:10], usps_test.images[:10]]),
                     out / "mnist_to_usps.png", nrow=10, row_labels=["MNIST", "MNIST->USPS", "USPS"])

    results = {}
    for name, train_set in (("raw_mnist", mnist), ("translated_mnist", translated),
                            ("usps_supervised_upper_bound", usps_train)):
        clf, _ = train_classifier(train_set, None, max_steps=clf_steps, seed=args.seed, device=device, num_classes=10)
        m = evaluate(clf, usps_test, device)
        results[name] = {"usps_test_accuracy": m["accuracy"], "usps_test_balanced_accuracy": m["balanced_accuracy"]}
        print(f"trained on {name:<28} USPS test accuracy {m['accuracy']:.3f}")
    gain = results["translated_mnist"]["usps_test_accuracy"] - results["raw_mnist"]["usps_test_accuracy"]
    print(f"accuracy gain from translation: {gain:+.3f} (single seed)")
    (out / "results.json").write_text(json.dumps({"seed": args.seed, "classifier_max_steps": clf_steps,
                                                     "model_dir": str(model_dir),
                                                  "n_mnist": len(mnist), "arms": results}, indent=2))
    print(f"wrote {grid} and {out / 'results.json'}; translator: {model_dir}")


if __name__ == "__main__":
    main()
