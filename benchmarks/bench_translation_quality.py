"""Translators at equal CPU time: how target-like is the output, and how much of the input's content survives?

    .venv/bin/python benchmarks/bench_translation_quality.py                 # 2 cases x 7 translators, ~105 min
    .venv/bin/python benchmarks/bench_translation_quality.py --quick         # smoke run: a few seconds each

Cases (A -> B, 64 px training images, as in ``translation_showcase.py``): driving (199 clear nuScenes frames ->
283 unique DAWN fog photos) and weather (MWD train shine -> train rain; scored on the held-out test shine photos).
Translators, each trained for the same CPU time (``--budget-min``; the step count is set from a timed warm-up):

* ``cyclegan``: CycleGAN, ResNet-6 ngf 16, PatchGAN ndf 16 (the showcase's settings);
* ``cut``: CUT with the same generator and discriminator (one-sided, PatchNCE with the identity term, the paper's
  defaults);
* ``fastcut``: FastCUT with the same generator and discriminator (no identity NCE, lambda_nce 10, flips);
* ``cyclegan_lptn``: CycleGAN with the Laplacian-pyramid translator (``generator="lptn"``, 2 levels: the low band
  of a 64 px image is 16 px; detail bands refined by masks), which ``translate`` applies at the input's own size;
* ``fastcut_lptn``: FastCUT with that translator, PatchNCE on the maps of its low-band CNN (one-sided, no cycle);
* ``cyclegan_structure2`` / ``cyclegan_structure10``: ``cyclegan`` plus the structure term (``lambda_structure`` 2 or
  10, :func:`synthaug.losses.structure_loss`: local correlation with the input, blind to haze and contrast down to
  a quarter), both weights fixed before any run and both reported (a dose-response, not a choice).

Measured on the test inputs (driving: every clear frame, which all train the translators; weather: the 20 test
shine photos), at 64 px: **KID** to the real B images in the features of a domain encoder (a SmallCNN trained to
tell real A from real B; lower is more B-like) and its **P(B)** (mean probability of "B" it gives the
translations); **edge SSIM**: SSIM between the Sobel edge magnitudes of the input and of the translation (luma;
1 = every edge kept). For driving also at full frame size (800x450): edge SSIM of what ``translate`` returns by
default (``resize`` for the ResNet translators: 64 px and back; ``native`` for LPTN), and a full-size grid.

**Car content** (driving; issue 16 item 4): edge SSIM cannot tell "kept the cars" from "did not add fog", since fog
itself removes edges. The 100 labelled clear frames are split by frame (seed 0, :data:`CAR_SPLIT`): 40 train and 10
select (val) a car / background crop classifier (``benchmarks/studies/driving.py``'s windows, 32 px crops and
SmallCNN settings) on crops cut from the untranslated 800x450 frames; it is cached under
``runs/translation_quality/car_classifier/<hash of its settings and frames>/``. The other 50 frames are translated
whole at the default size policy and the same windows cut again: **label agreement** is the share of crops whose
predicted class is unchanged by translation (1 for the untranslated frames), **car recall** the share of car crops
still called car. A clear-trained judge also misreads cars that survived in a foggy frame, so a second,
**fog-robust judge** (:func:`fog_judge`: the same crops plus those of real DAWN fog photos, checked on held-out DAWN
photos) scores the same crops. --quick: 4 / 2 / 3 frames at 160x90, 12 classifier steps.

One seed: a measurement of the translators, not a downstream claim (the downstream studies carry the seeds).
Resumable: trained models are kept under ``runs/translation_quality/``. Outputs (``--out``; default
benchmarks/results, --quick: runs/studies_quick): translation_quality.{md,json,png} and
translation_quality_fullsize.png.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import harness as H  # noqa: E402

STEM = "translation_quality"
METHODS = ("cyclegan", "cut", "fastcut", "cyclegan_lptn", "fastcut_lptn", "cyclegan_structure2",
           "cyclegan_structure10")
STRUCTURE = {"cyclegan_structure2": 2.0, "cyclegan_structure10": 10.0}  # lambda_structure, fixed before any run
RESNET = {"ngf": 16, "n_blocks": 6}
PATCHGAN = {"ndf": 16, "n_layers": 3}
LPTN = {"n_levels": 2, "ngf": 16, "n_blocks": 4}
LPTN_NCE_LAYERS = ("low", "stem", "block1", "block2")
# The car-content measure: the labelled clear frames, permuted with ``seed``, give ``n_eval`` evaluation frames, then
# ``n_val`` frames that select the crop classifier's step and ``n_train`` (None: all the rest) that train it.
CAR_SPLIT = {"seed": 0, "n_eval": 50, "n_val": 10, "n_train": None}
CAR_SPLIT_QUICK = {"seed": 0, "n_eval": 3, "n_val": 2, "n_train": 4}
QUICK_FRAME = (90, 160)  # --quick: full frames resized to this (height, width)


def load(case: str, quick: bool) -> dict:
    from synthaug.data import load_image_dir

    from benchmarks.translation_showcase import _fog_files

    if case == "driving":
        frames = H.DATA / "driving" / "clear_nuscenes" / "images"
        a = load_image_dir(frames, size=64)
        b = load_image_dir(H.DATA / "driving" / "fog_dawn" / "images", size=64, files=_fog_files())
        full_files = sorted(p.name for p in frames.iterdir())[:: 66][:3]
        full = torch.stack([_read_full(frames / f) for f in full_files])
        test = a.images
    else:
        root = H.DATA / "weather" / "mwd"
        a, b = load_image_dir(root / "train" / "shine", size=64), load_image_dir(root / "train" / "rain", size=64)
        test, full = load_image_dir(root / "test" / "shine", size=64).images, None
    if quick:
        a, b, test = a.subset(range(12)), b.subset(range(12)), test[:8]
        full = None if full is None else F.interpolate(full[:1], size=QUICK_FRAME, mode="bilinear", antialias=True)
    return {"a": a, "b": b, "test": test, "full": full}


def _read_full(path: Path) -> torch.Tensor:
    from PIL import Image

    img = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)
    return img.float() / 127.5 - 1


def make_recipe(method: str, a, b, steps: int, seed: int = 0):
    from synthaug.train import CUTConfig, CUTRecipe, CycleGANConfig, CycleGANRecipe, FastCUTConfig, FastCUTRecipe

    if method == "cut":
        return CUTRecipe(a, b, CUTConfig(steps=steps, g_kwargs=dict(RESNET), d_kwargs=dict(PATCHGAN)),
                         device="cpu", seed=seed)
    if method == "fastcut":
        return FastCUTRecipe(a, b, FastCUTConfig(steps=steps, g_kwargs=dict(RESNET), d_kwargs=dict(PATCHGAN)),
                             device="cpu", seed=seed)
    if method == "fastcut_lptn":
        return FastCUTRecipe(a, b, FastCUTConfig(steps=steps, generator="lptn", g_kwargs=dict(LPTN),
                                                 d_kwargs=dict(PATCHGAN), nce_layers=LPTN_NCE_LAYERS),
                             device="cpu", seed=seed)
    lptn = method == "cyclegan_lptn"
    cfg = CycleGANConfig(steps=steps, generator="lptn" if lptn else "resnet",
                         g_kwargs=dict(LPTN if lptn else RESNET), d_kwargs=dict(PATCHGAN),
                         lambda_structure=STRUCTURE.get(method, 0.0))
    return CycleGANRecipe(a, b, cfg, device="cpu", seed=seed)


def train(method: str, data: dict, budget_s: float, runs: Path, case: str):
    from benchmarks.translation_showcase import time_steps
    from synthaug.models import TranslatorModel
    from synthaug.train import Trainer

    run_dir = runs / f"{case}_{method}"
    info = H.read_json(run_dir / "budget.json")
    if info is None:
        _, cpu = time_steps(lambda: make_recipe(method, data["a"], data["b"], 10**6), n=4, warmup=2)
        info = {"cpu_s_per_step": cpu, "steps": max(4, int(budget_s / cpu)), "budget_s": budget_s}
        H.write_json(run_dir / "budget.json", info)
    recipe = make_recipe(method, data["a"], data["b"], info["steps"])
    t0, c0 = time.perf_counter(), time.process_time()
    res = Trainer(recipe, run_dir, info["steps"], log_every=50, sample_every=info["steps"], ckpt_every=200,
                  progress=False).fit()
    if res.interrupted or res.model_dir is None:
        raise SystemExit(f"{case} {method}: interrupted at step {res.step}; rerun to resume")
    info = {**info, "wall_s_this_run": time.perf_counter() - t0, "cpu_s_this_run": time.process_time() - c0}
    return TranslatorModel.from_pretrained(res.model_dir), info


def edge_map(x: torch.Tensor) -> torch.Tensor:
    """Sobel edge magnitude of the luma of images in [-1, 1], (N, 1, H, W), scaled to [0, 1] per set."""
    x = (x.float().clamp(-1, 1) + 1) / 2
    luma = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]) if x.shape[1] == 3 else x[:, :1]
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    g = F.pad(luma, (1, 1, 1, 1), mode="replicate")
    mag = torch.sqrt(F.conv2d(g, kx) ** 2 + F.conv2d(g, kx.transpose(2, 3)) ** 2)
    return (mag / 4.0).clamp(0, 1)


def edge_ssim(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    return float(ssim(edge_map(outputs), edge_map(inputs), data_range=1.0))


def domain_encoder(a, b, quick: bool):
    from synthaug.data import ImageDataset
    from synthaug.eval import train_feature_encoder

    images = torch.cat([a.images, b.images])
    labels = torch.cat([torch.zeros(len(a), dtype=torch.long), torch.ones(len(b), dtype=torch.long)])
    ds = ImageDataset(images, labels, class_names=["A", "B"], name="domains")
    return train_feature_encoder(ds, max_steps=20 if quick else 600, seed=0, width=16)


# --- car content: a clear-trained car / background crop classifier, before and after translation ------------------
def car_split(names: list[str], split: dict) -> dict[str, list[str]]:
    """Disjoint frame lists ``eval``, ``val`` and ``train`` (sorted) from a permutation of ``names`` seeded by
    ``split["seed"]`` (see :data:`CAR_SPLIT`)."""
    n_eval, n_val, n_train = split["n_eval"], split["n_val"], split["n_train"]
    need = n_eval + n_val + (n_train or 1)
    if len(names) < need:
        raise ValueError(f"labelled clear frames: expected at least {need} (n_eval {n_eval} + n_val {n_val} + "
                         f"training frames), found {len(names)}")
    perm = [names[i] for i in np.random.default_rng(split["seed"]).permutation(len(names))]
    rest = perm[n_eval + n_val:]
    return {"eval": sorted(perm[:n_eval]), "val": sorted(perm[n_eval:n_eval + n_val]),
            "train": sorted(rest if n_train is None else rest[:n_train])}


def car_frames(names: list[str], size: tuple[int, int] | None) -> tuple[torch.Tensor, list]:
    """The labelled clear frames ``names`` (files of ``images/``), untranslated, at full size (``size`` None: as
    read, all of one size) or resized to ``size`` (--quick), with the driving study's windows and labels
    (``driving.labelled_frame``: cut at its work width, scaled here to the frame's size)."""
    from benchmarks.studies import driving as D

    cdir = H.DATA / "driving" / "clear_nuscenes"
    frames, items = [], []
    for name in names:
        f = _read_full(cdir / "images" / name)
        if size is not None:
            f = F.interpolate(f[None], size=size, mode="bilinear", antialias=True)[0]
        if frames and f.shape != frames[0].shape:
            raise ValueError(f"clear frame {name}: expected the size of the others, {tuple(frames[0].shape[-2:])}, "
                             f"found {tuple(f.shape[-2:])}")
        work, wins, labels, _ = D.labelled_frame(cdir, name, D.FULL)
        sy, sx = f.shape[1] / work.shape[1], f.shape[2] / work.shape[2]
        frames.append(f)
        items.append(([[x0 * sx, y0 * sy, x1 * sx, y1 * sy] for x0, y0, x1, y1 in wins], labels))
    return torch.stack(frames), items


def cached_judge(runs: Path, name: str, config: dict, make_sets) -> tuple:
    """A car / background crop classifier cached under ``runs/<name>/<hash of config>/``: loaded if there, else
    trained by ``train_arm`` (``config["classifier"]``, seed ``config["seed"]``) on ``make_sets()`` = ``{"train",
    "val"}`` and saved. Returns ``(model, info, directory)``."""
    from benchmarks.studies import driving as D
    from synthaug.eval import train_arm
    from synthaug.models import ClassifierModel

    d = H.ResultCache(runs).directory(name, config)
    if (d / "config.json").is_file():
        model = ClassifierModel.from_pretrained(d, device="cpu")
        return model, {**model.config["info"], "cached": True}, d
    sets = make_sets()
    net, tinfo, _ = train_arm(sets["train"], sets["val"], seed=config["seed"], device="cpu", **config["classifier"])
    info = {**{k: tinfo[k] for k in ("best_step", "best_val", "select_on", "steps_run", "stopped_early", "seconds")},
            "crops": {k: v.class_counts() for k, v in sets.items()}, "cached": False}
    model = ClassifierModel.from_module(net, D.CLASSES, info=info, device="cpu")
    model.save_pretrained(d)
    return model, info, d


def car_setup(quick: bool, runs: Path) -> dict:
    """The car-content measure's frames and classifier: a split of the labelled clear frames (:func:`car_split`),
    the driving study's SmallCNN trained on the car / background crops of the untranslated training frames
    (``train_arm`` with the study's classifier settings, step selected on the val frames' crops; cached under
    ``runs/car_classifier/<hash of its settings and frames>/``), and its predictions on the evaluation crops."""
    from benchmarks.studies import driving as D

    split_cfg = CAR_SPLIT_QUICK if quick else CAR_SPLIT
    cdir = H.DATA / "driving" / "clear_nuscenes"
    names = [f"{p.stem}.jpg" for p in sorted((cdir / "labels_yolo").glob("*.txt"))]
    parts = car_split(names, split_cfg)
    size = QUICK_FRAME if quick else None
    crops = {k: D.FULL[k] for k in ("size", "work_width", "bg_per_frame", "min_side")}
    clf = (D.QUICK if quick else D.FULL)["classifier"]
    config = {"what": "car / background crop classifier on untranslated clear frames", "version": 1,
              "frames": {k: parts[k] for k in ("train", "val")}, "frame_size": list(size) if size else "as read",
              "crops": crops, "classifier": clf, "seed": split_cfg["seed"]}
    def clear_sets():
        return {part: D.crop_set(*car_frames(parts[part], size), crops["size"], f"clear {part} crops")
                for part in ("train", "val")}

    model, info, d = cached_judge(runs, "car_classifier", config, clear_sets)
    frames, items = car_frames(parts["eval"], size)
    labels = np.array([y for _, ys in items for y in ys])
    if not (labels == 1).any():
        raise ValueError(f"car evaluation frames: expected at least one car crop, found none in {parts['eval']}")
    return {"model": model, "frames": frames, "items": items, "labels": labels, "size": crops["size"],
            "info": {**info, "key": d.name, "split": split_cfg, "n_labelled": len(names), "frames": parts,
                     "frame_size": list(frames.shape[-2:]),
                     "eval_crops": {"car": int((labels == 1).sum()), "background": int((labels == 0).sum())}}}


def fog_judge(car: dict, quick: bool, runs: Path) -> dict:
    """The second, fog-robust judge: the same crops and SmallCNN settings trained on the clear training frames' crops
    plus the crops of real DAWN fog photos (the driving study's oracle split: ``fog_split`` train / val; its step
    selected on the clear and fog val crops together), so that a car that survives translation is still read as a
    car when the frame looks foggy. Scored on the crops of the held-out DAWN test photos, to show it reads real
    fog; cached like the clear judge. --quick: 4 / 2 / 3 fog photos."""
    from benchmarks.studies import driving as D
    from synthaug.data import ImageDataset
    from synthaug.eval import metrics_from_proba

    fdir = H.DATA / "driving" / "fog_dawn"
    fog = D.fog_split(D.FULL["fog_translator_fraction"])
    if quick:
        fog = {"train": fog["train"][:4], "val": fog["val"][:2], "test": fog["test"][:3]}
    crops = {k: D.FULL[k] for k in ("size", "work_width", "bg_per_frame", "min_side")}
    clf = (D.QUICK if quick else D.FULL)["classifier"]

    def fog_crops(part: str):
        frames, items = [], []
        for name in fog[part]:
            f, wins, labels, _ = D.labelled_frame(fdir, name, D.FULL)
            frames.append(f)
            items.append((wins, labels))
        return D.crop_set(frames, items, crops["size"], f"fog {part} crops")

    config = {"what": "car / background crop classifier on clear and DAWN fog crops", "version": 1,
              "clear_judge": car["info"]["key"], "fog": {k: fog[k] for k in ("train", "val")}, "crops": crops,
              "classifier": clf, "seed": car["info"]["split"]["seed"]}
    def clear_and_fog_sets():
        sets = {}
        for part in ("train", "val"):
            clear = D.crop_set(*car_frames(car["info"]["frames"][part], QUICK_FRAME if quick else None),
                               crops["size"], "clear crops")
            foggy = fog_crops(part)
            sets[part] = ImageDataset(torch.cat([clear.images, foggy.images]), torch.cat([clear.labels, foggy.labels]),
                                      D.CLASSES, name=f"clear + fog {part} crops")
        return sets

    model, info, d = cached_judge(runs, "car_fog_judge", config, clear_and_fog_sets)
    test = fog_crops("test")
    m = metrics_from_proba(test.labels, model.predict_proba(test.images))
    info.update(key=d.name, fog_photos={k: len(v) for k, v in fog.items()}, fog_test_crops=test.class_counts(),
                fog_test={"balanced_accuracy": m["balanced_accuracy"], "background_recall": m["per_class_recall"][0],
                          "car_recall": m["per_class_recall"][1]})
    return {"model": model, "info": info}


@torch.no_grad()
def car_predictions(clfs: list, frames: torch.Tensor, items: list, size: int, translate=None,
                    chunk: int = 8) -> list[np.ndarray]:
    """Each classifier's class of every window of ``frames`` (translated once first by ``translate``, a few frames
    at a time)."""
    from benchmarks.studies import driving as D

    preds = [[] for _ in clfs]
    for i in range(0, len(frames), chunk):
        x = frames[i:i + chunk] if translate is None else translate(frames[i:i + chunk])
        crops = D.crop_set(list(x), items[i:i + chunk], size, "crops")
        for out, clf in zip(preds, clfs):
            out.append(clf.predict_proba(crops.images).argmax(1))
    return [torch.cat(p).numpy() for p in preds]


def car_scores(before: list[np.ndarray], after: list[np.ndarray], labels: np.ndarray) -> dict:
    """Per judge (the clear judge, then the fog-robust one, whose keys start ``fog_judge_``): label agreement (share
    of crops whose class is the same before and after translation) and the recall of car and of background crops
    after it."""
    car, out = labels == 1, {}
    for prefix, b, a in zip(("", "fog_judge_"), before, after):
        out.update({f"{prefix}car_agreement": float(np.mean(b == a)),
                    f"{prefix}car_recall": float(np.mean(a[car] == 1)),
                    f"{prefix}background_recall": float(np.mean(a[~car] == 0)) if (~car).any() else None})
    return out


def main(argv=None) -> int:
    from synthaug.eval import fid_kid
    from synthaug.utils import save_grid

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    H.add_quick_arguments(ap)
    ap.add_argument("--budget-min", type=float, default=None, help="CPU minutes per translator (default 6)")
    ap.add_argument("--cases", nargs="+", default=["driving", "weather"], choices=["driving", "weather"])
    ap.add_argument("--no-headline", action="store_true")
    args = ap.parse_args(argv)
    budget_s = 60 * (args.budget_min if args.budget_min is not None else (0.05 if args.quick else 6.0))
    out = H.report_dir(args)
    runs = (H.QUICK_DIR if args.quick else ROOT / "runs") / "translation_quality"
    torch.set_num_threads(1)
    t0, machine = time.perf_counter(), H.machine()
    results, full_rows, grids = {}, [], []
    for case in args.cases:
        data = load(case, args.quick)
        enc = domain_encoder(data["a"], data["b"], args.quick)
        real_b = data["b"].images
        base = fid_kid(real_b, data["test"], enc, subset_size=min(len(real_b), len(data["test"]), 100))
        results[case] = {"untranslated": {"kid": base["kid_mean"], "p_b": _p_b(enc, data["test"]), "edge_ssim": 1.0}}
        car = car_setup(args.quick, runs) if case == "driving" else None
        if car is not None:
            judge = fog_judge(car, args.quick, runs)
            judges = [car["model"], judge["model"]]
            before = car_predictions(judges, car["frames"], car["items"], car["size"])
            results[case]["untranslated"].update(car_scores(before, before, car["labels"]))
            results[case]["car_content"] = {**car["info"], "fog_judge": judge["info"]}
        rows, labels = [data["test"][:6]], ["input"]
        for method in METHODS:
            model, info = train(method, data, budget_s, runs, case)
            fake = model.translate(data["test"], direction="A2B")
            fk = fid_kid(real_b, fake, enc, subset_size=min(len(real_b), len(fake), 100))
            r = {**info, "kid": fk["kid_mean"], "fid": fk["fid"], "p_b": _p_b(enc, fake),
                 "edge_ssim": edge_ssim(data["test"], fake)}
            if data["full"] is not None:
                full = model.translate(data["full"], direction="A2B")
                r["full_size"] = {"policy": model.resolve_size_policy(), "shape": list(full.shape[-2:]),
                                  "edge_ssim": edge_ssim(data["full"], full)}
                full_rows.append((method, model.resolve_size_policy(), full))
            if car is not None:
                after = car_predictions(judges, car["frames"], car["items"], car["size"],
                                        partial(model.translate, direction="A2B"))
                r.update(car_scores(before, after, car["labels"]))
            results[case][method] = r
            rows.append(fake[:6])
            labels.append(method)
            print(f"{case:8s} {method:14s} KID {r['kid']:.4f} P(B) {r['p_b']:.3f} edge SSIM {r['edge_ssim']:.3f}"
                  + (f" full-size edge SSIM {r['full_size']['edge_ssim']:.3f}" if "full_size" in r else "")
                  + (f" car agreement {r['car_agreement']:.3f} car recall {r['car_recall']:.3f} (fog-robust "
                     f"judge {r['fog_judge_car_recall']:.3f})" if "car_agreement" in r else "")
                  + f" ({info['steps']} steps)", flush=True)
        rows.append(real_b[:6])
        labels.append("real B")
        grids += [torch.cat(rows)]
        results[case]["_labels"] = labels
        if case == "driving" and full_rows:
            full_in = data["full"]
            half = [F.interpolate(t, scale_factor=0.5, mode="bilinear", antialias=True) for t in
                    [full_in] + [f for _, _, f in full_rows]]
            save_grid(torch.cat(half), out / f"{STEM}_fullsize.png", nrow=len(full_in),
                      row_labels=["clear frame"] + [f"{m} ({p})" for m, p, _ in full_rows],
                      title="full frames (shown at half size): translate() at its default size policy")
    save_grid(torch.cat(grids), out / f"{STEM}.png", nrow=6,
              row_labels=[f"{c}: {lab}" for c in args.cases for lab in results[c]["_labels"]],
              title=f"64 px test inputs, translators at equal CPU time ({budget_s / 60:g} min)")
    records = headline(results)
    res = {"quick": args.quick, "budget_s": budget_s, "results": results, "headline": records, "machine": machine,
           "wall_s": time.perf_counter() - t0,
           "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/bench_translation_quality.py",
                                                        *(sys.argv[1:] if argv is None else map(str, argv))])}
    H.write_json(out / f"{STEM}.json", res)
    write_markdown(out / f"{STEM}.md", res)
    if not args.quick and not args.no_headline:
        H.update_headline("translation_quality", records)
    print(f"wrote {out / STEM}.md (.json, .png) in {res['wall_s']:.0f} s")
    return 0


