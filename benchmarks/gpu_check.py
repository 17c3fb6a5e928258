"""The CUDA paths in one short run, for a session that is lent a GPU: AMP, torchrun with nccl, SyncBatchNorm, and
the time of a training step.

    python benchmarks/gpu_check.py --out $OUT          # on a CUDA machine: about 2 min after the install
    python benchmarks/gpu_check.py --quick             # the same code paths on the CPU, a few steps (run by the tests)

Each check is recorded as passed / failed (with the error) / skipped (with why), next to what it measured:

* ``cgan_amp`` / ``cgan_fp32``: the default cGAN on the shipped BreastMNIST, ``--steps`` steps with AMP (float16
  autocast + GradScaler, the CUDA default) and without; finite losses, the scaler's state, samples in [-1, 1],
  seconds per step after a warm-up (``torch.cuda.synchronize`` around the timed block) and the AMP speed-up.
* ``cyclegan_amp``: a CycleGAN step at 64 px on random images (ResNet-6 ngf 32), finite losses, seconds per step.
* ``classifier_resnet18_small``: a training step of the MedMNIST reference network at batch 64, seconds per step.
* ``torchrun``: ``torchrun --nproc_per_node N`` on ``synthaug train cgan --arch biggan --sync-batchnorm`` (N = the
  number of GPUs; nccl and SyncBatchNorm need N >= 2 distinct GPUs, so with one GPU the multi-rank part is
  skipped and a single-rank run still checks the command under torchrun). --quick: 2 gloo ranks on the CPU
  without --sync-batchnorm (which needs CUDA).

Writes ``gpu_check.{md,json}`` under ``--out`` (default benchmarks/results; --quick: runs/studies_quick).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402

STEM = "gpu_check"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(recipe, steps: int, warmup: int = 3) -> tuple[float, list[dict]]:
    """Seconds per ``train_step`` over ``steps`` steps after ``warmup`` untimed ones, and every step's losses."""
    logs = [recipe.train_step(i) for i in range(warmup)]
    _sync(recipe.device)
    t0 = time.perf_counter()
    logs += [recipe.train_step(warmup + i) for i in range(steps)]
    _sync(recipe.device)
    return (time.perf_counter() - t0) / steps, logs


def finite(logs: list[dict]) -> None:
    bad = [(i, k, v) for i, row in enumerate(logs) for k, v in row.items()
           if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise AssertionError(f"losses: expected finite values, found {bad[:3]}")


def check_cgan(device: str, amp: bool, steps: int) -> dict:
    from synthaug.data import load_breastmnist
    from synthaug.train import CGANConfig, CGANRecipe

    recipe = CGANRecipe(load_breastmnist("train"), CGANConfig(amp=amp), device=device, seed=0)
    s, logs = time_steps(recipe, steps)
    finite(logs)
    with torch.no_grad():
        x = recipe.ema.module(torch.randn(16, recipe.G.z_dim, device=recipe.device),
                              torch.arange(16, device=recipe.device) % recipe.num_classes)
    if not (x.min() >= -1 and x.max() <= 1):
        raise AssertionError(f"samples: expected values in [-1, 1], found [{x.min():.3f}, {x.max():.3f}]")
    out = {"s_per_step": s, "amp_active": recipe.amp, "batch": recipe.config.batch_size, "last": logs[-1]}
    if recipe.amp:
        out["grad_scale"] = float(recipe.scaler.get_scale())
    return out


def check_cyclegan(device: str, steps: int, size: int) -> dict:
    from synthaug.data import ImageDataset
    from synthaug.train import CycleGANConfig, CycleGANRecipe

    g = torch.Generator().manual_seed(0)
    a, b = (ImageDataset(torch.rand(16, 3, size, size, generator=g) * 2 - 1, torch.zeros(16, dtype=torch.long))
            for _ in range(2))
    cfg = CycleGANConfig(steps=steps + 3, g_kwargs={"ngf": 32, "n_blocks": 6}, d_kwargs={"ndf": 32})
    recipe = CycleGANRecipe(a, b, cfg, device=device, seed=0)
    s, logs = time_steps(recipe, steps)
    finite(logs)
    return {"s_per_step": s, "amp_active": recipe.amp, "size": size, "last": logs[-1]}


def check_classifier(device: str, steps: int, warmup: int) -> dict:
    from synthaug.eval.classifier import resnet18_small

    dev = torch.device(device)
    net = resnet18_small(1, 2).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x, y = torch.randn(64, 1, 28, 28, device=dev), torch.randint(0, 2, (64,), device=dev)

    def step():
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    _sync(dev)
    t0 = time.perf_counter()
    losses = [step() for _ in range(steps)]
    _sync(dev)
    if not losses[-1] < losses[0]:
        raise AssertionError(f"loss on one fixed batch: expected it to go down, found {losses[0]:.3f} -> "
                             f"{losses[-1]:.3f}")
    return {"s_per_step": (time.perf_counter() - t0) / steps, "batch": 64, "loss_first": losses[0],
            "loss_last": losses[-1]}


def check_torchrun(quick: bool, steps: int) -> dict:
    n_gpu = torch.cuda.device_count()
    nproc = 2 if quick else max(1, n_gpu)
    cli = ["-m", "synthaug.cli", "train", "cgan", "--data", "breastmnist", "--arch", "biggan", "--steps", str(steps),
           "--log-every", "1", "--ckpt-every", str(steps), "--sample-every", str(steps), "--no-progress",
           "--device", "cpu" if quick else "cuda"]
    if not quick:
        cli.append("--sync-batchnorm")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *cli,
               "--out", tmp]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if r.returncode:
            raise AssertionError(f"torchrun: expected exit 0, found {r.returncode}: {r.stderr[-1500:]}")
        rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        if not (Path(tmp) / "model" / "config.json").is_file():
            raise AssertionError("torchrun: expected model/config.json written by rank 0, found none")
    out = {"nproc": nproc, "backend": "gloo" if quick else "nccl", "sync_batchnorm": not quick,
           "steps_logged": len(rows), "wall_s": time.perf_counter() - t0}
    if not quick and nproc < 2:
        out["skipped_part"] = (f"{n_gpu} GPU: nccl and SyncBatchNorm need 2 or more ranks on distinct GPUs, so "
                               "this single-rank run checks only the command under torchrun on CUDA")
    return out


