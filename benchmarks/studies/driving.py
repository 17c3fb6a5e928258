"""Driving domain study: does adding CycleGAN clear->fog translations of clear road frames help a car / person /
background patch classifier trained on clear frames recognise them in real fog photos, compared with clear-only
training, albumentations ``RandomFog`` and the same number of extra clear copies?

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python -m benchmarks.studies.driving [--seeds 0 1 2 3 4] [--quick]

Data: the 100 labelled clear nuScenes frames (split by frame 85 train / 15 val, seed 0) and the 283 unique DAWN fog
photos (permuted, seed 0: half for the translator and the oracle, half held apart as test). Square crops around
car (id 3) and person (id 1) boxes plus background windows away from every box, ``roi_align`` to 32 px. Per seed a
CycleGAN clear <-> fog is trained at 64 px on all 199 clear frames and the translator half of the fog photos (the
intervals include translator variance); whole clear training frames are translated, then cropped. Arms, each
trained through ``MixedDataset`` (share 0.5: every clear crop plus one extra image of it) with its step selected
on the clear val crops:

* ``source_only``, ``classical_randomfog`` (RandomFog on the whole clear frames, then cropped), ``translated``,
  ``real_copies`` (the count-matched control: a second copy of each clear crop);
* ``target_oracle``: trained on fog crops of the translator half (selected on a fog val part).

Reports ``benchmarks/results/domain_driving.{md,json,png}`` + ``_examples.png`` / ``_examples_frames.png`` and the
``driving`` headline records.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import harness as H  # noqa: E402
from benchmarks.studies import domain_common as C  # noqa: E402
from synthaug.augment import SyntheticDataset  # noqa: E402
from synthaug.augment.plan import synthetic_counts  # noqa: E402
from synthaug.data import ImageDataset, load_image_dir  # noqa: E402
from synthaug.eval import bar_chart, compare_results, markdown_table, real_copies, run_arm  # noqa: E402
from synthaug.utils import save_grid  # noqa: E402

# Budgets, measured with 25-150 steps through this module's own code on the 2 cores shared with other CPU jobs
# (load average 3-4), one torch thread: CycleGAN at 64 px (ngf 16 / 6 blocks, PatchGAN ndf 16 / n_layers 3, batch 1)
# 0.09 s/step; SmallCNN width 16 at 32 px, batch 64, 0.024 s/step; translating the 85 training frames at 256 px 2-3
# s, RandomFog on them ~1 s. Per seed: the translator 6000 steps (~30 epochs of the clear frames; the old study ran
# 300, the showcase 1100-1600) ~9 min + 5 arms of at most 400 steps and the crops ~1 min = ~10 min, so 5 seeds take
# ~50 min (~75 min on a machine 1.5x busier). Classifier budget: the old study's selected epoch was 5-7 of 8
# (~60-150 steps), so 400 with early stopping.
FULL = dict(size=32, work_width=256, bg_per_frame=2, min_side=8, fog_translator_fraction=0.5,
            translator=dict(steps=6000, ngf=16, n_blocks=6, ndf=16, n_layers=3, batch_size=1), gan_size=64,
            classifier=dict(arch="small_cnn", width=16, max_steps=400, eval_every=10, patience=10, batch_size=64,
                            lr=1e-3, select_on="balanced_accuracy"))
QUICK = dict(FULL, translator=dict(FULL["translator"], steps=5),
             classifier=dict(FULL["classifier"], max_steps=12, eval_every=4, patience=2))
CLASSES = ["background", "car", "person"]
ORDER = ("source_only", "real_copies", "classical_randomfog", "translated", "target_oracle")
OLD_NAMES = {"classical_randomfog": "+RandomFog", "translated": "+CycleGAN_fog", "target_oracle": "fog_oracle"}
METRICS = ("test_balanced_accuracy", "test_accuracy", "test_car_recall", "test_person_recall",
           "test_background_recall")


# --- frames and crops (as the earlier study) ------------------------------------------------------------------
def read_frame(path: Path, width: int) -> torch.Tensor:
    """A whole frame, aspect kept, resized to ``width`` (height a multiple of 4), float CHW in [-1, 1]."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.draft("RGB", (width * 2, width * 2))
        im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        im = im.resize((width, max(8, int(round(h * width / w / 4)) * 4)), Image.Resampling.BILINEAR)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1).contiguous()


