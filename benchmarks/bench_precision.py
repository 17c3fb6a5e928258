"""Does bf16 autocast on the CPU keep a translator's quality? CycleGAN MNIST -> USPS trained twice per seed,
float32 and ``cpu_bf16=True``, everything else equal, then judged on the same held-out MNIST images.

    .venv/bin/python benchmarks/bench_precision.py            # 3 seeds x 2 precisions, 600 steps (~25 min, 1 core)
    .venv/bin/python benchmarks/bench_precision.py --quick    # smoke run: tiny nets, 8 steps, 1 seed

Judges (trained once, float32, on real labelled images, never on translations):

* ``usps_accuracy``: a LeNet trained on USPS train reads the MNIST label on the translation (the translation
  looks like USPS *and* keeps its digit; higher is better);
* ``mnist_agreement``: a LeNet trained on MNIST reads the same label (content kept; higher is better);
* ``kid_to_usps``: KID between the translations and USPS test images in the USPS LeNet's features (lower is
  better);
* ``s_per_step``: wall-clock training time per step on this machine (1 thread).

bf16 is kept for a user when the quality differences are within the seed-to-seed spread. Outputs (``--out``;
default benchmarks/results, --quick: runs/studies_quick): precision_bf16.{md,json,png}.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402
from synthaug.eval.stats import mean_ci, paired_test  # noqa: E402

STEM = "precision_bf16"
FULL = dict(seeds=[0, 1, 2], steps=600, batch_size=4, g_kwargs={"ngf": 32, "n_blocks": 6},
            d_kwargs={"ndf": 32, "n_layers": 2}, n_train=9000, n_eval=1000, judge_steps=1500)
QUICK = dict(seeds=[0], steps=8, batch_size=2, g_kwargs={"ngf": 8, "n_blocks": 2},
             d_kwargs={"ndf": 8, "n_layers": 2}, n_train=64, n_eval=64, judge_steps=20)
METRICS = ("usps_accuracy", "mnist_agreement", "kid_to_usps", "s_per_step")


def load(cfg: dict):
    """MNIST train / held-out MNIST to translate / USPS train / USPS test, 28 px, [-1, 1]."""
    from synthaug.data import load_digits, stratified_indices

    digits = H.DATA / "digits"
    mnist = load_digits(digits / "mnist_t10k.npz", size=28)
    usps = load_digits(digits / "usps.npz", split="train", size=28)
    usps_test = load_digits(digits / "usps.npz", split="test", size=28)
    held = stratified_indices(mnist.labels, n_per_class=cfg["n_eval"] // 10, seed=0)
    rest = np.setdiff1d(np.arange(len(mnist)), held)[: cfg["n_train"]]
    return mnist.subset(rest), mnist.subset(held), usps.subset(np.arange(min(len(usps), cfg["n_train"]))), usps_test


def judge(train, steps: int, seed: int = 0):
    from synthaug.eval import train_arm

    val_idx = np.arange(len(train))[::10]
    tr = train.subset(np.setdiff1d(np.arange(len(train)), val_idx))
    model, _, _ = train_arm(tr, train.subset(val_idx), seed=seed, device="cpu", arch="lenet", max_steps=steps,
                            eval_every=max(steps // 10, 1), patience=4, select_on="accuracy")
    return model.eval()


@torch.no_grad()
def predict(model, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(b).argmax(1) for b in x.split(256)])


def train_translator(cfg: dict, a, b, seed: int, bf16: bool, run_dir: Path):
    from synthaug.models import TranslatorModel
    from synthaug.train import CycleGANConfig, CycleGANRecipe, Trainer

    tc = CycleGANConfig(steps=cfg["steps"], batch_size=cfg["batch_size"], g_kwargs=dict(cfg["g_kwargs"]),
                        d_kwargs=dict(cfg["d_kwargs"]), cpu_bf16=bf16)
    recipe = CycleGANRecipe(a, b, tc, device="cpu", seed=seed, names=("mnist", "usps"))
    t0 = time.perf_counter()
    res = Trainer(recipe, run_dir, cfg["steps"], log_every=50, sample_every=cfg["steps"],
                  ckpt_every=cfg["steps"], progress=False).fit()
    return TranslatorModel.from_pretrained(res.model_dir, device="cpu"), (time.perf_counter() - t0) / cfg["steps"], \
        recipe.cpu_bf16


def main(argv=None) -> int:
    from synthaug.eval import fid_kid
    from synthaug.utils import save_grid

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    H.add_quick_arguments(ap)
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out = H.report_dir(args)
    runs = (H.QUICK_DIR if args.quick else ROOT / "runs") / "precision_bf16"
    torch.set_num_threads(1)
    t0, machine = time.perf_counter(), H.machine()
    mnist, held, usps, usps_test = load(cfg)
    usps_judge, mnist_judge = judge(usps, cfg["judge_steps"]), judge(mnist, cfg["judge_steps"])
    real_test = usps_test.images[: max(cfg["n_eval"], 64)]
    rows, grids = [], {}
    for seed in cfg["seeds"]:
        for bf16 in (False, True):
            name = "bf16" if bf16 else "float32"
            model, sps, used = train_translator(cfg, mnist, usps, seed, bf16, runs / f"{name}_seed{seed}")
            fake = model.translate(held.images, direction="A2B")
            kid = fid_kid(real_test, fake, usps_judge, subset_size=min(len(fake), len(real_test), 500),
                          seed=seed)["kid_mean"]
            row = {"seed": seed, "precision": name, "bf16_used": used, "s_per_step": sps,
                   "usps_accuracy": float((predict(usps_judge, fake) == held.labels).float().mean()),
                   "mnist_agreement": float((predict(mnist_judge, fake) == held.labels).float().mean()),
                   "kid_to_usps": float(kid)}
            rows.append(row)
            print(f"seed {seed} {name:8s} " + " ".join(f"{k} {row[k]:.4f}" for k in METRICS), flush=True)
            if seed == cfg["seeds"][0]:
                grids[name] = fake[:12]
    by = {p: {m: [r[m] for r in rows if r["precision"] == p] for m in METRICS} for p in ("float32", "bf16")}
    summary = {p: {m: mean_ci(v) for m, v in d.items()} for p, d in by.items()}
    diffs = {m: paired_test(by["bf16"][m], by["float32"][m]) if len(cfg["seeds"]) > 1 else None for m in METRICS}
    res = {"quick": args.quick, "config": cfg, "rows": rows, "summary": summary, "diffs": diffs,
           "native_bf16": bool(rows[1]["bf16_used"]), "machine": machine, "wall_s": time.perf_counter() - t0,
           "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/bench_precision.py",
                                                        *(sys.argv[1:] if argv is None else map(str, argv))])}
    H.write_json(out / f"{STEM}.json", res)
    save_grid(torch.cat([held.images[:12], grids["float32"], grids["bf16"]]), out / f"{STEM}.png", nrow=12,
              row_labels=["MNIST", "float32", "bf16"], title=f"CycleGAN MNIST -> USPS, seed {cfg['seeds'][0]}")
    write_markdown(out / f"{STEM}.md", res)
    print(f"wrote {out / STEM}.md (.json, .png) in {res['wall_s']:.0f} s")
    return 0


def write_markdown(path: Path, res: dict) -> None:
    cfg, f = res["config"], H.fmt_interval
    no_bf16 = "This CPU has no native bf16: the bf16 runs ran in float32 (the option is ignored)."
    L = H.report_head("bf16 autocast on the CPU: does the translator keep its quality?", res,
                      "tiny nets, a few steps", warnings=[] if res["native_bf16"] else [no_bf16])
    L += [
          "", f"CycleGAN MNIST -> USPS at 28 px, {cfg['steps']} steps of batch {cfg['batch_size']}, generator "
          f"{cfg['g_kwargs']}, discriminator {cfg['d_kwargs']}, {cfg['n_train']} training images per domain; seeds "
          f"{cfg['seeds']}, each trained in float32 and with `cpu_bf16=True` (bf16 autocast; norms, losses and the "
          f"optimiser stay float32). Judged on {cfg['n_eval']} held-out MNIST images by LeNets trained in float32 "
          "on real USPS / MNIST.", "",
          "| metric | float32 | bf16 | bf16 - float32, paired by seed [95% CI], p |", "|---|---|---|---|"]
    for m in METRICS:
        a, b, d = res["summary"]["float32"][m], res["summary"]["bf16"][m], res["diffs"][m]
        diff = "n/a (one seed)" if d is None else H.fmt_diff(d, 4)
        L.append(f"| {m} | {f(a['mean'], a['lo'], a['hi'], 4)} | {f(b['mean'], b['lo'], b['hi'], 4)} | {diff} |")
    L += ["", "Per run: " + "; ".join(f"seed {r['seed']} {r['precision']}: USPS-judge {r['usps_accuracy']:.3f}, "
                                       f"MNIST-judge {r['mnist_agreement']:.3f}, KID {r['kid_to_usps']:.4f}, "
                                       f"{r['s_per_step']:.3f} s/step" for r in res["rows"]) + ".",
          "", f"![translations]({STEM}.png)", ""]
    path.write_text("\n".join(L))


if __name__ == "__main__":
    sys.exit(main())
