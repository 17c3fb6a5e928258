"""CPU throughput of the domain translators: CycleGAN and Pix2Pix training, and translation (inference).

    python benchmarks/bench_translators.py            # full run (about 5 min on 2 cores)
    python benchmarks/bench_translators.py --quick    # smoke run, 64 px only, written to /tmp unless --out

What is measured
* training: ``recipe.train_step`` of :class:`~synthaug.train.CycleGANRecipe` / :class:`Pix2PixRecipe` (the
  exact work the Trainer does per step, without its logging/checkpoint I/O), reported as image pairs/s
  = train steps/s x batch size;
* translation: :meth:`synthaug.models.TranslatorModel.translate` of a model directory written by the recipe
  and loaded with ``from_pretrained`` (eval mode, no grad), reported as images/s at the model's native size.

Protocol: every case is built and warmed up first (warm-up calls excluded); then ``--repeats`` (>= 5) rounds,
each timing one block of a fixed number of calls of every case in turn (interleaved, so a change in the
machine's load during the run hits all cases alike rather than a few). Mean and 95 % Student-t interval
over the blocks. Two rates are reported: wall-clock (what you get on this machine now) and per CPU-second
of the process (items / process CPU time). With one thread the latter estimates the rate on a core of
one's own: on a shared machine the wall-clock rate falls when other jobs take the cores (CPU/wall < 1).
Inputs are real driving frames (nuScenes clear as A, DAWN fog as B); throughput does not depend on content.

Outputs (``--out``, default benchmarks/results): translators_throughput.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
# Import this checkout's package first (the script then runs from any folder, installed or not; once, while
# the repo was being edited, ``import synthaug`` outside the root resolved to a namespace package).
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "driving"
if not DATA.is_dir():  # checkouts placed elsewhere: the data README's absolute location
    DATA = Path("/work/shared/data/driving")


# ----------------------------------------------------------------------------- machine and stats
def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def mean_ci(values, confidence: float = 0.95) -> dict:
    """Mean and Student-t interval of ``values`` (scipy.stats.t)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    n, mean = len(x), float(x.mean())
    if n < 2 or float(x.std(ddof=1)) == 0.0:
        return {"mean": mean, "lo": mean, "hi": mean, "std": 0.0, "n": n}
    sd = float(x.std(ddof=1))
    lo, hi = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sd / math.sqrt(n))
    return {"mean": mean, "lo": float(lo), "hi": float(hi), "std": sd, "n": n}


# ----------------------------------------------------------------------------- data
_CACHE: dict = {}


def driving(size: int, n: int = 32):
    """(clear, fog) ImageDatasets of the first ``n`` frames of each folder at ``size`` px."""
    from synthaug.data import load_image_dir

    key = (size, n)
    if key not in _CACHE:
        clear_dir, fog_dir = DATA / "clear_nuscenes" / "images", DATA / "fog_dawn"
        clear_files = sorted(p.name for p in clear_dir.iterdir() if p.suffix.lower() == ".jpg")[:n]
        fog_files = [Path(line.strip()).name for line in (fog_dir / "unique_images.txt").read_text().splitlines()
                     if line.strip()][:n]
        _CACHE[key] = (load_image_dir(clear_dir, size=size, files=clear_files),
                       load_image_dir(fog_dir / "images", size=size, files=fog_files))
    return _CACHE[key]


# ----------------------------------------------------------------------------- cases
# A builder returns (fn, items_per_call, info): ``fn()`` is one timed call (a train step or a translate call).
def build_cyclegan(size: int, batch: int, ngf: int, blocks: int = 9):
    from synthaug.train.translation import CycleGANConfig, CycleGANRecipe

    a, b = driving(size)
    cfg = CycleGANConfig(steps=10_000, batch_size=batch, g_kwargs={"ngf": ngf, "n_blocks": blocks})
    recipe = CycleGANRecipe(a, b, cfg, device="cpu", seed=0)
    step = iter(range(10**9))
    n_params = sum(p.numel() for p in recipe.nets["G_A2B"].parameters())
    return (lambda: recipe.train_step(next(step))), batch, {
        "kind": "train", "recipe": "cyclegan", "size": size, "batch": batch, "unit": "pairs/s", "g_params": n_params,
        "net": f"ResNet-{blocks} ngf={ngf} + 70x70 PatchGAN ndf={cfg.d_kwargs['ndf']}"}


