"""How close synthaug's CPU training steps come to the machine's matrix-multiply rate (FLOP/s against a GEMM).

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_cpu_efficiency.py          # full run (~12-15 min)
    .venv/bin/python benchmarks/bench_cpu_efficiency.py --quick --out /tmp/eff           # smoke run (~20 s)
    .venv/bin/python benchmarks/bench_cpu_efficiency.py --report-only                    # re-render .md/.png

(--quick: 2 rounds of one step a block, 32 px translators, batch-8 classifiers, a 1024 x 1024 GEMM; no headline.)

Cases (one training step each, data random tensors in memory, float32, run as the library runs them on a CPU:
classifiers and the cGAN channels_last, ``synthaug.utils.keep_freed_memory`` in effect):

- ``cgan``: ``CGANRecipe.train_step`` with ``CGANConfig()``'s defaults (DCGAN generator, spectral-norm projection
  discriminator, DiffAugment, EMA; batch 64) on BreastMNIST-sized data (546 images, 1 x 28 x 28, 2 classes);
- ``cyclegan`` / ``fastcut``: ``CycleGANRecipe`` / ``FastCUTRecipe.train_step`` with their default configs and
  nets (batch 1) at 64 px, on the random domains of ``benchmarks/bench_reference.py``; ``cyclegan_transposed``: the
  CycleGAN with the reference's stride-2 transposed-conv upsampling (``upsample="transposed"``) instead of the
  default nearest + 3x3 conv;
- ``small_cnn`` / ``lenet`` / ``resnet18_small``: the classifiers of ``synthaug.eval.classifier`` at 28 px, batch
  64, 2 classes: one AdamW step (lr 1e-3, weight decay 1e-4, as ``train_classifier``) = forward + cross-entropy +
  backward + step;
- ``gemm``: ``torch.mm`` of two 2048 x 2048 float32 matrices (into a preallocated output), the peak to compare with.

FLOPs per step are counted once per case with ``torch.utils.flop_counter.FlopCounterMode`` (matrix multiplies and
convolutions, forward and backward; elementwise ops, norms and optimiser updates count 0 FLOPs, so a step that
spends its time there shows a low efficiency). Every case is built and warmed up, its block size set so that a
block takes about ``--block-seconds`` at 1 thread; then ``--rounds`` rounds each time one block of every (case,
threads) pair, threads in {1, 2} via ``torch.set_num_threads``, in an order shuffled per round. Achieved FLOP/s =
FLOPs x steps / block time, wall-clock and per CPU-second of the process (``time.process_time``; the machine is
shared). Efficiency = a case's FLOP/s / the GEMM's FLOP/s at the same thread count in the same round, so a
round's load affects both; mean and 95% t-interval over rounds.

Outputs (``--out``; default benchmarks/results, --quick: runs/bench_quick): cpu_efficiency.{md,json,png}; full runs
(not --quick, not --no-headline) replace study ``efficiency`` in headline.json: metric ``gemm_fraction`` per case
and thread count (wall-clock; per CPU-second in cpu_*), reference arm the GEMM at that thread count.
"""

from __future__ import annotations

import argparse
import random
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import bench_reference as REF  # noqa: E402
from benchmarks import harness as H  # noqa: E402
from synthaug.eval import mean_ci  # noqa: E402

STEM = "cpu_efficiency"
QUICK_OUT = ROOT / "runs" / "bench_quick"
THREADS = (1, 2)
GEMM_N = 2048
CASES = ("cgan", "cyclegan", "cyclegan_transposed", "fastcut", "small_cnn", "lenet", "resnet18_small", "gemm")
VECTOR_PREFIXES = ("sse4", "avx", "fma", "f16c", "amx")


