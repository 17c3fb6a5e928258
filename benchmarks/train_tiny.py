"""Train a tiny cGAN or CycleGAN in its own process, for the kill / signal / full-disk checks of
``tests/test_reliability.py`` and ``benchmarks/reliability.py`` (launched through ``reliability_cases.launch``).

    python benchmarks/train_tiny.py RECIPE OUT STEPS CKPT_EVERY [options]

RECIPE is ``cgan`` (28 px, the shipped BreastMNIST, ``--n-per-class`` images per class) or ``cyclegan``
(32 px RGB, two small real domains: ``weather/mwd/train/{shine,rain}`` from the shared data folder, or
BreastMNIST's two classes when it is absent). Running the same command again resumes from the newest
checkpoint in OUT, like ``synthaug train``. stdout gets one JSON line when the trainer starts
(``{"event": "start", "resume_from": step or null}``) and one when it returns (``{"event": "end", "status":
"done" | "interrupted", "step": ...}``). Exit codes follow the CLI: 0 when the run finished or was stopped
by SIGINT/SIGTERM with a final checkpoint, 2 on a library error (the message on stderr).

Fault hooks (instrumentation for these checks only, never used by the library):

* ``--replace-delay S``: sleep ``S`` s just before each atomic rename, so a kill can land while a
  checkpoint's temp file is complete but not yet in place.
* ``--fsize-limit-after-step N --fsize-limit BYTES``: after step N, ``setrlimit(RLIMIT_FSIZE)`` so the
  kernel refuses to write files larger than BYTES (``EFBIG``), as on a full quota: checkpoint writes fail.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TINY_CGAN_G = {"base_channels": 8, "max_channels": 16, "z_dim": 16}
TINY_CGAN_D = {"base_channels": 8, "max_channels": 16}
TINY_CYCLE_G = {"ngf": 8, "n_blocks": 2}
TINY_CYCLE_D = {"ndf": 8, "n_layers": 2}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("recipe", choices=["cgan", "cyclegan"])
    p.add_argument("out")
    p.add_argument("steps", type=int)
    p.add_argument("ckpt_every", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=1)
    p.add_argument("--sample-every", type=int, default=10_000)
    p.add_argument("--n-per-class", type=int, default=32, help="cgan: BreastMNIST images per class")
    p.add_argument("--n-images", type=int, default=16, help="cyclegan: images per domain")
    p.add_argument("--domains", default=None, help="cyclegan: 'A_FOLDER,B_FOLDER' (default: shared weather)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--replace-delay", type=float, default=0.0)
    p.add_argument("--fsize-limit-after-step", type=int, default=None)
    p.add_argument("--fsize-limit", type=int, default=4096)
    return p.parse_args(argv)


def cyclegan_domains(args):
    from synthaug.data import from_arrays, load_breastmnist, load_image_dir, shared_data_dir

    if args.domains:
        a_dir, b_dir = (Path(s) for s in args.domains.split(","))
    else:
        root = shared_data_dir()
        a_dir = root / "weather/mwd/train/shine" if root else None
        b_dir = root / "weather/mwd/train/rain" if root else None
    if a_dir is not None and a_dir.is_dir() and b_dir.is_dir():
        def pick(folder):
            files = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            return load_image_dir(folder, size=32, channels=3, files=files[: args.n_images])
        return pick(a_dir), pick(b_dir), (a_dir.name, b_dir.name), "weather/mwd/train shine vs rain, 32 px RGB"
    import torch.nn.functional as F

    ds = load_breastmnist(n_per_class=args.n_images, seed=args.seed)
    up = F.interpolate(ds.images, size=(32, 32), mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)
    a, b = up[ds.labels == 0], up[ds.labels == 1]
    return (from_arrays(a, value_range=(-1, 1), name="malignant"), from_arrays(b, value_range=(-1, 1), name="benign"),
            ("malignant", "benign"), "BreastMNIST malignant vs benign at 32 px (no shared data)")


def build(args):
    from synthaug.train import CGANConfig, CGANRecipe, CycleGANConfig, CycleGANRecipe

    if args.recipe == "cgan":
        from synthaug.data import load_breastmnist

        data = load_breastmnist(n_per_class=args.n_per_class, seed=args.seed)
        cfg = CGANConfig(g_kwargs=dict(TINY_CGAN_G), d_kwargs=dict(TINY_CGAN_D), batch_size=args.batch_size or 16)
        return CGANRecipe(data, cfg, device="cpu", seed=args.seed)
    a, b, names, _ = cyclegan_domains(args)
    cfg = CycleGANConfig(steps=args.steps, g_kwargs=dict(TINY_CYCLE_G), d_kwargs=dict(TINY_CYCLE_D), pool_size=4,
                         batch_size=args.batch_size or 1)
    return CycleGANRecipe(a, b, cfg, device="cpu", seed=args.seed, names=names)


def install_fault_hooks(args, recipe) -> None:
    if args.replace_delay > 0:
        import time

        import synthaug.io as sio

        real_replace = os.replace

        class _SlowOS:  # only synthaug.io sees the delayed rename
            def __getattr__(self, name):
                return getattr(os, name)

            @staticmethod
            def replace(src, dst):
                time.sleep(args.replace_delay)
                return real_replace(src, dst)

        sio.os = _SlowOS()
    if args.fsize_limit_after_step is not None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        original = recipe.train_step

        def step(i):
            out = original(i)
            if i + 1 == args.fsize_limit_after_step:
                resource.setrlimit(resource.RLIMIT_FSIZE, (args.fsize_limit, resource.RLIM_INFINITY))
            return out

        recipe.train_step = step


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from synthaug.train import Trainer

    try:
        recipe = build(args)
        install_fault_hooks(args, recipe)
        trainer = Trainer(recipe, args.out, args.steps, log_every=args.log_every, sample_every=args.sample_every,
                          ckpt_every=args.ckpt_every, progress=False)
        latest = trainer.latest_checkpoint()
        start = json.loads((trainer.ckpt_dir / "latest.json").read_text())["step"] if latest else None
        print(json.dumps({"event": "start", "pid": os.getpid(), "resume_from": start}), flush=True)
        result = trainer.fit()
    except (ValueError, TypeError, FileNotFoundError, OSError) as e:
        print(f"train_tiny: error: {e}", file=sys.stderr, flush=True)
        return 2
    print(json.dumps({"event": "end", "status": "interrupted" if result.interrupted else "done", "step": result.step,
                      "rollbacks": result.rollbacks}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
