"""Conditional-GAN training throughput on this machine (images/s and steps/s).

    python benchmarks/bench_cgan.py [--repeats 5] [--steps 20] [--threads 2]

Default CGANConfig (batch 64, hinge, spectral-norm projection D with minibatch stddev, DiffAugment, EMA)
for the DCGAN and the style-based generator at 28 px (BreastMNIST, 1 channel) and 64 px (weather photos,
3 channels, or BreastMNIST upsampled when ../shared/data is absent). One "step" is one D update and one G
update (n_critic=1); images/s counts real images seen by D per second (= batch size x steps/s).
Writes benchmarks/results/cgan_throughput.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness as H  # noqa: E402


def data_for(size: int):
    from synthaug.data import ImageDataset, load_breastmnist, load_image_folder, shared_data_dir

    if size == 28:
        return load_breastmnist("train"), "BreastMNIST train (546, 1x28x28)"
    shared = shared_data_dir()
    if shared is not None and (shared / "weather/mwd/train").is_dir():
        return load_image_folder(shared / "weather/mwd/train", size=size, channels=3), \
            f"weather mwd/train (1044, 3x{size}x{size})"
    ds = load_breastmnist("train")
    up = F.interpolate(ds.images, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)
    return ImageDataset(up.expand(-1, 3, -1, -1).contiguous(), ds.labels, ds.class_names), \
        f"BreastMNIST upsampled (546, 3x{size}x{size})"


def measure(arch: str, size: int, steps: int, repeats: int, device) -> dict:
    from synthaug.eval.stats import mean_ci
    from synthaug.train import CGANConfig, CGANRecipe

    data, desc = data_for(size)
    recipe = CGANRecipe(data, CGANConfig(generator=arch), device=device, seed=0)
    for s in range(3):  # warm-up
        recipe.train_step(s)
    rates = []
    for r in range(repeats):
        t0 = time.perf_counter()
        for s in range(steps):
            recipe.train_step(3 + r * steps + s)
        if recipe.device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(steps / (time.perf_counter() - t0))
    sps = mean_ci(rates)
    bs = recipe.config.batch_size
    return {"arch": arch, "image_size": size, "data": desc, "batch_size": bs,
            "g_params": sum(p.numel() for p in recipe.G.parameters()),
            "d_params": sum(p.numel() for p in recipe.D.parameters()),
            "steps_per_s": sps, "images_per_s": {k: (v * bs if k in ("mean", "lo", "hi", "std") else v)
                                                 for k, v in sps.items()},
            "raw_steps_per_s": rates}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block")
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--device", default=None)
    ap.add_argument("--sizes", type=int, nargs="+", default=[28, 64])
    H.add_quick_arguments(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.sizes = 2, 2, [28]
    out_dir = H.report_dir(args)

    from synthaug.utils import get_device

    torch.set_num_threads(args.threads)
    device = get_device(args.device)
    t0 = time.time()
    load_before = os.getloadavg()[0]
    rows = [measure(arch, size, args.steps, args.repeats, device) for size in args.sizes
            for arch in ("dcgan", "style")]
    wall = time.time() - t0
    meta = {"command": "python benchmarks/bench_cgan.py " + " ".join(sys.argv[1:] if argv is None else argv),
            **H.machine(), "device": str(device), "threads": args.threads, "wall_seconds": round(wall, 1),
            "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "repeats": args.repeats, "steps_per_block": args.steps}
    (out_dir / "cgan_throughput.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))

    lines = ["# Conditional-GAN training throughput", "",
             f"Command: `{meta['command']}` — wall time {meta['wall_seconds']} s.  ",
             H.machine_line(meta, f"device {meta['device']}, load average before/after "
                                  f"{meta['load_average_before_after']}") + "  ",
             f"Default `CGANConfig` (batch 64, hinge, SN projection D + minibatch stddev, DiffAugment "
             f"color+translation+cutout, EMA). {args.repeats} timed blocks of {args.steps} steps after 3 warm-up "
             "steps; mean and 95% t-interval.", "",
             "| generator | size | data | G params | D params | steps/s | images/s |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        s, i = r["steps_per_s"], r["images_per_s"]
        lines.append(f"| {r['arch']} | {r['image_size']} | {r['data']} | {r['g_params']:,} | "
                     f"{r['d_params']:,} | {s['mean']:.2f} [{s['lo']:.2f}, {s['hi']:.2f}] | "
                     f"{i['mean']:.0f} [{i['lo']:.0f}, {i['hi']:.0f}] |")
    steps_28 = {r["arch"]: r["steps_per_s"]["mean"] for r in rows if r["image_size"] == 28}
    if "dcgan" in steps_28:
        lines += ["", f"At this rate 2,000 steps at 28 px take about {2000 / steps_28['dcgan'] / 60:.1f} "
                      "min of training for the DCGAN."]
    (out_dir / "cgan_throughput.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [f"{r['arch']}\n{r['image_size']} px" for r in rows]
    means = np.array([r["images_per_s"]["mean"] for r in rows])
    err = np.array([[m - r["images_per_s"]["lo"], r["images_per_s"]["hi"] - m] for m, r in zip(means, rows)]).T
    ax.bar(labels, means, yerr=err, capsize=4, color=["#4c72b0", "#dd8452"] * len(args.sizes))
    ax.set_ylabel("real images / s (95% CI)")
    ax.set_title(f"cGAN training throughput ({meta['device']}, {args.threads} thread(s))")
    fig.tight_layout()
    fig.savefig(out_dir / "cgan_throughput.png", dpi=120)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