def vector_extensions() -> list[str]:
    """Every SSE4 / AVX / FMA / F16C / AMX flag of the CPU (``/proc/cpuinfo``), for the report."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(f for f in line.split(":", 1)[1].split() if f.startswith(VECTOR_PREFIXES))
    except OSError:
        pass
    return []


# ----------------------------------------------------------------------------- the cases
def _counter(fn):
    """A step function that passes the step index ``fn`` expects (0, 1, 2, ...)."""
    steps = iter(range(10**9))
    return lambda: fn(next(steps))




def build_cgan(quick: bool, seed: int):
    from synthaug.data import ImageDataset
    from synthaug.train import CGANConfig, CGANRecipe

    g = torch.Generator().manual_seed(seed)
    images = torch.rand(546, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.arange(546) % 2
    cfg = CGANConfig()
    r = CGANRecipe(ImageDataset(images, labels, ["benign", "malignant"]), cfg, device="cpu", seed=seed)
    return _counter(r.train_step), {"size": 28, "batch": cfg.batch_size,
                                    "what": f"CGANRecipe, CGANConfig() ({cfg.generator} G, {cfg.discriminator} D)"}


def build_translation(name: str, quick: bool, seed: int):
    from synthaug.data import ImageDataset
    from synthaug.train import CycleGANConfig, CycleGANRecipe, FastCUTConfig, FastCUTRecipe

    size = 32 if quick else 64
    transposed = CycleGANConfig(g_kwargs={**CycleGANConfig().g_kwargs, "upsample": "transposed"})
    cls, cfg = {"cyclegan": (CycleGANRecipe, CycleGANConfig()), "cyclegan_transposed": (CycleGANRecipe, transposed),
                "fastcut": (FastCUTRecipe, FastCUTConfig())}[name]
    a, b = REF.domains(size, seed=seed)
    zeros = torch.zeros(len(a), dtype=torch.long)
    r = cls(ImageDataset(a, zeros), ImageDataset(b, zeros), cfg, device="cpu", seed=seed)
    return _counter(r.train_step), {"size": size, "batch": cfg.batch_size,
                                    "what": f"{cls.__name__}, default config ({cfg.generator} G"
                                            f"{', transposed-conv upsampling' if name == 'cyclegan_transposed' else ''}"
                                            f", {cfg.discriminator} D{', bf16' if r.cpu_bf16 else ''})"}


def build_classifier_step(arch: str, quick: bool, seed: int):
    from synthaug.eval.classifier import build_classifier

    batch = 8 if quick else 64
    torch.manual_seed(seed)
    model = build_classifier(arch, 1, 2, 28).to(memory_format=torch.channels_last)  # as train_classifier on a CPU
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(batch, 1, 28, 28, generator=g) * 2 - 1, torch.randint(0, 2, (batch,), generator=g)
    x = x.contiguous(memory_format=torch.channels_last)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    return step, {"size": 28, "batch": batch, "what": f"{type(model).__name__}, AdamW step"}


def gemm_size(quick: bool) -> int:
    return GEMM_N // 2 if quick else GEMM_N


def build_gemm(quick: bool, seed: int):
    n = gemm_size(quick)
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(n, n, generator=g) for _ in range(2))
    out = torch.empty(n, n)
    return (lambda: torch.mm(a, b, out=out)), {"size": n, "batch": 1, "what": f"torch.mm {n}x{n} float32"}


def build(name: str, quick: bool, seed: int = 0):
    if name == "cgan":
        return build_cgan(quick, seed)
    if name in ("cyclegan", "cyclegan_transposed", "fastcut"):
        return build_translation(name, quick, seed)
    if name == "gemm":
        return build_gemm(quick, seed)
    return build_classifier_step(name, quick, seed)


def count_flops(fn) -> tuple[int, dict]:
    """(total FLOPs, FLOPs by operator) of one call of ``fn`` under torch's FLOP counter."""
    with FlopCounterMode(display=False) as fc:
        fn()
    by_op = {str(op).replace("aten.", ""): int(v) for op, v in fc.get_flop_counts().get("Global", {}).items()}
    return int(fc.get_total_flops()), dict(sorted(by_op.items(), key=lambda kv: -kv[1]))


def label(case: dict) -> str:
    return case["key"] if case["key"] == "gemm" else f"{case['key']}_{case['size']}px"


