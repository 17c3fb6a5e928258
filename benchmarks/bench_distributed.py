"""Data-parallel scaling on CPU: one process vs two torchrun processes (gloo), same global batch.

    python benchmarks/bench_distributed.py [--repeats 5] [--steps 40]

Trains the default 28 px cGAN on the shipped BreastMNIST through the CLI (`synthaug train cgan`), once as a
single process with 2 torch threads and once as `torchrun --nproc_per_node 2` with 1 thread per rank, global
batch 64 in both. Steps/s is read from metrics.jsonl (time between the first and the last logged step, so
start-up is excluded). Writes benchmarks/results/distributed.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness as H  # noqa: E402

RETRIES: list[dict] = []  # failed launches that were relaunched (reported in the JSON)


def run_once(nproc: int, steps: int, out: Path) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1" if nproc > 1 else "2"}
    cli = ["-m", "synthaug.cli", "train", "cgan", "--data", "breastmnist", "--steps", str(steps),
           "--batch-size", "64", "--log-every", "5", "--ckpt-every", str(10 * steps), "--sample-every",
           str(10 * steps), "--no-progress", "--device", "cpu", "--out", str(out)]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *cli]
    else:
        cmd = [sys.executable, *cli]
    for attempt in (1, 2):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        if done.returncode == 0:
            break
        # A launch can lose its rendezvous port to another process between torchrun picking it and binding it
        # (other torchrun jobs on the machine, e.g. tests in a parallel worker): relaunch once from scratch.
        RETRIES.append({"nproc": nproc, "returncode": done.returncode, "stderr_tail": done.stderr[-3000:]})
        if attempt == 2:
            raise RuntimeError(f"{' '.join(cmd)} failed twice (exit {done.returncode}); its stderr ends:\n"
                               + done.stderr[-6000:])
        shutil.rmtree(out, ignore_errors=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return (rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["time"] - rows[0]["time"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40)
    H.add_quick_arguments(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.steps = 2, 10
    out_dir = H.report_dir(args)

    from synthaug.eval.stats import mean_ci, paired_test

    t0, load0 = time.time(), os.getloadavg()[0]
    rates = {1: [], 2: []}
    RETRIES.clear()
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # interleaved so both see the same machine load
            for n in ((1, 2) if r % 2 == 0 else (2, 1)):
                rates[n].append(run_once(n, args.steps, Path(tmp) / f"n{n}_r{r}"))
    summary = {n: mean_ci(v) for n, v in rates.items()}
    speedup = paired_test(rates[2], rates[1])
    ratio = mean_ci(np.array(rates[2]) / np.array(rates[1]))
    meta = {"command": "python benchmarks/bench_distributed.py " + " ".join(sys.argv[1:] if argv is None else argv),
            **H.machine(), "wall_seconds": round(time.time() - t0, 1),
            "load_average_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)], "relaunched": RETRIES}
    (out_dir / "distributed.json").write_text(json.dumps(
        {"meta": meta, "steps_per_s": {str(k): v for k, v in rates.items()},
         "summary": {str(k): v for k, v in summary.items()}, "ratio_2_over_1": ratio, "paired": speedup},
        indent=2))
    s1, s2 = summary[1], summary[2]
    lines = [
        "# Data-parallel training: 1 vs 2 processes on CPU", "",
        f"Command: `{meta['command']}` — wall time {meta['wall_seconds']} s.  ",
        H.machine_line(meta, f"load average before/after {meta['load_average_before_after']}") + "  ",
        f"Default 28 px cGAN on the shipped BreastMNIST, global batch 64, {args.steps} steps per run, "
        f"{args.repeats} interleaved repeats; 1 process uses 2 torch threads, 2 processes (torchrun, gloo) use 1 "
        "thread each, so both use both cores.", "",
        "| setup | steps/s (mean [95% CI]) | images/s |", "|---|---:|---:|",
        f"| 1 process x 2 threads | {s1['mean']:.2f} [{s1['lo']:.2f}, {s1['hi']:.2f}] | {64 * s1['mean']:.0f} |",
        f"| 2 processes x 1 thread (gloo) | {s2['mean']:.2f} [{s2['lo']:.2f}, {s2['hi']:.2f}] | "
        f"{64 * s2['mean']:.0f} |", "",
        f"Ratio 2-process / 1-process: {ratio['mean']:.2f} [{ratio['lo']:.2f}, {ratio['hi']:.2f}] "
        f"(paired t-test on steps/s, p = {speedup['p_value']:.3f}).", "",
        "## Reading", "",
        "On 2 cores the two setups use the same hardware, so this measures the overhead and the efficiency of "
        "splitting work across processes (per-rank batch 32, one gradient all-reduce per optimiser step) against "
        "intra-op threading, not more compute. Processes help where one process cannot keep the cores busy "
        "(small convolutions thread poorly); the all-reduce of ~0.3 M parameters over gloo costs little at this "
        "model size.", "",
        "## Expected picture on GPUs (an estimate, not a measurement)", "",
        "No GPU was lent to this session, so multi-GPU scaling was not measured. What to expect: with nccl, one "
        "process per GPU and a fixed per-GPU batch, throughput grows close to linearly with the number of GPUs "
        "as long as the step time dominates the all-reduce of the gradients (0.3-1 M parameters for the default "
        "nets: well under a millisecond on NVLink); with a fixed *global* batch, as here, each GPU gets a smaller "
        "share and the tiny default nets at 28 px would be launch-bound long before that. Use `--sync-batchnorm` "
        "for the DCGAN's BatchNorm on GPUs; on CPU BatchNorm statistics stay per rank.",
    ]
    (out_dir / "distributed.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3))
    means = [s1["mean"], s2["mean"]]
    err = [[s1["mean"] - s1["lo"], s2["mean"] - s2["lo"]], [s1["hi"] - s1["mean"], s2["hi"] - s2["mean"]]]
    ax.bar(["1 proc x 2 thr", "2 procs x 1 thr"], means, yerr=err, capsize=5, color=["#4c72b0", "#55a868"])
    ax.set_ylabel("steps / s (95% CI)")
    ax.set_title("cGAN 28 px, global batch 64, CPU")
    fig.tight_layout()
    fig.savefig(out_dir / "distributed.png", dpi=120)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
