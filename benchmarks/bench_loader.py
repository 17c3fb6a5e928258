"""DataLoader cost of synthetic augmentation: real only vs MixedDataset (on the fly / pre-generated).

BreastMNIST train (546 images, 28 px), ``DataLoader(batch_size=64, shuffle=True, num_workers=2,
persistent_workers=True, worker_init_fn=seed_worker)``, the same classical transforms (random flip + small
affine, torchvision v2 on tensors) in every arm. Arms are timed in interleaved rounds (one epoch each per
round, order shuffled) after one warm-up epoch; ratios to real-only are paired per round. The generator is the
default-width conditional DCGAN with untrained weights: generation cost does not depend on training.

    python benchmarks/bench_loader.py --repeats 7

writes ``benchmarks/results/loader.{md,json,png}``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from synthaug.augment import MixedDataset, SyntheticDataset  # noqa: E402
from synthaug.augment.plan import synthetic_counts  # noqa: E402
from synthaug.data import load_breastmnist  # noqa: E402
from synthaug.models import GeneratorModel  # noqa: E402
from synthaug.nets import create_net  # noqa: E402
from synthaug.utils import seed_worker  # noqa: E402
from benchmarks import harness as H  # noqa: E402

TARGETS = {"mixed_on_the_fly": 1.25, "mixed_pregenerated": 1.05, "mixed_on_the_fly_cached": 1.25}
LABELS = {"real_only": "real only", "mixed_on_the_fly": "mixed, on the fly",
          "mixed_pregenerated": "mixed, pre-generated", "mixed_on_the_fly_cached": "mixed, on the fly + block cache"}


class Transformed(Dataset):
    """Real-only arm: the real dataset with the same per-item transform and batched fetch as MixedDataset."""

    def __init__(self, ds, transform):
        self.ds, self.transform = ds, transform

    def __len__(self):
        return len(self.ds)

    def __getitems__(self, indices):
        return [(self.transform(x), y) for x, y in self.ds.__getitems__(indices)]

    def __getitem__(self, i):
        return self.__getitems__([i])[0]


def ci95(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else float("nan")
    return float(x.mean()), float(half)


def generator_cost(model: GeneratorModel, sizes=(16, 32, 64, 128, 256), images: int = 512) -> dict[int, float]:
    """Microseconds per generated image by forward batch size (best of 5), one thread as in a worker."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    with torch.no_grad():
        for bs in sizes:
            z, y = torch.randn(bs, model.z_dim), torch.arange(bs) % model.num_classes
            model.generator(z, y)
            reps, best = max(2, images // bs), float("inf")
            for _ in range(5):  # best of 5: the machine is shared
                t = time.perf_counter()
                for _ in range(reps):
                    model.generator(z, y)
                best = min(best, (time.perf_counter() - t) / reps / bs * 1e6)
            out[bs] = best
    torch.set_num_threads(before)
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--ratio", type=float, default=0.5)
    H.add_quick_arguments(p)
    args = p.parse_args(argv)
    if args.quick:
        args.repeats = 2
    wall0 = time.perf_counter()
    load0 = os.getloadavg()

    real = load_breastmnist("train")
    torch.manual_seed(0)
    kw = {"num_classes": 2, "image_size": 28, "channels": 1}
    cfg = {"format": "synthaug", "kind": "cgan", "image_size": 28, "channels": 1, "num_classes": 2,
           "class_names": list(real.class_names), "nets": {"generator": {"arch": "dcgan", "kwargs": kw}}}
    model = GeneratorModel(create_net("dcgan", **kw), cfg, device="cpu")
    n_params = sum(p.numel() for p in model.generator.parameters())
    sig = inspect.signature(type(model.generator).__init__).parameters
    widths = ", ".join(f"{k}={sig[k].default}" for k in ("z_dim", "base_channels", "max_channels", "cond") if k in sig)
    tmp = tempfile.TemporaryDirectory()
    gen_dir = model.save_pretrained(Path(tmp.name) / "dcgan")
    us_by_batch = generator_cost(model)

    tf = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomAffine(degrees=10, translate=(0.05, 0.05),
                                                                scale=(0.95, 1.05))])
    # the pool holds what MixedDataset takes at this ratio: the real class mix (plan.synthetic_counts)
    counts = synthetic_counts(real.labels.numpy(), real.num_classes, ratio=args.ratio)
    per_class = {name: int(k) for name, k in zip(real.class_names, counts)}
    n_syn = sum(per_class.values())
    arms = {
        "real_only": Transformed(real, tf),
        "mixed_on_the_fly": MixedDataset(real, SyntheticDataset(gen_dir, per_class=per_class, mode="on_the_fly"),
                                         ratio=args.ratio, transform=tf),
        "mixed_pregenerated": MixedDataset(real, SyntheticDataset(gen_dir, per_class=per_class, mode="memory",
                                                                  device="cpu"), ratio=args.ratio, transform=tf),
        "mixed_on_the_fly_cached": MixedDataset(  # blocks of 64: the cheapest forward size on CPU (see JSON)
            real, SyntheticDataset(gen_dir, per_class=per_class, mode="on_the_fly", batch_size=64,
                                   cache_blocks=-(-n_syn // 64)), ratio=args.ratio, transform=tf),
    }
    loaders = {name: DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                                persistent_workers=True, worker_init_fn=seed_worker,
                                generator=torch.Generator().manual_seed(0))
               for name, ds in arms.items()}

    def epoch(loader) -> tuple[float, int]:
        t, n = time.perf_counter(), 0
        for x, _ in loader:
            n += len(x)
        return time.perf_counter() - t, n

    first, samples = {}, {}
    for name, loader in loaders.items():  # warm-up: worker start, lazy model load, cache fill
        first[name], samples[name] = epoch(loader)
    times = {name: [] for name in loaders}
    order_rng = np.random.default_rng(0)
    for _ in range(args.repeats):
        for name in order_rng.permutation(list(loaders)):  # arm order shuffled per round: no position bias
            times[name].append(epoch(loaders[name])[0])

    results = {}
    for name in loaders:
        t = np.asarray(times[name])
        per_sample = t / samples[name] * 1e6
        ratio_sample = per_sample / (np.asarray(times["real_only"]) / samples["real_only"] * 1e6)
        ratio_epoch = t / np.asarray(times["real_only"])
        results[name] = {
            "label": LABELS[name], "samples_per_epoch": samples[name], "epoch_s": ci95(t),
            "us_per_sample": ci95(per_sample),
            "ratio_per_sample": ci95(ratio_sample), "ratio_per_epoch": ci95(ratio_epoch),
            "first_epoch_s": first[name], "target_per_sample": TARGETS.get(name),
            "meets_target": None if name not in TARGETS else bool(np.mean(ratio_sample) <= TARGETS[name]),
            "raw_epoch_s": t.tolist()}
    report = {
        "benchmark": "loader",
        "command": "python " + " ".join([os.path.relpath(__file__, REPO)] + (argv or sys.argv[1:])),
        "machine": H.machine(), "load_average_before_after": [load0, os.getloadavg()],
        "settings": {"dataset": "BreastMNIST train", "real_samples": len(real), "synthetic_samples": n_syn,
                     "ratio": args.ratio, "batch_size": args.batch_size, "num_workers": args.workers,
                     "persistent_workers": True, "repeats": args.repeats, "warmup_epochs": 1,
                     "transforms": "v2.RandomHorizontalFlip + v2.RandomAffine(10 deg, 5% shift, 0.95-1.05 scale)",
                     "generator": f"dcgan with default widths ({widths}), {n_params} parameters, "
                                  "untrained weights",
                     "generator_us_per_image_1_thread_by_batch": {str(k): v for k, v in us_by_batch.items()}},
        "results": results, "wall_time_s": time.perf_counter() - wall0}
    out = H.report_dir(args) / "loader"
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report))
    plot(report, out.with_suffix(".png"))
    print(out.with_suffix(".md").read_text())
    tmp.cleanup()
    return report