def build_pix2pix(size: int, batch: int):
    from synthaug.data import PairedDataset
    from synthaug.train.translation import Pix2PixConfig, Pix2PixRecipe

    a, _ = driving(size)
    pairs = PairedDataset(a.images, a.images.flip(-1))  # content is irrelevant to throughput
    cfg = Pix2PixConfig(steps=10_000, batch_size=batch)
    recipe = Pix2PixRecipe(pairs, cfg, device="cpu", seed=0)
    step = iter(range(10**9))
    g = recipe.nets["G_A2B"]
    return (lambda: recipe.train_step(next(step))), batch, {
        "kind": "train", "recipe": "pix2pix", "size": size, "batch": batch, "unit": "pairs/s",
        "g_params": sum(p.numel() for p in g.parameters()),
        "net": f"U-Net num_downs={g.num_downs} ngf={cfg.g_kwargs['ngf']} + 70x70 PatchGAN ndf={cfg.d_kwargs['ndf']}"}


def build_translate(size: int, batch: int, arch: str, n_images: int):
    """Translation of ``n_images`` per call by a model directory written by the recipe and read back."""
    from synthaug.data import PairedDataset
    from synthaug.models import TranslatorModel
    from synthaug.train.translation import CycleGANConfig, CycleGANRecipe, Pix2PixConfig, Pix2PixRecipe

    a, b = driving(size)
    if arch == "resnet":
        recipe = CycleGANRecipe(a, b, CycleGANConfig(steps=10), device="cpu", seed=0)
        net = f"ResNet-9 ngf={CycleGANConfig().g_kwargs['ngf']} (CycleGAN default)"
    else:
        recipe = Pix2PixRecipe(PairedDataset(a.images, b.images), Pix2PixConfig(steps=10), device="cpu", seed=0)
        net = f"U-Net ngf={Pix2PixConfig().g_kwargs['ngf']} (Pix2Pix default)"
    with tempfile.TemporaryDirectory() as tmp:
        recipe.save_pretrained(Path(tmp) / "model")
        model = TranslatorModel.from_pretrained(Path(tmp) / "model", device="cpu")
    x = a.images[torch.arange(n_images) % len(a.images)]
    return (lambda: model.translate(x, direction="A2B", batch_size=batch)), n_images, {
        "kind": "translate", "recipe": arch, "size": size, "batch": batch, "unit": "images/s", "net": net,
        "images_per_call": n_images}


def plan(quick: bool) -> list[dict]:
    """Every case: label, threads, warm-up calls, calls per timed block, builder."""
    def case(label, builder, calls, warmup=2, threads=1):
        return {"label": label, "builder": builder, "calls": calls, "warmup": warmup, "threads": threads}

    q = quick
    cases = [
        case("CycleGAN 64 px b1 ngf32", lambda: build_cyclegan(64, 1, 32), 2 if q else 4),
        case("Pix2Pix 64 px b1", lambda: build_pix2pix(64, 1), 4 if q else 8),
        case("translate ResNet 64 px b1", lambda: build_translate(64, 1, "resnet", 16), 1, warmup=1),
        case("translate ResNet 64 px b16", lambda: build_translate(64, 16, "resnet", 32), 1, warmup=1),
    ]
    if q:
        return cases
    return cases + [
        case("CycleGAN 64 px b4 ngf32", lambda: build_cyclegan(64, 4, 32), 2, warmup=1),
        case("CycleGAN 64 px b1 ngf64 (paper width)", lambda: build_cyclegan(64, 1, 64), 2, warmup=1),
        case("CycleGAN 128 px b1 ngf32", lambda: build_cyclegan(128, 1, 32), 2, warmup=1),
        case("Pix2Pix 64 px b4 (default batch)", lambda: build_pix2pix(64, 4), 4),
        case("Pix2Pix 128 px b1", lambda: build_pix2pix(128, 1), 4),
        case("translate ResNet 128 px b1", lambda: build_translate(128, 1, "resnet", 8), 1, warmup=1),
        case("translate ResNet 128 px b16", lambda: build_translate(128, 16, "resnet", 16), 1, warmup=1),
        case("translate U-Net 64 px b1", lambda: build_translate(64, 1, "unet", 32), 1, warmup=1),
        case("translate U-Net 64 px b16", lambda: build_translate(64, 16, "unet", 64), 1, warmup=1),
        case("translate U-Net 128 px b1", lambda: build_translate(128, 1, "unet", 16), 1, warmup=1),
        case("translate U-Net 128 px b16", lambda: build_translate(128, 16, "unet", 32), 1, warmup=1),
        case("CycleGAN 64 px b1 ngf32, 2 threads", lambda: build_cyclegan(64, 1, 32), 2, threads=2),
        case("translate ResNet 64 px b16, 2 threads", lambda: build_translate(64, 16, "resnet", 32), 1,
             warmup=1, threads=2),
    ]


