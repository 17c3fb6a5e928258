"""The CPU defaults, each against what it replaced: paired, interleaved steps per CPU-second on one thread.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_cpu_defaults.py        # full run (~10 min)
    .venv/bin/python benchmarks/bench_cpu_defaults.py --quick --out /tmp/defaults      # smoke run

Cases (``new`` / ``old``; random batches of 64 in memory, or BreastMNIST for the cGAN; AdamW for classifiers):

- ``cgan_minibatch_std``: the default cGAN step with ``MinibatchStdDev``'s group variance written out / aten's ``var``
  over the group dim;
- ``cgan_channels_last``: the default cGAN step with G, D and the EMA copy channels_last (as ``CGANRecipe`` makes
  them on CPU) / NCHW;
- ``cgan_frozen_d``: the default cGAN step with the discriminator's parameters frozen in the generator's step
  (``Recipe.frozen``: no weight gradients that would be thrown away; the same update, bit for bit) / not frozen;
- ``cgan_keep_freed_memory``, ``small_cnn_28_keep_freed_memory``: the step in a process where
  ``synthaug.utils.keep_freed_memory`` is in effect (as the Trainer and ``train_classifier`` make it on a CPU) / with
  glibc's malloc defaults (each variant in fresh processes, one per round);
- ``cgan_vs_issue_31``: the default cGAN step now / as it was when issue 31 was filed (all four changes above
  undone; fresh processes as well): the issue's ">= 1.5x today's step rate" measure;
- ``small_cnn_28``, ``small_cnn_32_rgb``, ``lenet_32_rgb``, ``resnet18_small_28``: one classifier training step
  channels_last (as ``train_classifier`` runs on CPU) / NCHW.

Each case runs in a process of its own, once with the machine's full instruction set and once limited to AVX2
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2``: PyTorch's kernels,
oneDNN's and MKL's; the committed report of 2026-12-07 ran without the MKL limit, which only the cGAN's small
linear layers use), ``--rounds`` rounds of one
block of each variant in alternating order. Reported: the ratio new / old per round, mean and 95% t-interval.
Writes cpu_defaults.{md,json,png} (``--out``; default benchmarks/results, --quick: runs/bench_quick).
"""

from __future__ import annotations

import argparse
import contextlib
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
CASES = ("cgan_minibatch_std", "cgan_channels_last", "cgan_frozen_d", "cgan_keep_freed_memory", "cgan_vs_issue_31",
         *CLASSIFIERS, "small_cnn_28_keep_freed_memory")
AVX2 = H.AVX2_LIMITS


