"""SRGAN 4x super-resolution on real photos: PSNR / SSIM against bicubic, and the content-loss ablation.

    .venv/bin/python benchmarks/bench_superres.py [--translator MODEL_DIR]   # 2 data sets x 3 variants x 3 seeds
    .venv/bin/python benchmarks/bench_superres.py --quick                    # smoke run: tiny nets, a few steps

Data (``../shared/data``): the 199 clear nuScenes driving frames and the Multi-class Weather Dataset photos, each
resized (shorter side) and center-cropped to 256 px. Driving: 159 frames train / 40 test (permuted, seed 0);
weather: the data set's own train (1,044 photos, every class) / test (75) split. Per seed and data set three
``SRGANRecipe`` runs at 4x (random 64 px high-resolution crops, 16 px inputs; the upscaler with ``bicubic_skip``,
so it learns the residual over bicubic within a CPU budget): ``srgan`` (pixel + content in a self-trained
autoencoder's features + adversarial, the recipe's defaults) and ``srgan_no_content`` (``lambda_content=0``: pixel
+ adversarial), and ``srresnet`` (the pixel loss alone, no discriminator: the network SRGAN starts from, and the
PSNR-oriented control). Scored on the whole test images (64 -> 256 px, bicubic-downsampled with antialiasing as in
training) by :func:`synthaug.eval.evaluate_upscaler`: PSNR (dB) and SSIM on RGB in [0, 1], ``scale`` px shaved at
the borders, against bicubic upscaling of the same inputs (deterministic, so the paired difference per seed is the
model's gain). With ``--translator`` (a 32 px shine -> rain translator, e.g. one the weather study trained), one
picture shows the use of an upscaler after a low-resolution translator: a test photo translated at 32 px, then
brought to 128 px by bicubic and by the weather upscaler.

Every run is cached under ``runs/superres/`` (the Trainer resumes a killed run; a finished run's scores are a
JSON next to it), so rerunning the command continues. Outputs (``--out``; default benchmarks/results, --quick:
runs/studies_quick): superres.{md,json,png} (+ superres_translated.png), and study ``superres`` in headline.json.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402
from synthaug.eval.stats import mean_ci, paired_test  # noqa: E402

STEM = "superres"
SKIP = {"bicubic_skip": True, "output": "clamp"}  # learn the residual over bicubic: the CPU budget is small
FULL = dict(seeds=[0, 1, 2], steps=1500, size=256, n_weather_train=None, n_test=None,
            overrides=dict(g_kwargs={"nf": 32, "n_blocks": 4, **SKIP}))
QUICK = dict(seeds=[0], steps=6, size=64, n_weather_train=24, n_test=6,
             overrides=dict(crop=32, batch_size=2, g_kwargs={"nf": 8, "n_blocks": 1, **SKIP},
                            d_kwargs={"ndf": 8, "n_stages": 2},
                            content_encoder={"width": 4, "steps": 3, "batch_size": 4}))
VARIANTS = {"srgan": {}, "srgan_no_content": {"lambda_content": 0.0},
            "srresnet": {"lambda_content": 0.0, "lambda_adv": 0.0}}  # the pixel loss alone: SRGAN's starting point
METRICS = ("psnr", "ssim")


def load(cfg: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{data set: (train images, test images)}``, float NCHW in [-1, 1] at ``cfg["size"]`` px."""
    from synthaug.data import load_domain

    size = cfg["size"]
    frames = load_domain(str(H.DATA / "driving" / "clear_nuscenes" / "images"), size, 3).images
    perm = torch.randperm(len(frames), generator=torch.Generator().manual_seed(0))
    n_test = 40
    weather = H.DATA / "weather" / "mwd"
    w_train = load_domain(str(weather / "train"), size, 3).images
    w_test = load_domain(str(weather / "test"), size, 3).images
    out = {"driving": (frames[perm[n_test:]], frames[perm[:n_test]]), "weather": (w_train, w_test)}
    if cfg["n_weather_train"]:
        out["weather"] = (w_train[: cfg["n_weather_train"]], w_test)
    if cfg["n_test"]:
        out = {k: (a, b[: cfg["n_test"]]) for k, (a, b) in out.items()}
    return out