def read_boxes(path: Path, w: int, h: int) -> np.ndarray:
    """YOLO txt -> (N, 5) ``[cls, x0, y0, x1, y1]`` in pixels of a (w, h) frame."""
    if not path.is_file():
        return np.zeros((0, 5))
    r = np.array([[float(v) for v in ln.split()] for ln in path.read_text().splitlines() if ln.strip()]).reshape(-1, 5)
    return np.stack([r[:, 0], (r[:, 1] - r[:, 3] / 2) * w, (r[:, 2] - r[:, 4] / 2) * h,
                     (r[:, 1] + r[:, 3] / 2) * w, (r[:, 2] + r[:, 4] / 2) * h], 1)


def frame_items(boxes: np.ndarray, w: int, h: int, cfg: dict, rng) -> tuple[list, list, int]:
    """Square windows (1.2 x the longer box side) and labels of one frame: car (id 3) -> 1, person (1) -> 2, and
    ``bg_per_frame`` background windows overlapping no labelled box -> 0. Other classes are left out."""
    wins, labels, dropped = [], [], 0
    for c, x0, y0, x1, y1 in boxes:
        if int(c) not in (1, 3):
            continue
        if max(x1 - x0, y1 - y0) < cfg["min_side"]:
            dropped += 1
            continue
        side, cx, cy = 1.2 * max(x1 - x0, y1 - y0), (x0 + x1) / 2, (y0 + y1) / 2
        wins.append([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
        labels.append(1 if int(c) == 3 else 2)
    sides, n_bg = [max(b[3] - b[1], b[4] - b[2]) for b in boxes] or [h / 4], 0
    for _ in range(60):
        if n_bg >= cfg["bg_per_frame"]:
            break
        side = float(np.clip(rng.choice(sides) * 1.2, 12, h / 2))
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        if any(min(x0 + side, b[3]) > max(x0, b[1]) and min(y0 + side, b[4]) > max(y0, b[2]) for b in boxes):
            continue
        wins.append([x0, y0, x0 + side, y0 + side])
        labels.append(0)
        n_bg += 1
    return wins, labels, dropped


def crop_set(frames: list, items: list, size: int, name: str) -> ImageDataset:
    """The windows of every frame, ``roi_align``-ed to ``size`` px."""
    from torchvision.ops import roi_align

    xs, ys = [], []
    for f, (wins, labels) in zip(frames, items):
        if wins:
            rois = [torch.tensor(wins, dtype=torch.float32)]
            xs.append(roi_align(f[None], rois, output_size=size, spatial_scale=1.0, sampling_ratio=-1,
                                aligned=True).clamp(-1, 1))
            ys += labels
    return ImageDataset(torch.cat(xs), torch.tensor(ys), CLASSES, name=name)


def load(cfg: dict) -> dict:
    """Splits, frames and crop sets (clear train / val, fog oracle train / val, fog test)."""
    W, cdir, fdir = cfg["work_width"], H.DATA / "driving" / "clear_nuscenes", H.DATA / "driving" / "fog_dawn"
    labelled = sorted(p.stem for p in (cdir / "labels_yolo").glob("*.txt"))
    fog = [Path(ln.strip()).name for ln in (fdir / "unique_images.txt").read_text().splitlines() if ln.strip()]
    perm = np.random.default_rng(0).permutation(len(fog))
    n1 = int(round(cfg["fog_translator_fraction"] * len(fog)))
    fog_part1, fog_test = sorted(fog[i] for i in perm[:n1]), sorted(fog[i] for i in perm[n1:])
    cperm = np.random.default_rng(0).permutation(len(labelled))
    n_cval = int(round(0.15 * len(labelled)))
    clear_val, clear_train = sorted(labelled[i] for i in cperm[:n_cval]), sorted(labelled[i] for i in cperm[n_cval:])
    operm = np.random.default_rng(1).permutation(len(fog_part1))
    n_oval = int(round(0.2 * len(fog_part1)))
    oracle_val = sorted(fog_part1[i] for i in operm[:n_oval])
    oracle_train = sorted(fog_part1[i] for i in operm[n_oval:])

    def frames_items(folder: Path, files: list[str]):
        frames, items, dropped = [], [], 0
        for name in files:
            img = folder / "images" / name
            f = read_frame(img, W)
            rng = np.random.default_rng(int(hashlib.md5(img.name.encode()).hexdigest()[:8], 16))
            wins, labels, k = frame_items(read_boxes(folder / "labels_yolo" / f"{Path(name).stem}.txt", W,
                                                     f.shape[1]), W, f.shape[1], cfg, rng)
            frames.append(f)
            items.append((wins, labels))
            dropped += k
        return frames, items, dropped

    parts = {"clear_train": (cdir, [f"{s}.jpg" for s in clear_train]),
             "clear_val": (cdir, [f"{s}.jpg" for s in clear_val]), "fog_train": (fdir, oracle_train),
             "fog_val": (fdir, oracle_val), "fog_test": (fdir, fog_test)}
    d = {"sets": {}, "dropped_tiny": {}, "fog_part1": fog_part1}
    for key, (folder, files) in parts.items():
        frames, items, dropped = frames_items(folder, files)
        d["sets"][key] = crop_set(frames, items, cfg["size"], key)
        d["dropped_tiny"][key] = dropped
        d.setdefault("frames", {})[key] = (frames, items)
    d["n_frames"] = {k: len(v[1]) for k, v in parts.items()}
    return d


def random_fog_frames(frames: list, seed: int) -> list:
    """albumentations ``RandomFog`` (defaults, p=1) on whole frames (one seeded ``Compose`` for all of them)."""
    import albumentations as A

    return list(C.albumentations_on(torch.stack(frames), A.RandomFog(p=1.0), seed))


# --- study ----------------------------------------------------------------------------------------------
def run_seed(st: H.Study, d: dict, cfg: dict, seed: int) -> tuple[dict, dict]:
    """All arms of one seed (each cached when done) and the seed's translator record."""
    S, clf = d["sets"], cfg["classifier"]
    train, val, test = S["clear_train"], S["clear_val"], S["fog_test"]
    frames, items = d["frames"]["clear_train"]
    kw = dict(seed=seed, device="cpu", **clf)
    data_key = {k: cfg[k] for k in ("size", "work_width", "bg_per_frame", "min_side", "fog_translator_fraction")}
    base = {"harness": C.HARNESS_VERSION, "study": "driving", "data": data_key, "seed": seed, "classifier": clf}
    tcfg = C.cyclegan_config(**cfg["translator"])
    tconf = C.translator_config("driving", {"gan_size": cfg["gan_size"], "clear": "all 199 frames",
                                            "fog": H.config_hash(d["fog_part1"]), "n_fog": len(d["fog_part1"])},
                                tcfg, seed)

    def domains():
        a = load_image_dir(H.DATA / "driving" / "clear_nuscenes" / "images", size=cfg["gan_size"])
        return a, load_image_dir(H.DATA / "driving" / "fog_dawn" / "images", size=cfg["gan_size"], files=d["fog_part1"])

    model, tinfo = C.translator(st, tconf, tcfg, domains, ("clear", "fog"))
    fogged = C.lazy(lambda: [model().translate(f, "A2B", size_policy="native") for f in frames])

    def pool(kind: str) -> SyntheticDataset:
        fr = fogged() if kind == "translated" else random_fog_frames(frames, seed)
        crops = crop_set(fr, items, cfg["size"], kind)
        return SyntheticDataset.from_tensors(crops.images, crops.labels, CLASSES, source={"source": kind})

    copies = real_copies(train, synthetic_counts(train.labels.numpy(), len(CLASSES), ratio=0.5))
    computes = {
        "source_only": ({}, lambda: run_arm("source_only", train, val, test, **kw)),
        "real_copies": ({"ratio": 0.5}, lambda: run_arm("real_copies", train, val, test, synthetic=copies,
                                                        ratio=0.5, **kw)),
        "classical_randomfog": ({"ratio": 0.5, "kind": "RandomFog on frames"}, lambda: run_arm(
            "classical_randomfog", train, val, test, synthetic=pool("classical_randomfog"), ratio=0.5, **kw)),
        "translated": ({"ratio": 0.5, "translator": H.config_hash(tconf)}, lambda: run_arm(
            "translated", train, val, test, synthetic=pool("translated"), ratio=0.5, **kw)),
        "target_oracle": ({}, lambda: run_arm("target_oracle", S["fog_train"], S["fog_val"], test, **kw)),
    }
    out = {a: C.cached_arm(st, seed, base, a, spec, fn, "test_balanced_accuracy") for a, (spec, fn) in computes.items()}
    for r in out.values():
        r.update({f"test_{c}_recall": r["test_per_class_recall"][i] for i, c in enumerate(CLASSES)})
    if seed == st.seeds[0] and C.translator_on_disk(st, tconf):
        examples(st, d, cfg, model(), seed)
    return out, {**tinfo(), "kind": "CycleGAN clear<->fog"}


def examples(st: H.Study, d: dict, cfg: dict, tm, seed: int) -> None:
    """Crops (car x4, person x4, background x4: clear, RandomFog, CycleGAN fog, real fog test) and one frame."""
    S = d["sets"]
    frames, items = d["frames"]["clear_train"]
    y, ty = S["clear_train"].labels.numpy(), S["fog_test"].labels.numpy()
    pick = np.concatenate([np.flatnonzero(y == c)[:4] for c in (1, 2, 0)])
    tpick = np.concatenate([np.flatnonzero(ty == c)[:4] for c in (1, 2, 0)])
    rf = random_fog_frames(frames, 0)
    fogged = [tm.translate(f, "A2B", size_policy="native") for f in frames]
    rows = [S["clear_train"].images[pick], crop_set(rf, items, cfg["size"], "rf").images[pick],
            crop_set(fogged, items, cfg["size"], "cg").images[pick], S["fog_test"].images[tpick]]
    save_grid(torch.cat(rows), st.out("_examples.png"), nrow=len(pick),
              row_labels=["clear", "RandomFog", "CycleGAN fog", "real fog (test)"],
              title=f"driving crops, {cfg['size']} px: car x4, person x4, background x4 (translator of seed {seed})")
    fr = torch.stack([F.interpolate(t[None], size=(72, 128), mode="bilinear", antialias=True)[0]
                      for t in (frames[0], fogged[0], rf[0])])
    save_grid(fr, st.out("_examples_frames.png"), nrow=3, row_labels=["clear | CycleGAN | RandomFog"],
              title="a whole clear training frame, translated, RandomFog")


def report(st: H.Study, per_seed: dict, translators: list[dict], cfg: dict, d: dict) -> dict:
    results, n = C.by_arm(per_seed, ORDER)
    m = "test_balanced_accuracy"
    comps = {mm: compare_results(results, metric=mm, baseline="source_only",
                                 classical=[a for a in ("classical_randomfog",) if a in results]) for mm in METRICS}
    best_c = comps[m]["best_classical"] or "source_only"
    pairs = [("source_only", None), ("real_copies", "source_only"), ("classical_randomfog", "source_only"),
             ("translated", "source_only"), ("translated", best_c), ("translated", "real_copies"),
             ("target_oracle", "source_only")]
    readme = [("source_only", None), ("classical_randomfog", "source_only"), ("translated", best_c),
              ("translated", "real_copies"), ("target_oracle", "source_only")]
    recs = H.pair_records("driving", results, m, pairs, readme, {"translated"}, len(per_seed))
    counts = {k: v.class_counts() for k, v in d["sets"].items()}
    tr, clf, nf = cfg["translator"], cfg["classifier"], d["n_frames"]
    L = [f"# {'QUICK: ' if st.quick else ''}Domain shift, driving: clear nuScenes -> real fog (DAWN), car / person "
         "/ background patches", "", *C.quick_banner(st),
         "Question: does adding CycleGAN clear->fog translations of the clear training frames help a patch classifier "
         "trained on clear frames recognise cars, people and background in real fog photos, compared with clear-only "
         "training, albumentations `RandomFog` and a second copy of each clear crop?", "", "## Protocol", "",
         f"- Frames resized to {cfg['work_width']} px wide (aspect kept). Crops: a square window 1.2 x the longer box "
         f"side around each car (id 3) and person (id 1) box (boxes under {cfg['min_side']} px dropped: "
         f"{d['dropped_tiny']}), {cfg['bg_per_frame']} background windows per frame clear of every labelled box, "
         f"`roi_align` to {cfg['size']} px. DAWN bicycle / motorcycle / bus / truck boxes are left out.",
         f"- Clear (source): the 100 labelled nuScenes frames, {nf['clear_train']} train / {nf['clear_val']} val "
         f"(seed 0): crops {counts['clear_train']} / {counts['clear_val']}. The clear val crops select the step of "
         "the clear-trained arms (no fog label); they hold very few people, so selection is coarse.",
         f"- Fog: the 283 unique DAWN photos, permuted (seed 0): {len(d['fog_part1'])} for the translator and the "
         f"oracle, {nf['fog_test']} **held apart as test** (crops {counts['fog_test']}). Oracle: {nf['fog_train']} / "
         f"{nf['fog_val']} frames of the first half (crops {counts['fog_train']} / {counts['fog_val']}).",
         f"- Translators, **retrained for every seed**: CycleGAN clear <-> fog on {cfg['gan_size']} px centre crops of "
         f"all 199 clear frames and the {len(d['fog_part1'])} translator-half fog photos (never the test photos), "
         f"{tr['steps']} steps of batch {tr['batch_size']}, ResNet generator ngf {tr['ngf']} / {tr['n_blocks']} "
         f"blocks, PatchGAN ndf {tr['ndf']} / n_layers {tr['n_layers']}, LSGAN, lambda_cycle 10, identity 0.5. Whole "
         f"clear training frames are translated at {cfg['work_width']} px (`size_policy='native'`), then cropped "
         "with the same windows. The intervals include translator variance.",
         "- Arms (all through `MixedDataset` at share 0.5, i.e. every clear crop plus one extra image of it, except "
         "`source_only` and the oracle): `real_copies` (a second copy of each clear crop: the count-matched "
         "control), `classical_randomfog` (albumentations `RandomFog(p=1)`, defaults, on the whole clear frames, "
         "seeded per seed, then cropped), `translated` (CycleGAN fog crops); `target_oracle` trains on fog crops.",
         f"- Classifier: SmallCNN width {clf['width']}, AdamW lr {clf['lr']}, batch {clf['batch_size']}, cosine "
         f"schedule over {clf['max_steps']} steps, validation balanced accuracy every {clf['eval_every']} steps, "
         f"early stopping after {clf['patience']} evaluations without improvement; scored once on the fog test crops.",
         "- Arm names vs the earlier `study_domain.py`: `+RandomFog` -> `classical_randomfog`, `+CycleGAN_fog` -> "
         "`translated`, `fog_oracle` -> `target_oracle`; `source_only` unchanged; `real_copies` is new. There one "
         "translator (300 steps) served all seeds and the classifier ran 8 epochs.",
         f"- Seeds {sorted(per_seed)}; 95% Student-t intervals; differences paired by seed (two-sided paired t-test).",
         "", "## Results", ""]
    for mm in METRICS:
        L += [f"Test {mm.replace('test_', '').replace('_', ' ')}:", "", markdown_table(comps[mm]), ""]
    L += [*C.diff_table(results, [("translated", "source_only"), ("translated", best_c), ("translated", "real_copies"),
                                  ("real_copies", "source_only")], m), "", "Reading:", "",
          *(f"- {C.verdict(results, a, r, m)}." for a, r in
            (("translated", "source_only"), ("translated", best_c), ("translated", "real_copies"),
             ("classical_randomfog", "source_only"), ("target_oracle", "source_only"))), "",
          f"![driving]({st.prefix.name}.png)", "",
          "Examples (car x4, person x4, background x4; rows clear, RandomFog, CycleGAN fog of the first seed, real fog "
          "test):", "", f"![driving examples]({st.prefix.name}_examples.png)", "",
          f"![frames]({st.prefix.name}_examples_frames.png)", "", *C.run_section(st, results, translators)]
    st.out(".md").write_text("\n".join(L))
    bar_chart(comps[m]["summary"], "fog test balanced accuracy", st.out(".png"),
              title=f"clear -> fog patches: balanced accuracy, mean and 95% CI over {len(per_seed)} seeds")
    out = {"study": "driving", "quick": st.quick, "seeds": sorted(per_seed), "config": cfg, "arms_seeds": n,
           "comparisons": comps, "old_arm_names": OLD_NAMES, "crops": counts, "frames": nf,
           "dropped_tiny": d["dropped_tiny"], "translators": translators, "machine": st.meta,
           "wall_seconds_this_invocation": round(st.wall(), 1), "headline": recs}
    H.write_json(st.out(".json"), out)
    return out


def main(argv=None) -> int:
    st = H.Study("driving", __doc__, argv, report_prefix="domain_")
    cfg = QUICK if st.quick else FULL
    d = load(cfg)
    st.log("crops " + "; ".join(f"{k} {v.class_counts()}" for k, v in d["sets"].items()))
    per_seed, translators = {}, []
    for seed in st.seeds:
        per_seed[seed], info = run_seed(st, d, cfg, seed)
        translators.append(info)
    out = report(st, per_seed, translators, cfg, d)
    st.finish(out["headline"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