def _old_minibatch_std(self, x):
    """MinibatchStdDev.forward as it was: aten's var over the group dim."""
    n, c, h, w = x.shape
    g = min(self.group_size, n)
    while n % g:
        g -= 1
    grouped = x.float().reshape(g, n // g, c, h, w)
    s = (grouped.var(dim=0, unbiased=False) + self.eps).sqrt().mean(dim=(1, 2, 3))
    return torch.cat([x, s.to(x.dtype).repeat(g)[:, None, None, None].expand(n, 1, h, w)], dim=1)


def _not_frozen(self, *names):
    """Recipe.frozen undone: the discriminator keeps its parameter gradients in the generator's step."""
    return contextlib.nullcontext()


# what the "old" variant of each case undoes; "keep_freed_memory" is process-wide, so those cases run each variant
# in processes of their own (a fresh process per round and variant, interleaved), the others both in one
UNDO = {"cgan_minibatch_std": {"minibatch_std"}, "cgan_channels_last": {"channels_last"},
        "cgan_frozen_d": {"frozen_d"}, "cgan_keep_freed_memory": {"keep_freed_memory"},
        "cgan_vs_issue_31": {"minibatch_std", "channels_last", "frozen_d", "keep_freed_memory"},
        "small_cnn_28_keep_freed_memory": {"keep_freed_memory"},
        **{c: {"channels_last"} for c in CLASSIFIERS}}
PER_PROCESS = {c for c, undo in UNDO.items() if "keep_freed_memory" in undo}


def _steppers(case: str, quick: bool, variants=("new", "old")) -> dict:
    """``{variant: fn(k)}``: each runs k training steps of its variant."""
    undos = {v: set() if v == "new" else UNDO[case] for v in variants}
    if "new" in variants and case in PER_PROCESS:
        from synthaug.utils import keep_freed_memory

        assert keep_freed_memory(), "keep_freed_memory is not in effect on this machine"
    if case.startswith("cgan"):
        from synthaug.data import load_breastmnist
        from synthaug.nets import layers
        from synthaug.train import CGANConfig, CGANRecipe

        new_forward, new_frozen = layers.MinibatchStdDev.forward, CGANRecipe.frozen
        train = load_breastmnist("train")
        cfg = CGANConfig(batch_size=16) if quick else CGANConfig()
        out = {}
        for variant, undo in undos.items():
            r = CGANRecipe(train, cfg, device="cpu", seed=0, progress=False)
            if "channels_last" in undo:
                for net in (r.G, r.D, r.ema):
                    net.to(memory_format=torch.contiguous_format)
            forward = _old_minibatch_std if "minibatch_std" in undo else new_forward
            frozen = _not_frozen if "frozen_d" in undo else new_frozen
            state = {"step": 0}

            def run(k, r=r, forward=forward, frozen=frozen, state=state):
                layers.MinibatchStdDev.forward, CGANRecipe.frozen = forward, frozen
                for _ in range(k):
                    r.train_step(state["step"])
                    state["step"] += 1
            out[variant] = run
        return out
    from synthaug.nets.classifiers import build_classifier

    arch, channels, size = CLASSIFIERS[case.removesuffix("_keep_freed_memory")]
    batch = 8 if quick else 64
    x, y = torch.randn(batch, channels, size, size), torch.randint(0, 10, (batch,))
    out = {}
    for variant, undo in undos.items():
        fmt = torch.contiguous_format if "channels_last" in undo else torch.channels_last
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


def worker(case: str, rounds: int, block_s: float, quick: bool, variant: str | None = None) -> dict:
    """One case in this process: steps per CPU-second of each variant per round; with ``variant``, that variant
    only, one block of at least ``block_s`` CPU-seconds after two warm-up steps."""
    torch.set_num_threads(1)
    if variant is not None:
        run = _steppers(case, quick, (variant,))[variant]
        run(2)
        steps, c0 = 0, time.process_time()
        while (spent := time.process_time() - c0) < block_s or steps == 0:
            run(1)
            steps += 1
        return {"case": case, "variant": variant, "rate": steps / spent, "isa": torch.backends.cpu.get_cpu_capability()}
    steppers = _steppers(case, quick)
    t0 = time.process_time()
    steppers["new"](1)
    steppers["old"](1)
    per_step = max((time.process_time() - t0) / 2, 1e-4)
    k = max(1, int(block_s / per_step))
    rates = {"new": [], "old": []}
    for rnd in range(rounds):
        for v in ("old", "new") if rnd % 2 == 0 else ("new", "old"):
            c0 = time.process_time()
            steppers[v](k)
            rates[v].append(k / (time.process_time() - c0))
    return {"case": case, "steps_per_block": k, "rates": rates,
            "isa": torch.backends.cpu.get_cpu_capability()}


def _spawn(args: list[str], env: dict, what: str) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=env, capture_output=True,
                          text=True, timeout=1800, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{what} failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(case: str, isa_env: dict, rounds: int, block_s: float, quick: bool) -> dict:
    """``worker``'s result for ``case``; a PER_PROCESS case as fresh processes, one per round and variant."""
    # the ISA limits this run asks for and no other; no inherited malloc settings (keep_freed_memory yields to them)
    skip = {*AVX2, "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"}
    env = {**{k: v for k, v in os.environ.items() if k not in skip}, "OMP_NUM_THREADS": "1",
           "OMP_WAIT_POLICY": "PASSIVE", **isa_env}
    common = ["--worker", case, "--block-seconds", str(block_s), *(["--quick"] if quick else [])]
    if case not in PER_PROCESS:
        return _spawn([*common, "--rounds", str(rounds)], env, case)
    rates, isa = {"new": [], "old": []}, None
    for rnd in range(rounds):
        for v in ("old", "new") if rnd % 2 == 0 else ("new", "old"):
            r = _spawn([*common, "--variant", v], env, f"{case} ({v})")
            rates[v].append(r["rate"])
            isa = r["isa"]
    return {"case": case, "steps_per_block": None, "rates": rates, "isa": isa}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--block-seconds", type=float, default=1.5)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    H.add_quick_arguments(ap)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.rounds, args.block_seconds, args.quick, args.variant)))
        return 0
    if args.quick:
        args.rounds, args.block_seconds = 2, 0.05
    out_dir = args.out or (ROOT / "runs" / "bench_quick" if args.quick else H.RESULTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    from synthaug.eval import bar_chart, mean_ci

    t0, rows = time.time(), []
    cases = ("small_cnn_28", "cgan_frozen_d", "small_cnn_28_keep_freed_memory") if args.quick else CASES
    for isa, extra in (("native", {}), ("avx2", AVX2)):
        for case in cases:
            if args.quick and isa == "avx2" and case != "small_cnn_28":
                continue  # the smoke run spawns as few processes as it can
            r = measure(case, extra, args.rounds, args.block_seconds, args.quick)
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
             "`avx2`: the same machine with " + " ".join(f"`{k}={v}`" for k, v in AVX2.items())
             + " (an emulation of an AVX2-only CPU's kernels, not of its clock or caches).", "",
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