def run(cfg: dict, data: str, variant: str, seed: int, train: torch.Tensor, test: torch.Tensor, runs: Path) -> dict:
    """Train (or resume, or reuse) one upscaler and score it; the scores are cached as ``result.json``."""
    from synthaug.eval import evaluate_upscaler
    from synthaug.models import UpscalerModel
    from synthaug.train import SRGANConfig, SRGANRecipe, Trainer

    sr_cfg = SRGANConfig(steps=cfg["steps"], scale=4, **{**cfg.get("overrides", {}), **VARIANTS[variant]})
    key = H.config_hash({"data": data, "variant": variant, "seed": seed, "config": sr_cfg.__dict__,
                         "n_train": len(train), "size": cfg["size"]})
    run_dir = runs / f"{data}_{variant}_seed{seed}_{key}"
    cached = H.read_json(run_dir / "result.json")
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    recipe = SRGANRecipe(train, sr_cfg, device="cpu", seed=seed)
    res = Trainer(recipe, run_dir, cfg["steps"], log_every=50, sample_every=cfg["steps"], ckpt_every=250,
                  progress=False).fit()
    if res.interrupted or res.model_dir is None:
        raise SystemExit(f"{data} {variant} seed {seed}: interrupted at step {res.step}; rerun to resume")
    model = UpscalerModel.from_pretrained(res.model_dir, device="cpu")
    ev = evaluate_upscaler(model, test)
    out = {"data": data, "variant": variant, "seed": seed, "model_dir": str(res.model_dir), "train_s":
           time.perf_counter() - t0, "n_train": len(train), **{f"{k}": ev["model"][k] for k in METRICS},
           **{f"bicubic_{k}": ev["bicubic"][k] for k in METRICS}, "n_test": ev["n"]}
    H.write_json(run_dir / "result.json", out)
    return out


def summarise(rows: list[dict]) -> tuple[dict, list[dict]]:
    """Per (data set, variant): mean / CI of each metric and the paired gain over bicubic and over the ablation;
    and the headline records."""
    summary, records = {}, []
    for data in sorted({r["data"] for r in rows}):
        by = {v: sorted((r for r in rows if r["data"] == data and r["variant"] == v), key=lambda r: r["seed"])
              for v in VARIANTS}
        for m in METRICS:
            bic = [r[f"bicubic_{m}"] for r in by["srgan"]]
            summary[f"{data}/bicubic/{m}"] = mean_ci(bic)
            ref_row = {"arm": f"{data}/bicubic", **mean_ci(bic)}
            records.append(H.headline_record("superres", f"{data}/bicubic", None, m, ref_row, None, None))
            for v, vr in by.items():
                vals = [r[m] for r in vr]
                summary[f"{data}/{v}/{m}"] = mean_ci(vals)
                gain = paired_test(vals, [r[f"bicubic_{m}"] for r in vr]) if len(vals) > 1 else None
                summary[f"{data}/{v}/{m}/vs_bicubic"] = gain
                records.append(H.headline_record("superres", f"{data}/{v}", f"{data}/bicubic", m, mean_ci(vals), gain,
                                                 len(vals)))
            if len(by["srgan"]) > 1 and len(by["srgan"]) == len(by["srgan_no_content"]):
                d = paired_test([r[m] for r in by["srgan"]], [r[m] for r in by["srgan_no_content"]])
                summary[f"{data}/srgan/{m}/vs_no_content"] = d
                records.append(H.headline_record("superres", f"{data}/srgan", f"{data}/srgan_no_content", m,
                                                 mean_ci([r[m] for r in by["srgan"]]), d, len(by["srgan"])))
    return summary, records