def fmt(mh, digits=1, scale=1.0) -> str:
    """``mean [lo, hi]`` from a ``(mean, half-width)`` pair."""
    m, h = mh
    return H.fmt_interval(m, m - h, m + h, digits, scale=scale)


def markdown(r: dict) -> str:
    s, m = r["settings"], r["machine"]
    lines = [
        "# DataLoader cost of synthetic augmentation (28 px BreastMNIST)", "",
        f"Command: `{r['command']}` — wall time {r['wall_time_s']:.0f} s.  ",
        H.machine_line(m, f"load average before/after {r['load_average_before_after'][0][0]:.1f} / "
                          f"{r['load_average_before_after'][1][0]:.1f}") + "  ",
        f"Setup: {s['dataset']} ({s['real_samples']} images) + {s['synthetic_samples']} synthetic at ratio "
        f"{s['ratio']}; batch {s['batch_size']}, {s['num_workers']} workers (persistent, `seed_worker`), shuffled; "
        f"{s['transforms']} in every arm. Generator: {s['generator']} — "
        "µs per generated image on one thread by forward batch size (best of 5): "
        + ", ".join(f"{k}: {v:.0f}" for k, v in s["generator_us_per_image_1_thread_by_batch"].items()) + ".  ",
        f"{s['repeats']} timed epochs per arm in interleaved rounds (arm order shuffled per round) after "
        f"{s['warmup_epochs']} warm-up epoch; mean ± "
        "95% t-interval; ratios are paired per round against real only.", "",
        "| arm | samples/epoch | epoch (ms) | per sample (µs) | ×real per sample | ×real per epoch | target "
        "(per sample) | first epoch (ms) |",
        "|---|---:|---:|---:|---:|---:|---|---:|"]
    for v in r["results"].values():
        target = "—" if v["target_per_sample"] is None else (
            f"≤ {v['target_per_sample']:.2f} " + ("met" if v["meets_target"] else "**missed**"))
        lines.append(f"| {v['label']} | {v['samples_per_epoch']} | {fmt(v['epoch_s'], 0, 1e3)} | "
                     f"{fmt(v['us_per_sample'], 0)} | {fmt(v['ratio_per_sample'], 2)} | "
                     f"{fmt(v['ratio_per_epoch'], 2)} | "
                     f"{target} | {v['first_epoch_s'] * 1e3:.0f} |")
    res = r["results"]
    fly, pre = res["mixed_on_the_fly"], res["mixed_pregenerated"]
    cached = res["mixed_on_the_fly_cached"]
    by_batch = s["generator_us_per_image_1_thread_by_batch"]
    gen_us = by_batch["32"]
    real_us = res["real_only"]["us_per_sample"][0]
    lines += ["", "## Reading", "",
              "The machine is shared with other jobs (see the load average), which inflates and spreads the "
              "absolute times; the ratios are paired per round, so they are the numbers to read.", ""]
    lo, hi = pre["ratio_per_sample"][0] - pre["ratio_per_sample"][1], sum(pre["ratio_per_sample"])
    lines.append(
        f"* Pre-generated: {pre['ratio_per_sample'][0]:.2f}× real per sample (95% CI {lo:.2f}-{hi:.2f}) — target "
        "≤ 1.05 " + ("met" if pre["meets_target"] else "**missed**") + ". A synthetic item costs what a real one "
        "costs (a tensor gather + the same transforms); MixedDataset adds ~3-4 µs per item of bookkeeping. "
        + ("The interval includes 1.05: the difference is within the noise of this shared machine. "
           if lo <= 1.05 <= hi else "")
        + "Per sample, a mixed epoch spreads the fixed start of an epoch (workers refilling the prefetch queue) "
        "over twice as many samples, so the ratio can fall below 1.")
    lines.append(
        f"* On the fly: {fly['ratio_per_sample'][0]:.2f}× real per sample, {fly['ratio_per_epoch'][0]:.2f}× per epoch "
        "— target ≤ 1.25 " + ("met." if fly["meets_target"] else
                              f"**missed**. Why: every synthetic item costs one generator forward pass "
                              f"(~{gen_us:.0f} µs per image on one worker thread for the default-width DCGAN) while "
                              f"a real 28 px item with flip + affine costs ~{real_us:.0f} µs of loader time. "
                              "With half of the items synthetic the generator adds "
                              "about half of its per-image cost to every sample, so no loader-side change reaches "
                              "1.25× on CPU at this image size. Workers already run torch on one thread each "
                              "(DataLoader's default). Larger generation blocks do not help: a requested batch "
                              "(~32 synthetic items) is already generated in one forward pass, and on CPU the cost "
                              "per image does not fall with larger batches (lowest at batch "
                              f"{min(by_batch, key=by_batch.get)}: {min(by_batch.values()):.0f} µs; "
                              f"{by_batch['256']:.0f} µs at 256, see Setup)."))
    lines.append(
        f"* Fix tried — on the fly + block cache (`batch_size=64, cache_blocks=n/64`, persistent workers): "
        f"{cached['ratio_per_sample'][0]:.2f}× real per sample in steady state "
        + ("(target met)" if cached["meets_target"] else "(**still missed**)")
        + f"; its first epoch includes the generation ({cached['first_epoch_s'] * 1e3:.0f} ms; uncached first "
        f"epoch {fly['first_epoch_s'] * 1e3:.0f} ms), and without `persistent_workers` every epoch is a first "
        "epoch. The images are the "
        "same as without the cache (they depend only on seed and index), so this is the lazily materialised "
        "form of pre-generation: memory bounded by `cache_blocks` × `batch_size` images per worker. For a set "
        "too large to cache, generate on a GPU in the main process (`mode=\"memory\"` or `write_shards`) and "
        "load shards.")
    return "\n".join(lines) + "\n"


def plot(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = r["results"]
    names = list(res)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "us_per_sample", "loader time per sample (µs)"),
                           (axes[1], "ratio_per_sample", "× real only, per sample")):
        means = [res[n][key][0] for n in names]
        errs = [res[n][key][1] for n in names]
        ax.bar(range(len(names)), means, yerr=errs, capsize=4, color=["0.55", "C3", "C0", "C2"][: len(names)])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([res[n]["label"].replace(", ", ",\n") for n in names], fontsize=8)
        ax.set_title(title)
    for n, tgt in TARGETS.items():
        if n in names:
            i = names.index(n)
            axes[1].hlines(tgt, i - 0.4, i + 0.4, colors="k", linestyles="--")
    axes[1].text(0.02, 0.95, "dashed: targets", transform=axes[1].transAxes, fontsize=8, va="top")
    m = r["machine"]
    fig.suptitle(f"BreastMNIST 28 px, batch {r['settings']['batch_size']}, {r['settings']['num_workers']} workers — "
                 f"{m['nproc']} CPUs, torch {m['torch']} (mean ± 95% CI, {r['settings']['repeats']} epochs)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