# ----------------------------------------------------------------------------- timing
def prepare(names, quick: bool, block_s: float, seed: int) -> list[dict]:
    """Build each case, count its FLOPs (that step is the first warm-up), warm it up at every thread count and size
    its block from a timed warm step at 1 thread (``quick``: the counted step is the only warm-up, one step a block)."""
    cases = []
    for name in names:
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        fn, info = build(name, quick, seed)
        flops, by_op = count_flops(fn)
        for t in THREADS:  # one step at each thread count: the first step at a new count is several times slower
            torch.set_num_threads(t)
            fn()
        torch.set_num_threads(1)
        step_s, steps = None, 1
        if not quick:
            fn()
            w0 = time.perf_counter()
            fn()
            step_s = time.perf_counter() - w0
            steps = max(1, round(block_s / step_s))
        c = {"key": name, **info, "fn": fn, "flops": flops, "flops_by_op": by_op, "calibration_step_s": step_s,
             "steps": steps}
        c["label"] = label(c)
        cases.append(c)
        timed = f"{step_s:.3f} s/step at 1 thread, " if step_s is not None else ""
        print(f"built + warmed up {c['label']}: {flops / 1e9:.2f} GFLOP/step, {timed}{steps} steps per block "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    return cases


def run_rounds(cases: list[dict], rounds: int, seed: int) -> list[list[str]]:
    """``rounds`` rounds, each timing one block of every (case, threads) in a shuffled order; fills
    ``c['wall_s'][t]`` / ``c['cpu_s'][t]`` (lists over rounds); returns each round's order."""
    for c in cases:
        c["wall_s"], c["cpu_s"] = {t: [] for t in THREADS}, {t: [] for t in THREADS}
    units = [(c, t) for c in cases for t in THREADS]
    orders = []
    t_start = time.perf_counter()
    for r in range(rounds):
        order = list(units)
        random.Random(seed * 1000 + r).shuffle(order)
        orders.append([f"{c['key']}@{t}" for c, t in order])
        for c, t in order:
            torch.set_num_threads(t)
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(c["steps"]):
                c["fn"]()
            c["wall_s"][t].append(time.perf_counter() - w0)
            c["cpu_s"][t].append(time.process_time() - c0)
        el = time.perf_counter() - t_start
        print(f"round {r + 1}/{rounds} done ({el:.0f} s, about {el / (r + 1) * (rounds - r - 1):.0f} s left), "
              f"load average {H.machine()['load_average']}", flush=True)
    torch.set_num_threads(1)
    return orders


def summarise(cases: list[dict]) -> None:
    """Per (case, threads): FLOP/s and efficiency against the same round's GEMM, wall-clock and per CPU-second."""
    gemm = next(c for c in cases if c["key"] == "gemm")
    for c in cases:
        c.pop("fn", None)
        c["by_threads"] = {}
        for t in THREADS:
            wall, cpu = np.array(c["wall_s"][t]), np.array(c["cpu_s"][t])
            gw, gc = np.array(gemm["wall_s"][t]), np.array(gemm["cpu_s"][t])
            work, gwork = c["flops"] * c["steps"], gemm["flops"] * gemm["steps"]
            rate_w, rate_c = work / wall, work / cpu
            eff_w, eff_c = rate_w / (gwork / gw), rate_c / (gwork / gc)
            c["by_threads"][t] = {
                "sec_per_step": mean_ci(wall / c["steps"]), "cpu_sec_per_step": mean_ci(cpu / c["steps"]),
                "gflops_wall": mean_ci(rate_w / 1e9), "gflops_cpu": mean_ci(rate_c / 1e9),
                "efficiency_wall": mean_ci(eff_w), "efficiency_cpu": mean_ci(eff_c),
                "per_round_efficiency_wall": eff_w.tolist(), "per_round_efficiency_cpu": eff_c.tolist(),
                "cpu_over_wall": float(np.mean(cpu / wall))}
        for t in THREADS:
            b = c["by_threads"][t]
            print(f"{c['label']:24s} {t} thread(s): {b['gflops_wall']['mean']:6.1f} GFLOP/s wall "
                  f"({b['efficiency_wall']['mean']:.2f} of GEMM), {b['gflops_cpu']['mean']:6.1f} per CPU-s "
                  f"({b['efficiency_cpu']['mean']:.2f}), CPU/wall {b['cpu_over_wall']:.2f}", flush=True)


def headline_records(cases: list[dict], gemm_n: int = GEMM_N) -> list[dict]:
    """Study ``efficiency``: metric ``gemm_fraction`` (wall-clock, paired per round with the GEMM at the same thread
    count; per CPU-second in cpu_*), one record per case and thread count."""
    recs = []
    for c in cases:
        if c["key"] == "gemm":
            continue
        for t in THREADS:
            b = c["by_threads"][t]
            rec = H.headline_record("efficiency", f"{c['label']}_{t}threads", f"gemm_{gemm_n}_{t}threads",
                                    "gemm_fraction", b["efficiency_wall"], None, None)
            e = b["efficiency_cpu"]
            rec.update(protocol=f"{t} thread(s), FLOP/s over the same round's GEMM, wall-clock",
                       cpu_mean=e["mean"], cpu_ci_low=e["lo"], cpu_ci_high=e["hi"],
                       gflop_per_step=c["flops"] / 1e9, gflops_wall=b["gflops_wall"]["mean"])
            recs.append(rec)
    return recs


# ----------------------------------------------------------------------------- reports
def observations(res: dict) -> list[str]:
    """Plain facts read off the numbers: the furthest case from the GEMM rate, and 1 -> 2 thread scaling."""
    cases = [c for c in res["cases"] if c["key"] != "gemm"]
    out = []
    for t in THREADS:
        eff = {c["label"]: c["by_threads"][t]["efficiency_cpu"]["mean"] for c in cases}
        lo, hi = min(eff, key=eff.get), max(eff, key=eff.get)
        out.append(f"At {t} thread(s), per CPU-second: furthest from the GEMM rate `{lo}` ({eff[lo]:.2f}), "
                   f"closest `{hi}` ({eff[hi]:.2f}).")
    for c in res["cases"]:
        b1, b2 = c["by_threads"][1], c["by_threads"][2]
        speedup = b1["sec_per_step"]["mean"] / b2["sec_per_step"]["mean"]
        out.append(f"`{c['label']}`: 2 threads run a step {speedup:.2f}x as fast as 1 (wall-clock), using "
                   f"{b2['cpu_over_wall']:.2f} CPU-s per second.")
    return out


def write_markdown(path: Path, res: dict) -> None:
    f, cf = H.fmt_interval, res["cpu_features"]
    gemm = next(c for c in res["cases"] if c["key"] == "gemm")
    lines = H.report_head("CPU efficiency: training steps' FLOP/s against a GEMM measured in the same run", res,
                          "one step a block, 32 px translators, batch-8 classifiers, a 1024 GEMM, 2 rounds")
    lines += [
        "",
        f"Load average at start {res['machine']['load_average']}, at end {res['load_average_end']} "
        f"({res['machine']['nproc']} CPUs; other jobs were running: the GEMM, timed in every round, takes the same "
        "load, which is why each efficiency is a per-round ratio).",
        "",
        f"OMP_WAIT_POLICY={res['machine']['OMP_WAIT_POLICY']}. "
        f"CPU: {res['machine']['cpu']}; vector extensions: {', '.join(res['vector_extensions']) or 'none found'}. "
        f"Flags of interest: {', '.join(f'{k} ' + ('yes' if v else 'no') for k, v in cf['flags'].items())}; torch CPU "
        f"capability {cf['torch_cpu_capability']}, oneDNN {cf['mkldnn']}, oneDNN bf16 {cf['mkldnn_bf16_supported']}.",
        "",
        f"Protocol: {res['protocol']}",
        "",
        "## Efficiency (fraction of the GEMM's FLOP/s at the same thread count, same round; mean [95% CI])",
        "",
        "| case | step | size | batch | GFLOP/step | threads | s/step (wall) | GFLOP/s wall | GFLOP/s per CPU-s | "
        "efficiency, wall-clock | efficiency, per CPU-s | CPU/wall | steps/block |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in res["cases"]:
        for t in THREADS:
            b = c["by_threads"][t]
            ew, ec, gw, gc = b["efficiency_wall"], b["efficiency_cpu"], b["gflops_wall"], b["gflops_cpu"]
            lines.append(
                f"| {c['label']} | {c['what']} | {c['size']} | {c['batch']} | {c['flops'] / 1e9:.2f} | {t} | "
                f"{b['sec_per_step']['mean']:.4f} | {f(gw['mean'], gw['lo'], gw['hi'], 1)} | "
                f"{f(gc['mean'], gc['lo'], gc['hi'], 1)} | {f(ew['mean'], ew['lo'], ew['hi'], 2)} | "
                f"{f(ec['mean'], ec['lo'], ec['hi'], 2)} | {b['cpu_over_wall']:.2f} | {c['steps']} |")
    lines += [
        "",
        f"GEMM rate (the reference): 1 thread {f(*_mlh(gemm['by_threads'][1]['gflops_wall']), 1)} GFLOP/s wall-clock, "
        f"{f(*_mlh(gemm['by_threads'][1]['gflops_cpu']), 1)} per CPU-second; 2 threads "
        f"{f(*_mlh(gemm['by_threads'][2]['gflops_wall']), 1)} wall-clock, "
        f"{f(*_mlh(gemm['by_threads'][2]['gflops_cpu']), 1)} per CPU-second.",
        "",
        "## Where each step's FLOPs are (torch's FLOP counter, by operator)",
        "",
        "| case | " + " | ".join(("convolution", "convolution_backward", "mm / addmm / bmm", "other")) + " |",
        "|---|---|---|---|---|",
    ]
    for c in res["cases"]:
        ops, tot = c["flops_by_op"], max(c["flops"], 1)
        conv = sum(v for k, v in ops.items() if k.startswith("convolution.") or k == "convolution")
        convb = sum(v for k, v in ops.items() if k.startswith("convolution_backward"))
        mm = sum(v for k, v in ops.items() if k.split(".")[0] in ("mm", "addmm", "bmm", "baddbmm"))
        lines.append(f"| {c['label']} | {conv / tot:.0%} | {convb / tot:.0%} | {mm / tot:.0%} | "
                     f"{(tot - conv - convb - mm) / tot:.0%} |")
    lines += [
        "",
        "## Observations",
        "",
        *[f"- {o}" for o in observations(res)],
        "",
        "Notes: the FLOP counter counts matrix multiplies and convolutions (forward and backward) only; normalisation, "
        "activations, losses, augmentation, spectral-norm power iterations' vector products, EMA and optimiser "
        "updates are memory-bound work that counts 0 FLOPs, so an efficiency well below 1 says how much of a step "
        "is not large dense arithmetic (or is arithmetic on shapes too small to run at the GEMM rate). The "
        "per-CPU-second figures estimate a core of one's own on this shared machine; at 2 threads, CPU/wall below "
        "2 means the second thread waited (OMP_WAIT_POLICY=PASSIVE lets it sleep) or the other core was busy.",
        "",
        f"![efficiency]({STEM}.png)",
        "",
    ]
    path.write_text("\n".join(lines))


def _mlh(row: dict) -> tuple:
    return row["mean"], row["lo"], row["hi"]


def write_plot(path: Path, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = [c for c in res["cases"] if c["key"] != "gemm"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    x = np.arange(len(cases), dtype=float)
    for ax, kind, title in ((axes[0], "efficiency_wall", "wall-clock"), (axes[1], "efficiency_cpu", "per CPU-second")):
        for i, (t, color) in enumerate(zip(THREADS, ("tab:blue", "tab:orange"))):
            rows = [c["by_threads"][t][kind] for c in cases]
            m = np.array([r["mean"] for r in rows])
            lo = np.array([r["lo"] if r["lo"] == r["lo"] else r["mean"] for r in rows])
            hi = np.array([r["hi"] if r["hi"] == r["hi"] else r["mean"] for r in rows])
            ax.bar(x + (i - 0.5) * 0.38, m, width=0.36, yerr=[m - lo, hi - m], capsize=2, color=color,
                   label=f"{t} thread{'s' if t > 1 else ''}")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels([c["label"] for c in cases], rotation=25, ha="right", fontsize=8)
        ax.set_title(f"FLOP/s / GEMM FLOP/s ({title})", fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("fraction of the same round's GEMM rate\n(mean, 95% t-interval over rounds)")
    fig.suptitle(f"{res['machine']['cpu']}, torch {res['machine']['torch']}" + (" (smoke run)" if res["quick"] else ""),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke run: tiny blocks, 2 rounds, written to {QUICK_OUT}")
    ap.add_argument("--out", type=Path, default=None, help="report folder (default benchmarks/results; --quick: "
                                                          "runs/bench_quick)")
    ap.add_argument("--rounds", type=int, default=None, help="timed rounds (default 12, >= 5; --quick: 2)")
    ap.add_argument("--block-seconds", type=float, default=None,
                    help="target seconds of one block at 1 thread (default 4; --quick: one step a block)")
    ap.add_argument("--cases", nargs="+", choices=CASES[:-1], default=list(CASES[:-1]),
                    help="cases to time (the GEMM always runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-headline", action="store_true", help="do not write the records to headline.json")
    ap.add_argument("--report-only", action="store_true", help="re-render the .md and .png from the JSON in --out")
    args = ap.parse_args(argv)
    from synthaug.utils import keep_freed_memory

    keep_freed_memory()  # as the Trainer and train_classifier do on a CPU
    if args.report_only:
        out = args.out or (QUICK_OUT if args.quick else H.RESULTS)
        res = H.read_json(out / f"{STEM}.json")
        if res is None:
            ap.error(f"--report-only: expected {out / STEM}.json, found none")
        for c in res["cases"]:
            c["by_threads"] = {int(t): b for t, b in c["by_threads"].items()}
        write_markdown(out / f"{STEM}.md", res)
        write_plot(out / f"{STEM}.png", res)
        print(f"re-rendered {out / STEM}.md (.png)")
        return 0
    rounds = args.rounds or (2 if args.quick else 12)
    if rounds < 5 and not args.quick:
        ap.error(f"--rounds: expected >= 5, found {rounds}")
    gemm_n = gemm_size(args.quick)
    block_s = args.block_seconds if args.block_seconds is not None else 4.0
    blocks = "warmed up at 1 and 2 threads, " + ("one step a block" if args.quick else
                                                 f"its block sized to ~{block_s:g} s at 1 thread")
    out = args.out or (QUICK_OUT if args.quick else H.RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    t0, machine = time.perf_counter(), H.machine()
    print(f"{machine['cpu']}, load average {machine['load_average']}", flush=True)
    if (machine["OMP_WAIT_POLICY"] or "").upper() != "PASSIVE":
        print("warning: OMP_WAIT_POLICY is not PASSIVE: on a shared machine, spinning OpenMP threads make the 2-thread "
              "steps several times slower", flush=True)
    cases = prepare([*args.cases, "gemm"], args.quick, block_s, args.seed)
    orders = run_rounds(cases, rounds, args.seed)
    summarise(cases)
    words = sys.argv[1:] if argv is None else [str(a) for a in argv]
    res = {
        "quick": args.quick,
        "command": " ".join(shlex.quote(a) for a in [*H.ISA_ENV_SET, "OMP_WAIT_POLICY=PASSIVE", ".venv/bin/python",
                                                     "benchmarks/bench_cpu_efficiency.py", *words]),
        "machine": machine, "load_average_end": H.machine()["load_average"],
        "cpu_features": REF.cpu_features(), "vector_extensions": vector_extensions(),
        "threads": list(THREADS), "rounds": rounds, "block_seconds": None if args.quick else block_s,
        "gemm_n": gemm_n,
        "protocol": (f"each case built, its FLOPs counted once (torch.utils.flop_counter.FlopCounterMode, one step), "
                     f"{blocks}; then {rounds} rounds, each timing one block of every (case, threads) pair in an "
                     "order shuffled per round (`round_orders`); FLOP/s = FLOPs x steps / block time, wall-clock "
                     f"and per CPU-second of the process; efficiency = that / the GEMM's ({gemm_n}x{gemm_n} float32 "
                     "torch.mm) FLOP/s at the same thread count in the same round; mean and 95% Student-t interval "
                     "over rounds (synthaug.eval.mean_ci). Random data in memory, float32, the library's CPU "
                     "defaults (channels_last classifiers and cGAN, keep_freed_memory)."),
        "cases": cases, "round_orders": orders, "wall_s": time.perf_counter() - t0,
    }
    H.write_json(out / f"{STEM}.json", res)
    write_markdown(out / f"{STEM}.md", res)
    write_plot(out / f"{STEM}.png", res)
    if not args.quick and not args.no_headline:
        H.update_headline("efficiency", headline_records(cases, gemm_n))
    print(f"wrote {out / STEM}.md (.json, .png) in {res['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