@torch.no_grad()
def pictures(rows: list[dict], data: dict, out: Path, translator: str | None) -> list[str]:
    from synthaug.models import TranslatorModel, UpscalerModel
    from synthaug.nets.superres import bicubic_upscale, downscale
    from synthaug.utils import save_grid

    seed = min(r["seed"] for r in rows)
    model = {(r["data"], r["variant"]): UpscalerModel.from_pretrained(r["model_dir"])
             for r in rows if r["seed"] == seed}
    tiles, labels = [], []
    for name, (_, test) in data.items():
        hr = test[:4]
        lr = downscale(hr, 4)
        tiles += [hr, bicubic_upscale(lr, 4).clamp(-1, 1)] + [model[(name, v)].upscale(lr) for v in VARIANTS]
        labels += [f"{name} original", "bicubic x4", *(f"{v} x4" for v in VARIANTS)]
    save_grid(torch.cat(tiles), out / f"{STEM}.png", nrow=4, row_labels=labels,
              title=f"4x from {lr.shape[-1]} px inputs (test images, seed {seed})")
    written = [f"{STEM}.png"]
    if translator:
        rain = TranslatorModel.from_pretrained(translator)
        small = int(rain.config["image_size"])
        photos = data["weather"][1][:4]
        low = torch.nn.functional.interpolate(photos, size=small, mode="bilinear", antialias=True, align_corners=False)
        fake = rain.translate(low, direction="A2B")
        up = model[("weather", "srgan")]
        shown = torch.nn.functional.interpolate(photos, size=4 * small, mode="bilinear", antialias=True,
                                                align_corners=False)
        save_grid(torch.cat([shown, bicubic_upscale(fake, 4).clamp(-1, 1), up.upscale(fake)]),
                  out / f"{STEM}_translated.png", nrow=4,
                  row_labels=["test photo", f"{small} px translation, bicubic x4", f"{small} px translation, SRGAN x4"],
                  title="a low-resolution translator's output brought up by the weather upscaler")
        written.append(f"{STEM}_translated.png")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    H.add_quick_arguments(ap)
    ap.add_argument("--translator", default=None, help="a 32 px shine -> rain translator model directory")
    ap.add_argument("--no-headline", action="store_true")
    args = ap.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out = H.report_dir(args)
    runs = (H.QUICK_DIR if args.quick else ROOT / "runs") / "superres"
    torch.set_num_threads(1)
    t0, machine = time.perf_counter(), H.machine()
    data = load(cfg)
    rows = []
    for seed in cfg["seeds"]:
        for name, (train, test) in data.items():
            for v in VARIANTS:
                r = run(cfg, name, v, seed, train, test, runs)
                rows.append(r)
                print(f"seed {seed} {name:8s} {v:17s} PSNR {r['psnr']:.2f} (bicubic {r['bicubic_psnr']:.2f}) "
                      f"SSIM {r['ssim']:.4f} (bicubic {r['bicubic_ssim']:.4f}), {r['train_s']:.0f} s", flush=True)
    summary, records = summarise(rows)
    figs = pictures(rows, data, out, args.translator)
    res = {"quick": args.quick, "config": cfg, "rows": rows, "summary": summary, "headline": records,
           "figures": figs, "translator": args.translator, "machine": machine, "wall_s": time.perf_counter() - t0,
           "data": {k: {"train": len(a), "test": len(b)} for k, (a, b) in data.items()},
           "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/bench_superres.py",
                                                        *(sys.argv[1:] if argv is None else map(str, argv))])}
    H.write_json(out / f"{STEM}.json", res)
    write_markdown(out / f"{STEM}.md", res)
    if not args.quick and not args.no_headline:
        H.update_headline("superres", records)
    print(f"wrote {out / STEM}.md (.json, .png) in {res['wall_s']:.0f} s")
    return 0


def write_markdown(path: Path, res: dict) -> None:
    cfg, s, f = res["config"], res["summary"], H.fmt_interval
    L = H.report_head("SRGAN 4x super-resolution: PSNR / SSIM against bicubic",
                      res, "tiny nets, a few steps, small images")
    L += [
          "", f"Data (train / test images at {cfg['size']} px): "
          + "; ".join(f"{k} {v['train']} / {v['test']}" for k, v in res["data"].items())
          + f". Seeds {cfg['seeds']}; each run {cfg['steps']} steps of the SRGAN recipe's defaults (upscaler SRResNet "
          "nf 32 / 4 blocks with `bicubic_skip=True` (it learns the residual over bicubic), VGG-style discriminator "
          "from half the run, content encoder trained on the crops), "
          "`srgan_no_content` with `lambda_content=0`, `srresnet` with the pixel loss alone. Scores on the whole "
          "test images (RGB, 4 px shaved), the same inputs for bicubic.", "",
          "| data | metric | bicubic | arm | arm mean [95% CI] | arm - bicubic, paired by seed [95% CI], p |",
          "|---|---|---|---|---|---|"]
    for data in res["data"]:
        for m in METRICS:
            digits = 4 if m == "ssim" else 2

            def ci(k, digits=digits):
                r = s.get(k)
                return "-" if r is None else f(r["mean"], r["lo"], r["hi"], digits)

            def dd(k, digits=digits):
                return H.fmt_diff(s.get(k), digits) if s.get(k) else "n/a (one seed)"
            for v in VARIANTS:
                L.append(f"| {data} | {m} | {ci(f'{data}/bicubic/{m}')} | {v} | {ci(f'{data}/{v}/{m}')} | "
                         f"{dd(f'{data}/{v}/{m}/vs_bicubic')} |")
    L += ["", "Content-loss ablation (`srgan` - `srgan_no_content`, paired by seed): " + "; ".join(
        f"{data} {m} {H.fmt_diff(s[k], 4 if m == 'ssim' else 2)}" for data in res["data"] for m in METRICS
        if (k := f"{data}/srgan/{m}/vs_no_content") in s) + "."]
    L += ["", "Per run: " + "; ".join(f"{r['data']} {r['variant']} seed {r['seed']}: {r['psnr']:.2f} dB / "
                                      f"{r['ssim']:.4f}, {r['train_s'] / 60:.1f} min" for r in res["rows"]) + ".",
          "", *(f"![{p}]({p})" for p in res["figures"]), ""]
    if res["translator"]:
        L += [f"Translator for the second picture: `{res['translator']}`.", ""]
    path.write_text("\n".join(L))


if __name__ == "__main__":
    sys.exit(main())