def run_interleaved(cases: list[dict], repeats: int) -> list[dict]:
    """Build and warm up every case, then ``repeats`` rounds timing one block of each case in turn."""
    built = []
    for c in cases:
        torch.set_num_threads(c["threads"])
        torch.manual_seed(0)
        t0 = time.perf_counter()
        fn, items, info = c["builder"]()
        for _ in range(c["warmup"]):
            fn()
        built.append((c, fn, items, info, {"wall": [], "cpu": []}))
        print(f"built + warmed up {c['label']} ({time.perf_counter() - t0:.1f} s)", flush=True)
    for r in range(repeats):
        for c, fn, _items, _info, times in built:
            torch.set_num_threads(c["threads"])
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(c["calls"]):
                fn()
            times["wall"].append(time.perf_counter() - w0)
            times["cpu"].append(time.process_time() - c0)
        print(f"round {r + 1}/{repeats} done, load average {loadavg()}", flush=True)
    rows = []
    for c, _, items, info, times in built:
        n = items * c["calls"]
        wall, cpu = np.array(times["wall"]), np.array(times["cpu"])
        rows.append({"label": c["label"], "threads": c["threads"], **info,
                     "warmup_calls": c["warmup"], "calls_per_block": c["calls"], "repeats": repeats,
                     "block_wall_s": wall.round(4).tolist(), "block_cpu_s": cpu.round(4).tolist(),
                     "ci": mean_ci(n / wall), "ci_cpu": mean_ci(n / cpu),
                     "sec_per_call": mean_ci(wall / c["calls"]),
                     "cpu_over_wall": round(float(np.mean(cpu / wall)), 3)})
        ci, cc = rows[-1]["ci"], rows[-1]["ci_cpu"]
        print(f"{c['label']:42s} {ci['mean']:9.3f} {info['unit']:9s} [{ci['lo']:.3f}, {ci['hi']:.3f}]  "
              f"per CPU-s {cc['mean']:.3f}  cpu/wall {rows[-1]['cpu_over_wall']:.2f}", flush=True)
    torch.set_num_threads(1)
    return rows


