"""Development pilots of the MNIST -> MNIST-M study (issue 28): one seed per translator variant, judged by a LeNet
trained on the translations (step chosen on the translated MNIST val split) and scored on 2,000 **held-out pool**
images whose labels serve as a diagnostic only. The translator trains on the other 18,000 pool images; the MNIST-M
test split is never read here. These runs chose the library options the study's primary translator uses; the
report (``benchmarks/results/domain_mnistm.md``) shows them as the ablation of what moved the needle.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/mnistm_pilot.py NAME      # one pilot of PILOTS
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/mnistm_pilot.py --list
    .venv/bin/python benchmarks/mnistm_pilot.py NAME --quick --out DIR   # smoke test: tiny subsets, a few steps

Each run appends a line to ``benchmarks/results/domain_mnistm_pilots.jsonl``; models go to ``runs/pilot/NAME``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import DATA, cpu_model  # noqa: E402
from synthaug.data import ImageDataset, load_digits, stratified_indices  # noqa: E402
from synthaug.eval import classical_augment, evaluate, train_classifier  # noqa: E402
from synthaug.models import TranslatorModel  # noqa: E402
from synthaug.train import Trainer  # noqa: E402
from synthaug.train.recipe import get_recipe  # noqa: E402
from synthaug.utils import save_grid  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "domain_mnistm_pilots.jsonl"
NOISE = {"ngf": 32, "n_blocks": 6, "noise_dim": 16, "noise_maps": 2}
TASK = {"lambda_task": 1.0, "task_min_accuracy": 0.9,
        "task_classifier": {"arch": "lenet", "augment": "colour", "max_steps": 1500, "eval_every": 150, "patience": 5,
                            "select_on": "accuracy"}}
# name -> (what it changes, translator settings over FastCUT ngf 32 / 6 blocks, PatchGAN ndf 32 / n_layers 2, batch
# 4, 2000 steps; None: no translator), classical kind on the classifier's batches, reused translator, draws
PILOTS = {
    "src_only": ("MNIST only, no translator", None, None, None, 1),
    "colour": ("MNIST with the colour classical kind", None, "colour", None, 1),
    "fastcut2k": ("FastCUT, deterministic", {}, None, None, 1),
    "fastcut_noise": ("+ noise inputs (noise_dim 16, noise_maps 2)", {"g_kwargs": NOISE}, None, None, 1),
    "fastcut_noise_div1": ("+ mode-seeking term (lambda_diversity 1)", {"g_kwargs": NOISE, "lambda_diversity": 1.0},
                           None, None, 1),
    "div1_draws3": ("same translator, 3 noise draws per MNIST image", None, None, "fastcut_noise_div1", 3),
    "div1_colour": ("same translations + the colour kind on the classifier", None, "colour", "fastcut_noise_div1", 1),
    "div1_d3_3k": ("+ PatchGAN n_layers 3, 3000 steps", {"g_kwargs": NOISE, "lambda_diversity": 1.0, "steps": 3000,
                                                        "d_kwargs": {"ndf": 32, "n_layers": 3}}, None, None, 1),
    "div1_nce1": ("mode-seeking, lambda_nce 1 instead of 10", {"g_kwargs": NOISE, "lambda_diversity": 1.0,
                                                               "lambda_nce": 1.0}, None, None, 1),
    "div1_d3_task": ("n_layers 3 + task loss (f_S trained with the colour kind)",
                     {"g_kwargs": NOISE, "lambda_diversity": 1.0, "d_kwargs": {"ndf": 32, "n_layers": 3}, **TASK},
                     None, None, 1),
    "nce1_task": ("lambda_nce 1 + task loss (f_S trained with the colour kind)",
                  {"g_kwargs": NOISE, "lambda_diversity": 1.0, "lambda_nce": 1.0, **TASK}, None, None, 1),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", choices=list(PILOTS))
    p.add_argument("--list", action="store_true")
    p.add_argument("--clf-steps", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="smoke test: 200 images, 4 steps, results under --out")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "pilot", help="models (and, with --quick, results)")
    a = p.parse_args(argv)
    if a.list or not a.name:
        for k, v in PILOTS.items():
            print(f"{k:20s} {v[0]}")
        return 0
    torch.set_num_threads(1)
    about, spec, kind, reuse, draws = PILOTS[a.name]
    digits = DATA / "digits"
    m = load_digits(digits / "mnist_t10k.npz", size=32, channels=3)
    val_idx = stratified_indices(m.labels, fraction=0.1, seed=0)
    src, val = m.subset(np.setdiff1d(np.arange(len(m)), val_idx)), m.subset(val_idx)
    pool = load_digits(digits / "mnistm_25k.npz", split="train")
    dev, upool = pool.subset(np.arange(18000, 20000)), pool.subset(np.arange(18000))
    results, clf_steps = (a.out / "pilots.jsonl", 10) if a.quick else (RESULTS, a.clf_steps)
    if a.quick:
        src, val, dev, upool = (d.subset(np.arange(200)) for d in (src, val, dev, upool))
    out = a.out / a.name
    res = {"name": a.name, "about": about, "cpu": cpu_model()}
    train_ds, val_ds = src, val
    if spec is not None or reuse:
        model_dir = a.out / (reuse or a.name) / "model"
        if reuse is None:
            kw = dict(steps=2000, g_kwargs={"ngf": 32, "n_blocks": 6}, d_kwargs={"ndf": 32, "n_layers": 2},
                      batch_size=4, amp=False)
            kw.update(json.loads(json.dumps(spec)))
            if a.quick:
                kw["steps"] = 4
                if "task_classifier" in kw:
                    kw.update(task_min_accuracy=None, task_classifier={**kw["task_classifier"], "max_steps": 4})
            cfg = get_recipe("fastcut").config_class(**kw)
            res["translator"] = kw
            t0 = time.perf_counter()
            recipe = get_recipe("fastcut")(src, upool, cfg, device="cpu", seed=0, names=("mnist", "mnistm"))
            model_dir = Trainer(recipe, out, cfg.steps, log_every=100, sample_every=500, ckpt_every=500,
                                progress=False).fit().model_dir
            res["translator_s"] = round(time.perf_counter() - t0, 1)
        tm = TranslatorModel.from_pretrained(model_dir, device="cpu")
        xs = torch.cat([tm.translate(src.images, "A2B", batch_size=256, seed=k) for k in range(draws)])
        xv = tm.translate(val.images, "A2B", batch_size=256)
        out.mkdir(parents=True, exist_ok=True)
        save_grid(torch.cat([src.images[:20], xs[:20], dev.images[:20]]), out / "examples.png", nrow=20)
        train_ds = ImageDataset(xs, src.labels.repeat(draws), src.class_names)
        val_ds = ImageDataset(xv, val.labels, val.class_names)
    t0 = time.perf_counter()
    net, info = train_classifier(train_ds, val_ds, arch="lenet", max_steps=clf_steps, eval_every=200, patience=None,
                                 batch_size=64, lr=1e-3, seed=0, device="cpu", select_on="accuracy",
                                 transform=classical_augment(kind, hflip=False) if kind else None)
    res.update(clf_s=round(time.perf_counter() - t0, 1), val=info["best_val"], best_step=info["best_step"],
               dev=evaluate(net, dev, "cpu")["accuracy"])
    print(json.dumps(res))
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as f:
        f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
