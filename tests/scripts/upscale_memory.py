"""Time and peak memory of ``synthaug upscale`` on full-size frames (issue 32): prints one JSON line.

    .venv/bin/python tests/scripts/upscale_memory.py --frames 5 --size 800x450            # the issue's case
    .venv/bin/python tests/scripts/upscale_memory.py --frames 5 --size 400x225            # a second frame size

The upscaler is an untrained SRResNet of ``SRGANConfig``'s default size (``nf`` 32, 4 blocks, 4x): the time and the
memory of a forward pass do not depend on its weights. The frames are the first ``--frames`` clear driving frames of
``../shared/data`` resized to ``--size`` (random images where that folder is absent). The command runs in this
process (``synthaug.cli.main``); the peak resident set is reset just before it (Linux ``VmHWM``), so ``peak_rss_mb``
is the peak of the whole upscaling and ``baseline_rss_mb`` the resident set before it (Python, torch and the model
loaded). Time per megapixel counts input pixels (the output has
``scale**2`` times more). ``tests/test_srgan.py`` runs it small.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from synthaug.cli import main as cli  # noqa: E402
from synthaug.data import shared_data_dir  # noqa: E402
from synthaug.models import UPSCALE_MEMORY_MB, UpscalerModel  # noqa: E402
from synthaug.nets import create_net  # noqa: E402
from synthaug.train import SRGANConfig  # noqa: E402


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def reset_peak() -> float:
    """Start a new peak (Linux: ``/proc/self/clear_refs`` 5 resets VmHWM to the current RSS); the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    now = _status_mb("VmRSS")
    return now if now is not None else peak_mb()


def peak_mb() -> float:
    """The peak resident set since :func:`reset_peak`: VmHWM, whose high-water mark, unlike ``ru_maxrss``, is not
    inherited from the process that started this one (a pytest worker of several GB); ``ru_maxrss`` elsewhere."""
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frames(n: int, w: int, h: int):
    shared = shared_data_dir()
    folder = shared / "driving" / "clear_nuscenes" / "images" if shared else None
    files = sorted(folder.glob("*.jpg"))[:n] if folder and folder.is_dir() else []
    rng = np.random.default_rng(0)
    for i in range(n):
        if i < len(files):
            yield Image.open(files[i]).convert("RGB").resize((w, h), Image.BICUBIC)
        else:
            yield Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--size", default="800x450", help="WIDTHxHEIGHT of the input frames")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--max-memory-mb", type=float, default=UPSCALE_MEMORY_MB)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--g-kwargs", default=None, help="JSON upscaler arguments (default: SRGANConfig's)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    g_kwargs = json.loads(args.g_kwargs) if args.g_kwargs else SRGANConfig().g_kwargs
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        net = create_net("srresnet", channels=3, scale=args.scale, **g_kwargs)
        UpscalerModel(net, {"kind": "srgan", "scale": args.scale, "channels": 3}, device="cpu") \
            .save_pretrained(tmp / "model")
        (tmp / "in").mkdir()
        for i, img in enumerate(frames(args.frames, w, h)):
            img.save(tmp / "in" / f"frame_{i:03d}.png")
        model = UpscalerModel.from_pretrained(tmp / "model", device="cpu")
        model.bytes_per_pixel()  # the probe, as the command will run it
        baseline = reset_peak()
        t0 = time.perf_counter()
        code = cli(["upscale", str(tmp / "model"), "--in", str(tmp / "in"), "--out", str(tmp / "out"),
                    "--device", "cpu", "--max-memory-mb", str(args.max_memory_mb)])
        seconds = time.perf_counter() - t0
        peak = peak_mb()
        out = sorted((tmp / "out").glob("*.png"))
        assert code == 0 and len(out) == args.frames and Image.open(out[0]).size == (w * args.scale, h * args.scale)
    mp = args.frames * w * h / 1e6
    result = {"frames": args.frames, "size": f"{w}x{h}", "scale": args.scale, "threads": args.threads,
              "g_kwargs": g_kwargs, "max_memory_mb": args.max_memory_mb, "tiled": model.images_per_pass(
                  h, w, args.max_memory_mb) == 0, "bytes_per_pixel": model.bytes_per_pixel(),
              "receptive_radius": model.receptive_radius(), "seconds": round(seconds, 2),
              "seconds_per_megapixel": round(seconds / mp, 2), "peak_rss_mb": round(peak, 1),
              "baseline_rss_mb": round(baseline, 1), "upscaling_rss_mb": round(peak - baseline, 1)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