# ----------------------------------------------------------------------------- reports
def fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def write_markdown(path: Path, meta: dict, rows: list[dict]) -> None:
    m = meta["machine"]
    lines = [
        "# Translator throughput on CPU",
        "",
        f"Command: `{meta['command']}`  ",
        H.machine_line(m) + "  ",
        "Threads: `torch.set_num_threads(n)` with n as listed per row (1 unless the label says 2)  ",
        f"Total wall time: {meta['wall_s']:.0f} s; load average (1/5/15 min) at start {meta['loadavg_start']}, "
        f"at end {meta['loadavg_end']} (other jobs shared the machine)  ",
        f"Protocol: {meta['protocol']}",
        "",
        "| case | net | size | batch | threads | wall-clock throughput | 95% CI | per CPU-second | 95% CI | "
        "s per call (wall) | CPU/wall |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci, cc, spc = r["ci"], r["ci_cpu"], r["sec_per_call"]
        call = "step" if r["kind"] == "train" else f"call of {r['images_per_call']} images"
        lines.append(f"| {r['label']} | {r['net']} | {r['size']} | {r['batch']} | {r['threads']} | "
                     f"**{fmt(ci['mean'])} {r['unit']}** | [{fmt(ci['lo'])}, {fmt(ci['hi'])}] | "
                     f"{fmt(cc['mean'])} | [{fmt(cc['lo'])}, {fmt(cc['hi'])}] | "
                     f"{spc['mean']:.3f} s / {call} | {r['cpu_over_wall']:.2f} |")
    lines += ["", "Notes:", *[f"- {n}" for n in meta["notes"]], "",
              "![throughput](translators_throughput.png)", ""]
    path.write_text("\n".join(lines))


def write_plot(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("train", "training: image pairs/s (steps/s x batch)"), ("translate", "translation: images/s")]
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.42 * max(len(rows), 8) + 1.4))
    for ax, (kind, title) in zip(axes, groups):
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            ax.set_visible(False)
            continue
        y = np.arange(len(sel))[::-1].astype(float)
        h = 0.38
        for key, off, hatch, name in (("ci", h / 2, None, "wall-clock"), ("ci_cpu", -h / 2, "//", "per CPU-second")):
            means = np.array([r[key]["mean"] for r in sel])
            err = np.array([[r[key]["mean"] - r[key]["lo"] for r in sel], [r[key]["hi"] - r[key]["mean"] for r in sel]])
            colors = ["tab:orange" if r["threads"] > 1 else ("tab:blue" if r["size"] == 64 else "tab:green")
                      for r in sel]
            ax.barh(y + off, means, height=h, xerr=err, color=colors, hatch=hatch, alpha=1.0 if hatch is None else 0.45,
                    capsize=2, label=name, edgecolor="black", linewidth=0.4)
            for yi, mv, hi in zip(y + off, means, [r[key]["hi"] for r in sel]):
                ax.text(hi, yi, f" {fmt(mv)}", va="center", fontsize=7)
        ax.set_yticks(y)
        ax.set_yticklabels([r["label"] for r in sel], fontsize=8)
        ax.set_xlim(0, max(max(r["ci"]["hi"], r["ci_cpu"]["hi"]) for r in sel) * 1.15)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("mean with 95% t-interval; solid: wall-clock, hatched: per CPU-second; "
                      "blue 64 px, green 128 px, orange 2 threads", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


NOTES = [
    "Wall-clock throughput is what the process got on this machine while other jobs shared its 2 cores; "
    "per CPU-second throughput (items / process CPU time) estimates, for the 1-thread rows, the rate "
    "on a core of one's own. CPU/wall = share of a core (1 thread) or of 2 cores x 2 (2 threads) "
    "the process actually got. The CIs cover block-to-block variation within this run only.",
    "Training cases time `recipe.train_step` (forward, losses, backward, optimiser steps, image pool), "
    "not the Trainer's logging, sample grids or checkpoints.",
    "A CycleGAN step runs both generators 3 times each (translation, cycle, identity) and both "
    "discriminators. Generator: ResNet with 2 stride-2 downsamplings and nearest-neighbour upsampling + "
    "3x3 conv (synthaug's choice instead of transposed convs); discriminator: 70x70 PatchGAN (n_layers=3).",
    "ngf=32 is CycleGANConfig's default; ngf=64 is the CycleGAN paper's width. Pix2Pix uses "
    "Pix2PixConfig's defaults (U-Net ngf=32, num_downs=log2(size), batch norm, dropout).",
    "Translation: `TranslatorModel.translate` on a model directory read back with `from_pretrained`, "
    "inputs already at the model size (no resize), eval mode, untrained weights (speed does not depend "
    "on them).",
    "Threads: the 2-thread rows ran while other jobs kept the machine busy (load average 5-9 on 2 cores); "
    "then OpenMP's threads wait for each other and the CycleGAN step used about 11x the CPU time of the "
    "1-thread step. On an idle machine 2 threads can pay off: check with `--only '2 threads'` before "
    "choosing. The showcase trainings use 1 thread for this reason.",
]


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="64 px only, short blocks (a smoke test)")
    ap.add_argument("--repeats", type=int, default=6, help="timed blocks per case (>= 5)")
    ap.add_argument("--out", default=None, help="output folder (default benchmarks/results; /tmp for --quick)")
    ap.add_argument("--only", default=None, help="run only cases whose label contains this text")
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md/.png from the JSON, no timing")
    args = ap.parse_args(argv)
    if args.repeats < 5:
        ap.error(f"--repeats: expected >= 5, found {args.repeats}")
    out = Path(args.out) if args.out else (Path(tempfile.gettempdir()) / "synthaug_bench_translators_quick"
                                           if args.quick else ROOT / "benchmarks" / "results")
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:  # re-render the Markdown and the plot from the JSON (current notes)
        meta = json.loads((out / "translators_throughput.json").read_text())
        meta["notes"] = NOTES
        (out / "translators_throughput.json").write_text(json.dumps(meta, indent=2))
        write_markdown(out / "translators_throughput.md", meta, meta["results"])
        write_plot(out / "translators_throughput.png", meta["results"])
        print(f"rewrote {out / 'translators_throughput.md'} and .png from the JSON")
        return 0
    os.environ.setdefault("SYNTHAUG_DEVICE", "cpu")
    t0, load0 = time.time(), loadavg()
    cases = [c for c in plan(args.quick) if not args.only or args.only in c["label"]]
    rows = run_interleaved(cases, args.repeats)
    meta = {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "machine": H.machine(),
        "wall_s": time.time() - t0,
        "loadavg_start": load0,
        "loadavg_end": loadavg(),
        "quick": args.quick,
        "protocol": (f"all cases built and warmed up first (warm-up calls excluded), then {args.repeats} rounds, "
                     "each timing one block (a fixed number of train steps or translate calls) of every case in "
                     "turn; throughput per block = items / block time; mean and 95% Student-t interval over "
                     "the blocks. Device CPU, float32, no AMP."),
        "notes": NOTES,
        "results": rows,
    }
    (out / "translators_throughput.json").write_text(json.dumps(meta, indent=2))
    write_markdown(out / "translators_throughput.md", meta, rows)
    write_plot(out / "translators_throughput.png", rows)
    print(f"wrote {out / 'translators_throughput.md'} (.json, .png) in {meta['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