def run_check(name: str, fn, results: dict) -> None:
    t0 = time.perf_counter()
    try:
        results[name] = {"status": "passed", **fn()}
    except Exception as e:  # a failed check is a result to report, not a reason to stop the others
        results[name] = {"status": "failed", "error": f"{type(e).__name__}: {e}",
                         "traceback": traceback.format_exc()[-2000:]}
    results[name]["check_s"] = time.perf_counter() - t0
    print(f"{name:28s} {results[name]['status']:7s} {json.dumps({k: v for k, v in results[name].items() if k not in ('traceback', 'last')}, default=str)[:300]}", flush=True)  # noqa: E501


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    H.add_quick_arguments(ap)
    ap.add_argument("--steps", type=int, default=None, help="timed steps per check (default 50; --quick 2)")
    args = ap.parse_args(argv)
    out = H.report_dir(args)
    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        raise SystemExit("gpu_check: expected a CUDA device, found none (use --quick to run the code paths on CPU)")
    steps = args.steps or (2 if args.quick else 50)
    device = "cuda" if cuda and not args.quick else "cpu"
    t0 = time.perf_counter()
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": device,
           "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
           "bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()),
           "nccl": bool(cuda and torch.distributed.is_nccl_available())}
    print(json.dumps(env), flush=True)
    results: dict = {}
    run_check("cgan_amp", lambda: check_cgan(device, True, steps), results)
    run_check("cgan_fp32", lambda: check_cgan(device, False, steps), results)
    run_check("cyclegan_amp", lambda: check_cyclegan(device, steps, 32 if args.quick else 64), results)
    run_check("classifier_resnet18_small", lambda: check_classifier(device, steps + 1, 1 if args.quick else 3), results)
    run_check("torchrun", lambda: check_torchrun(args.quick, 4 if args.quick else 40), results)
    a, f = results["cgan_amp"], results["cgan_fp32"]
    if a["status"] == f["status"] == "passed":
        results["cgan_amp"]["speedup_vs_fp32"] = f["s_per_step"] / a["s_per_step"]
    res = {"quick": args.quick, "env": env, "results": results, "steps": steps, "machine": H.machine(),
           "wall_s": time.perf_counter() - t0}
    H.write_json(out / f"{STEM}.json", res)
    write_markdown(out / f"{STEM}.md", res)
    n_failed = sum(r["status"] == "failed" for r in results.values())
    print(f"wrote {out / STEM}.md (.json): {len(results) - n_failed} passed, {n_failed} failed")
    return 1 if n_failed else 0


def write_markdown(path: Path, res: dict) -> None:
    env = res["env"]
    L = [f"# {'QUICK (CPU): ' if res['quick'] else ''}CUDA paths: AMP, torchrun / nccl, SyncBatchNorm, step times", "",
         f"torch {env['torch']} (CUDA {env['cuda']}), device {env['device']}, GPUs {env['gpus'] or 'none'}, "
         f"bf16 {env['bf16_supported']}, nccl {env['nccl']}; {res['steps']} timed steps per check after warm-up steps; "
         f"total {res['wall_s']:.0f} s.", "", "| check | status | s per step | notes |", "|---|---|---|---|"]
    for name, r in res["results"].items():
        notes = r.get("error") or "; ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in r.items()
                                           if k not in ("status", "s_per_step", "last", "traceback", "check_s"))
        s = f"{r['s_per_step']:.4f}" if "s_per_step" in r else "-"
        L.append(f"| {name} | {r['status']} | {s} | {notes} |")
    path.write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    sys.exit(main())
