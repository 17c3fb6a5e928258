"""The CPU defaults, each against what it replaced: paired, interleaved steps per CPU-second on one thread.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_cpu_defaults.py        # full run (~10 min)
    .venv/bin/python benchmarks/bench_cpu_defaults.py --quick --out /tmp/defaults      # smoke run

Cases (``new`` / ``old``; random batches of 64 in memory, or BreastMNIST for the cGAN; AdamW for classifiers):

- ``cgan_minibatch_std``: the default cGAN step with ``MinibatchStdDev``'s group variance written out / aten's ``var``
  over the group dim;
- ``cgan_channels_last``: the default cGAN step with G, D and the EMA copy channels_last (as ``CGANRecipe`` makes
  them on CPU) / NCHW;
- ``small_cnn_28``, ``small_cnn_32_rgb``, ``lenet_32_rgb``, ``resnet18_small_28``: one classifier training step
  channels_last (as ``train_classifier`` runs on CPU) / NCHW.

Each case runs in a process of its own, once with the machine's full instruction set and once limited to AVX2
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: PyTorch's kernels and oneDNN's), ``--rounds`` rounds of one
block of each variant in alternating order. Reported: the ratio new / old per round, mean and 95% t-interval.
Writes cpu_defaults.{md,json,png} (``--out``; default benchmarks/results, --quick: runs/bench_quick).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402

STEM = "cpu_defaults"
CLASSIFIERS = {"small_cnn_28": ("small_cnn", 1, 28), "small_cnn_32_rgb": ("small_cnn", 3, 32),
               "lenet_32_rgb": ("lenet", 3, 32), "resnet18_small_28": ("resnet18_small", 1, 28)}
CASES = ("cgan_minibatch_std", "cgan_channels_last", *CLASSIFIERS)
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def _old_minibatch_std(self, x):
    """MinibatchStdDev.forward as it was: aten's var over the group dim."""
    n, c, h, w = x.shape
    g = min(self.group_size, n)
    while n % g:
        g -= 1
    grouped = x.float().reshape(g, n // g, c, h, w)
    s = (grouped.var(dim=0, unbiased=False) + self.eps).sqrt().mean(dim=(1, 2, 3))
    return torch.cat([x, s.to(x.dtype).repeat(g)[:, None, None, None].expand(n, 1, h, w)], dim=1)


def _steppers(case: str, quick: bool) -> dict:
    """``{"new": fn(k), "old": fn(k)}``: each runs k training steps of its variant."""
    if case.startswith("cgan"):
        from synthaug.data import load_breastmnist
        from synthaug.nets import layers
        from synthaug.train import CGANConfig, CGANRecipe

        new_forward = layers.MinibatchStdDev.forward
        train = load_breastmnist("train")
        cfg = CGANConfig(batch_size=16) if quick else CGANConfig()
        out = {}
        for variant in ("new", "old"):
            r = CGANRecipe(train, cfg, device="cpu", seed=0, progress=False)
            if case == "cgan_channels_last" and variant == "old":
                for net in (r.G, r.D, r.ema):
                    net.to(memory_format=torch.contiguous_format)
            forward = new_forward if case != "cgan_minibatch_std" or variant == "new" else _old_minibatch_std
            state = {"step": 0}

            def run(k, r=r, forward=forward, state=state):
                layers.MinibatchStdDev.forward = forward
                for _ in range(k):
                    r.train_step(state["step"])
                    state["step"] += 1
            out[variant] = run
        return out
    from synthaug.nets.classifiers import build_classifier

    arch, channels, size = CLASSIFIERS[case]
    batch = 8 if quick else 64
    x, y = torch.randn(batch, channels, size, size), torch.randint(0, 10, (batch,))
    out = {}
    for variant, fmt in (("new", torch.channels_last), ("old", torch.contiguous_format)):
        torch.manual_seed(0)
        m = build_classifier(arch, channels, 10, size, width=32).to(memory_format=fmt)
        opt = torch.optim.AdamW(m.parameters(), 1e-3, weight_decay=1e-4)
        xx = x.contiguous(memory_format=fmt)

        def run(k, m=m, opt=opt, xx=xx):
            for _ in range(k):
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(m(xx), y).backward()
                opt.step()
        out[variant] = run
    return out


def worker(case: str, rounds: int, block_s: float, quick: bool) -> dict:
    """One case in this process: steps per CPU-second of each variant per round."""
    torch.set_num_threads(1)
    steppers = _steppers(case, quick)
    t0 = time.process_time()
    steppers["new"](1)
    steppers["old"](1)
    per_step = max((time.process_time() - t0) / 2, 1e-4)
    k = max(1, int(block_s / per_step))
    rates = {"new": [], "old": []}
    for rnd in range(rounds):
        for variant in ("old", "new") if rnd % 2 == 0 else ("new", "old"):
            c0 = time.process_time()
            steppers[variant](k)
            rates[variant].append(k / (time.process_time() - c0))
    return {"case": case, "steps_per_block": k, "rates": rates,
            "isa": torch.backends.cpu.get_cpu_capability()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--block-seconds", type=float, default=1.5)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    H.add_quick_arguments(ap)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.rounds, args.block_seconds, args.quick)))
        return 0
    if args.quick:
        args.rounds, args.block_seconds = 2, 0.05
    out_dir = args.out or (ROOT / "runs" / "bench_quick" if args.quick else H.RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    from synthaug.eval import bar_chart, mean_ci

    t0, rows = time.time(), []
    cases = CASES[:1] + CASES[2:3] if args.quick else CASES
    for isa, extra in (("native", {}), ("avx2", AVX2)):
        for case in cases:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", case, "--rounds", str(args.rounds),
                   "--block-seconds", str(args.block_seconds), *(["--quick"] if args.quick else [])]
            env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", **extra}
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT)
            if done.returncode:
                raise RuntimeError(f"{case} ({isa}) failed: {done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            ratio = np.array(r["rates"]["new"]) / np.array(r["rates"]["old"])
            rows.append({**r, "variant_isa": isa, "arm": f"{case} ({isa})", **mean_ci(ratio),
                         "new_mean": float(np.mean(r["rates"]["new"])), "old_mean": float(np.mean(r["rates"]["old"]))})
            print(f"{case} ({isa}, {r['isa']}): new/old {rows[-1]['mean']:.3f} [{rows[-1]['lo']:.3f}, "
                  f"{rows[-1]['hi']:.3f}]", flush=True)
    meta = {"command": "python benchmarks/bench_cpu_defaults.py " + " ".join(sys.argv[1:] if argv is None else argv),
            **H.machine(), "wall_seconds": round(time.time() - t0, 1)}
    H.write_json(out_dir / f"{STEM}.json", {"quick": args.quick, "rounds": args.rounds, "meta": meta, "rows": rows})
    bar_chart(rows, "new / old steps per CPU-second", out_dir / f"{STEM}.png",
              title="CPU defaults: new / old, 1 thread (paired rounds)")
    smoke = " (QUICK smoke run: not a measurement)" if args.quick else ""
    lines = [f"# CPU defaults against what they replaced{smoke}",
             "", f"Command: `{meta['command']}` -- wall time {meta['wall_seconds']:.0f} s.  ",
             H.machine_line(meta) + "  ",
             f"One thread, {args.rounds} interleaved rounds per case; steps per CPU-second (`time.process_time`). "
             "`avx2`: the same machine with `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` (an emulation of an "
             "AVX2-only CPU's kernels, not of its clock or caches).", "",
             "| case | instruction set used | old steps/CPU-s | new steps/CPU-s | new / old [95% CI] |",
             "|---|---|---:|---:|---|"]
    lines += [f"| {r['case']} | {r['isa']} | {r['old_mean']:.2f} | {r['new_mean']:.2f} | "
              f"{H.fmt_interval(r['mean'], r['lo'], r['hi'], 3)} |" for r in rows]
    lines += ["", "A default is kept where it wins (interval above 1) on the instruction set it was measured on and "
                  "loses (interval below 1) on none.", ""]
    (out_dir / f"{STEM}.md").write_text("\n".join(lines))
    print(f"wrote {out_dir / STEM}.md (.json, .png)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