@torch.no_grad()
def _p_b(enc, images: torch.Tensor) -> float:
    model = enc.model.eval()
    return float(torch.cat([model(x).softmax(1)[:, 1] for x in images.split(64)]).mean())


def headline(results: dict) -> list[dict]:
    recs = []
    for case, r in results.items():
        for method in METHODS:
            for metric in ("kid", "p_b", "edge_ssim", "car_agreement", "car_recall", "fog_judge_car_recall"):
                if metric not in r[method]:
                    continue
                v = r[method][metric]
                rec = H.headline_record("translation_quality", f"{case}/{method}", None, metric,
                                        {"mean": v, "lo": None, "hi": None, "n": 1}, None, 1)
                rec["protocol"] = f"equal CPU time, {r[method]['steps']} steps"
                if metric in ("car_agreement", "car_recall", "fog_judge_car_recall"):
                    n = r["car_content"]["eval_crops"]
                    rec["protocol"] += (f"; crops of {len(r['car_content']['frames']['eval'])} clear frames "
                                        f"({n['car']} car, {n['background']} background), full size")
                recs.append(rec)
    return recs


def write_markdown(path: Path, res: dict) -> None:
    L = H.report_head("Translators at equal CPU time: target-likeness and kept content",
                      res, "a few steps on a few images")
    L += [
          "", f"Each translator trained for {res['budget_s'] / 60:g} CPU-minutes (one thread; steps from a timed "
          "warm-up), one seed. KID and P(B) in a domain encoder trained to tell real A from real B (lower KID, "
          "higher P(B): more B-like); edge SSIM between the input's and the output's Sobel edges (1: every edge "
          "kept).", ""]
    cc = res["results"].get("driving", {}).get("car_content")
    if cc:
        n, tr = cc["eval_crops"], cc.get("crops", {})
        L += [f"Car content (driving): the {cc['n_labelled']} labelled clear frames are split by frame (seed "
              f"{cc['split']['seed']}). A car / background crop classifier (the driving study's crops and SmallCNN "
              f"settings) is trained on the crops of {len(cc['frames']['train'])} frames"
              + (f" ({tr['train']})" if "train" in tr else "")
              + f", its step selected on {len(cc['frames']['val'])} frames (val balanced accuracy "
              f"{cc['best_val']:.3f}), crops cut from the untranslated frames at {cc['frame_size'][1]}x"
              f"{cc['frame_size'][0]}. {len(cc['frames']['eval'])} other frames are translated whole by `translate` "
              f"at its default size policy and the same windows cut before and after ({n['car']} car, "
              f"{n['background']} background crops). Label agreement: share of crops whose predicted class is the "
              "same before and after translation; car recall: share of car crops called car (untranslated row: the "
              "classifier on the clear crops).", ""]
        fj = cc.get("fog_judge")
        if fj:
            ft = fj["fog_test"]
            L += ["The clear judge never saw fog, so a foggy frame whose cars survived can still lower its recall. "
                  "The **fog-robust judge** (same crops and settings) is trained on the same clear crops plus the "
                  f"crops of {fj['fog_photos']['train']} real DAWN fog photos (the driving study's oracle split), its "
                  f"step selected on the clear and {fj['fog_photos']['val']} fog val photos' crops together (val "
                  f"balanced accuracy {fj['best_val']:.3f}). On the crops of the {fj['fog_photos']['test']} held-out "
                  f"DAWN photos ({fj['fog_test_crops']['car']} car, {fj['fog_test_crops']['background']} background "
                  f"crops) it reads car recall {ft['car_recall']:.3f}, background "
                  f"recall {ft['background_recall']:.3f}: it reads cars in real fog. Its car recall on the translated "
                  "frames is the last column.", ""]
    L += ["| case | translator | steps | KID to real B | P(B) | edge SSIM (64 px) | full frame: policy, edge SSIM | "
          "car crops: label agreement | car recall | car recall, fog-robust judge |",
          "|---|---|---|---|---|---|---|---|---|---|"]

    def car_cols(x: dict) -> str:
        return (f"{x['car_agreement']:.3f} | {x['car_recall']:.3f} | {x['fog_judge_car_recall']:.3f}"
                if "car_agreement" in x else "- | - | -")

    for case, r in res["results"].items():
        u = r["untranslated"]
        L.append(f"| {case} | (input, untranslated) | - | {u['kid']:.4f} | {u['p_b']:.3f} | 1 | - | {car_cols(u)} |")
        for m in METHODS:
            x = r[m]
            fs = x.get("full_size")
            full = f"{fs['policy']} {fs['shape'][1]}x{fs['shape'][0]}, {fs['edge_ssim']:.3f}" if fs else "-"
            L.append(f"| {case} | {m} | {x['steps']} | {x['kid']:.4f} | {x['p_b']:.3f} | {x['edge_ssim']:.3f} | "
                     f"{full} | {car_cols(x)} |")
    L += ["", f"![64 px]({STEM}.png)", ""]
    if any("full_size" in r.get("cyclegan", {}) for r in res["results"].values()):
        L += [f"![full frames]({STEM}_fullsize.png)", ""]
    path.write_text("\n".join(L))


if __name__ == "__main__":
    sys.exit(main())
