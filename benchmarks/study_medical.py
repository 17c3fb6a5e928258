"""Downstream medical benchmark: does a SmallCNN classifier improve when cGAN samples are mixed into its
training set, compared with real-only training and with strong classical augmentation?

Usage (CPU; set OMP_WAIT_POLICY=PASSIVE on shared machines)::

    python benchmarks/study_medical.py --study breast|pneumonia5|pneumonia10|pneumonia100|pneumonia5_long|all \
        [--seeds 0 1 2 3 4] [--quick]

Per (study, seed): stratified training subsample under that seed -> cGAN (CGANRecipe, default config) trained
on that subsample only -> arms (real only, flips/shifts, RandAugment, real+synthetic at a share chosen on
validation over (0, 0.25, 0.5), real+synthetic at fixed shares 0.25 and 0.5 and as a class-balancing top-up,
each also with the best classical kind, synthetic only = CAS), each scored once on test -> generator
evaluation (FID/KID, precision/recall, density/coverage in the feature space of an encoder trained on the real
training subsample; pixel-space memorisation audit against the training subsample). ``pneumonia5_long`` is
an ablation: pneumonia5 with 4x the cGAN steps.
One JSON per (study, seed) is written as soon as it is done and skipped on rerun (resumable). After all
seeds of a study: benchmarks/results/medical_<study>.{md,json,png} and benchmarks/results/medical_summary.md.

``--quick`` (BreastMNIST, seeds 0 1, 60 GAN steps, 2 epochs) is a smoke test; its outputs go to
runs/study_medical_quick/ (git-ignored) and are labelled QUICK. It also checks that the in-script ratio
selection reproduces ``synthaug.eval.choose_ratio``'s validation scores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthaug.data import load_breastmnist, load_medmnist  # noqa: E402
from synthaug.eval import (  # noqa: E402
    bar_chart,
    cas,
    choose_ratio,
    compare_arms,
    distribution_metrics,
    evaluate,
    markdown_table,
    mean_ci,
    memorization_audit,
    mixed_training_set,
    paired_test,
    nearest_neighbour_panel,
    run_arm,
    train_classifier,
    train_feature_encoder,
)
from synthaug.eval.memorization import DEFAULT_THRESHOLD  # noqa: E402
from synthaug.models import GeneratorModel  # noqa: E402
from synthaug.train.cgan import CGANConfig, CGANRecipe  # noqa: E402
from synthaug.train.engine import Trainer  # noqa: E402
from synthaug.utils import save_grid  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_model  # noqa: E402

PNEUMONIA = ROOT.parent / "shared" / "data" / "medmnist" / "pneumoniamnist.npz"
if not PNEUMONIA.is_file():
    PNEUMONIA = Path("/work/shared/data/medmnist/pneumoniamnist.npz")
RESULTS = ROOT / "benchmarks" / "results"
ORDER = ("breast", "pneumonia5", "pneumonia10", "pneumonia100", "pneumonia5_long")
RATIOS = (0.0, 0.25, 0.5)
CLASSICAL = ("flips_shifts", "randaugment")
FIXED_ARMS = tuple(f"synthetic@{r}" for r in RATIOS[1:])
EXTRA_ARMS = (*FIXED_ARMS, "synthetic_balance", *(f"{a}+best_classical" for a in (*FIXED_ARMS, "synthetic_balance")))
# controls: the training-set size and class mix of synthetic@0.25 / synthetic_balance, filled with copies of real
# images instead, which separates "more images (and optimiser steps) per epoch" from "new synthetic content"
CONTROL_ARMS = {"real_copies@0.25": 0.25, "real_copies_balance": "balance"}
COPY_PAIRS = (("synthetic@0.25", "real_copies@0.25"), ("synthetic_balance", "real_copies_balance"))
ARMS = ("real_only", "classical_flips_shifts", "classical_randaugment", *CONTROL_ARMS, "synthetic", *EXTRA_ARMS[:3],
        "synthetic+best_classical", *EXTRA_ARMS[3:], "synthetic_only_cas")
METRICS = ("test_auc", "test_accuracy", "test_balanced_accuracy")

# GAN steps (batch 64) and classifier epochs were chosen from a measured 0.32 s/step (cGAN) and ~1.1 s/epoch
# (SmallCNN, 546 images, no augmentation; RandAugment ~2.3x that) on the shared 2-core CPU, to fit the
# ~80 min budget of the whole study; they are the same for every seed of a study.
STUDIES = {
    "breast": dict(data="BreastMNIST", fraction=1.0, gan_steps=700, epochs=12, encoder_epochs=10),
    "pneumonia5": dict(data="PneumoniaMNIST", fraction=0.05, gan_steps=500, epochs=20, encoder_epochs=15),
    "pneumonia10": dict(data="PneumoniaMNIST", fraction=0.10, gan_steps=600, epochs=15, encoder_epochs=12),
    "pneumonia100": dict(data="PneumoniaMNIST", fraction=1.0, gan_steps=1000, epochs=4, encoder_epochs=4),
    # ablation: is the scarce-data result limited by a short generator run? Same as pneumonia5, 4x the steps
    "pneumonia5_long": dict(data="PneumoniaMNIST", fraction=0.05, gan_steps=2000, epochs=20, encoder_epochs=15),
}
QUICK = dict(gan_steps=60, epochs=2, encoder_epochs=2)


# --- helpers --------------------------------------------------------------------------------------------
def machine_info() -> dict:
    cpu = "unknown"
    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"nproc": os.cpu_count(), "cpu": cpu, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "platform": platform.platform(),
            "load_average": list(os.getloadavg()), "git_commit": commit,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}


def load_splits(study: str, seed: int):
    cfg = STUDIES[study]
    if cfg["data"] == "BreastMNIST":
        train = load_breastmnist("train", fraction=cfg["fraction"], seed=seed)
        val, test = load_breastmnist("val"), load_breastmnist("test")
    else:
        train = load_medmnist(PNEUMONIA, "train", fraction=cfg["fraction"], seed=seed)
        val, test = load_medmnist(PNEUMONIA, "val"), load_medmnist(PNEUMONIA, "test")
    return train, val, test


def to_jsonable(x):
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    return x


def train_gan(train, seed: int, steps: int, run_dir: Path) -> tuple[GeneratorModel, dict]:
    t0 = time.perf_counter()
    model_dir = run_dir / "model"
    if (model_dir / "config.json").is_file():
        info = json.loads((run_dir / "gan_info.json").read_text()) if (run_dir / "gan_info.json").is_file() else {}
        return GeneratorModel.from_pretrained(model_dir, device="cpu"), {**info, "reused": True}
    cfg = CGANConfig()
    recipe = CGANRecipe(train, cfg, device="cpu", seed=seed)
    res = Trainer(recipe, run_dir, steps, log_every=50, sample_every=steps, ckpt_every=max(steps // 2, 1),
                  progress=False).fit()
    if res.interrupted or res.model_dir is None:
        raise SystemExit(f"cGAN training interrupted at step {res.step}; rerun the same command to resume")
    info = {"steps": res.step, "seconds": round(time.perf_counter() - t0, 1),
            "s_per_step": round((time.perf_counter() - t0) / max(res.step, 1), 4), "rollbacks": res.rollbacks,
            "last_losses": res.last_metrics, "config": recipe.config_dict(), "reused": False,
            "ema": "warm-up min(decay, (1+n)/(10+n)) (CGANRecipe default)"}
    (run_dir / "gan_info.json").write_text(json.dumps(to_jsonable(info), indent=1))
    return GeneratorModel.from_pretrained(model_dir, device="cpu"), info


def synthetic_pool(gen: GeneratorModel, train, seed: int):
    """As many synthetic images as real ones, with the real class counts (enough for share 0.5 and CAS)."""
    counts = torch.bincount(train.labels, minlength=train.num_classes)
    labels = torch.repeat_interleave(torch.arange(train.num_classes), counts)
    return gen.sample(len(labels), labels=labels, seed=10_000 + seed)


def select_ratio(real_only_row: dict, train, val, pool, seed: int, epochs: int):
    """Same computation as ``choose_ratio(train, val, pool, RATIOS, seeds=(seed,), epochs=epochs)``
    (mean best-epoch val AUC, ties to the smaller share), but the candidate models are kept so the chosen one
    is scored on test once without retraining. Ratio 0 is the real_only arm (identical training run)."""
    scores, models, secs = {0.0: float(real_only_row["val_auc"])}, {}, {}
    for r in RATIOS[1:]:
        t0 = time.perf_counter()
        ts = mixed_training_set(train, pool, r, seed, "real")
        model, info = train_classifier(ts, val, epochs=epochs, seed=seed, device="cpu", select_on="auc",
                                       num_classes=train.num_classes)
        scores[r], models[r], secs[r] = float(info["best_val"]), (model, info, ts), round(time.perf_counter() - t0, 2)
    best = max(RATIOS, key=lambda r: (scores[r], -r))
    return best, scores, models, secs


def arm_row_from_model(arm, model, info, ts, test, seed, ratio, epochs, seconds) -> dict:
    m = evaluate(model, test, "cpu")
    n_syn = int(ts.tensors[2].sum())
    return {"arm": arm, "seed": seed, "ratio": float(ratio), "classical": None, "arch": "small_cnn", "epochs": epochs,
            "n_real": len(ts) - n_syn, "n_synthetic": n_syn, "best_epoch": info["best_epoch"],
            "val_auc": info["best_val"],
            **{f"test_{k}": m[k] for k in ("accuracy", "balanced_accuracy", "auc", "loss", "per_class_recall")},
            "n_test": m["n"], "seconds": seconds}


# --- one (study, seed) ---------------------------------------------------------------------------------------
def run_seed(study: str, seed: int, cfg: dict, out_json: Path, run_root: Path, figs_prefix: Path | None,
             quick: bool) -> dict:
    t_all = time.perf_counter()
    train, val, test = load_splits(study, seed)
    E = cfg["epochs"]
    rec = {"study": study, "seed": seed, "quick": quick, "data": cfg["data"], "fraction": cfg["fraction"],
           "n_train": len(train), "train_class_counts": train.class_counts(), "n_val": len(val), "n_test": len(test),
           "class_names": train.class_names, "epochs": E, "gan_steps": cfg["gan_steps"], "arms": {}, "timing_s": {}}
    print(f"[{study} seed {seed}] train {train.class_counts()} val {len(val)} test {len(test)}", flush=True)

    gen, gan_info = train_gan(train, seed, cfg["gan_steps"], run_root / study / f"seed{seed}")
    rec["gan"] = gan_info
    rec["timing_s"]["gan"] = gan_info.get("seconds")
    print(f"[{study} seed {seed}] cGAN {gan_info.get('steps')} steps {gan_info.get('seconds')} s", flush=True)
    pool_x, pool_y = synthetic_pool(gen, train, seed)

    kw = dict(seed=seed, epochs=E, device="cpu")
    arms = rec["arms"]
    # the real-only and classical arms do not depend on the generator: cached per (study, seed, epochs) so a
    # rerun after a generator change does not retrain them (identical deterministic CPU runs)
    cache = run_root.parent / "real_arms_cache" / f"{study}_seed{seed}_e{E}.json"
    cached = json.loads(cache.read_text()) if cache.is_file() else {}
    for name, kind in (("real_only", None), *((f"classical_{k}", k) for k in CLASSICAL)):
        if name in cached and not quick:
            arms[name] = {**cached[name], "cached": True}
        else:
            arms[name] = run_arm(name, train, val, test, classical=kind, **kw)
    arms.update({k: {**v, "cached": True} for k, v in cached.items() if k in CONTROL_ARMS and not quick})
    arms.update(control_arms(train, val, test, seed, E, skip=arms))
    if not quick:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(to_jsonable({k: arms[k] for k in ("real_only", "classical_flips_shifts",
                                                                      "classical_randaugment", *CONTROL_ARMS)})))
    # synthetic share chosen on validation only
    t0 = time.perf_counter()
    best_r, scores, models, secs = select_ratio(arms["real_only"], train, val, (pool_x, pool_y), seed, E)
    if best_r > 0:
        model, info, ts = models[best_r]
        arms["synthetic"] = arm_row_from_model("synthetic", model, info, ts, test, seed, best_r, E, secs[best_r])
    else:
        arms["synthetic"] = {**arms["real_only"], "arm": "synthetic", "note": "ratio 0 won on validation: "
                             "identical to real_only"}
    rec["ratio_selection"] = {"val_auc_by_ratio": scores, "chosen_ratio": best_r, "zero_is_best": best_r == 0.0,
                              "candidate_seconds": secs, "seconds": round(time.perf_counter() - t0, 2)}
    if quick:  # check the shortcut against the library function (costs 3 extra trainings)
        lib = choose_ratio(train, val, (pool_x, pool_y), RATIOS, seeds=(seed,), epochs=E, device="cpu")
        rec["ratio_selection"]["library_choose_ratio"] = {"val_scores": lib["val_scores"],
                                                          "best_ratio": lib["best_ratio"], "message": lib["message"]}
        same = all(abs(lib["val_scores"][r] - scores[r]) < 1e-12 for r in RATIOS) and lib["best_ratio"] == best_r
        rec["ratio_selection"]["matches_library"] = bool(same)
        print(f"[{study} seed {seed}] ratio selection matches choose_ratio: {same}", flush=True)
    # best classical kind for the combination: by validation AUC of this seed (test is not used)
    best_kind = max(CLASSICAL, key=lambda k: (arms[f"classical_{k}"]["val_auc"], -CLASSICAL.index(k)))
    extra_arms(arms, gen, train, val, test, (pool_x, pool_y), models, secs, best_kind, seed, E)
    if best_r > 0:
        arms["synthetic+best_classical"] = {**arms[f"synthetic@{best_r}+best_classical"],
                                            "arm": "synthetic+best_classical"}
    else:
        arms["synthetic+best_classical"] = {**arms[f"classical_{best_kind}"], "arm": "synthetic+best_classical",
                                            "note": "ratio 0 won on validation: identical to the classical arm"}
    arms["synthetic+best_classical"]["classical_kind_chosen_on_val"] = best_kind
    c = cas(pool_x, pool_y, val, test, seed=seed, epochs=E, device="cpu")
    arms["synthetic_only_cas"] = {"arm": "synthetic_only_cas", "seed": seed, "ratio": 1.0, "n_real": 0,
                                  "n_synthetic": c["n_synthetic"], "best_epoch": c["best_epoch"],
                                  "test_auc": c["cas_auc"], "test_accuracy": c["cas_accuracy"],
                                  "test_balanced_accuracy": c["cas_balanced_accuracy"],
                                  "test_per_class_recall": c["cas_per_class_recall"], "seconds": c["seconds"],
                                  "note": c["note"]}
    for a, row in arms.items():
        print(f"[{study} seed {seed}] {a:26s} AUC {row['test_auc']:.4f} acc {row['test_accuracy']:.4f} "
              f"bal {row['test_balanced_accuracy']:.4f} ({row.get('seconds')} s)", flush=True)

    # generator evaluation against the real training subsample
    t0 = time.perf_counter()
    enc = train_feature_encoder(train, val_ds=val, epochs=cfg["encoder_epochs"], seed=seed, device="cpu")
    rec["generator_eval"] = {
        "encoder": f"SmallCNN trained {cfg['encoder_epochs']} epochs on this seed's real training subsample "
                   f"(best val AUC epoch)",
        "synthetic_vs_train": distribution_metrics(train.images, pool_x, enc, seed=seed),
        # scale reference: real held-out validation images against the same training subsample
        "val_vs_train_reference": distribution_metrics(train.images, val.images, enc, seed=seed),
    }
    audit = memorization_audit(pool_x, train, space="pixel")
    rec["memorization"] = {"synthetic_vs_train": audit["summary"],
                           "val_vs_train_reference": memorization_audit(val.images, train, space="pixel")["summary"]}
    rec["timing_s"]["generator_eval"] = round(time.perf_counter() - t0, 2)
    g = rec["generator_eval"]["synthetic_vs_train"]
    print(f"[{study} seed {seed}] FID {g['fid']:.2f} KID {g['kid_mean']:.4f} P {g['precision']:.3f} "
          f"R {g['recall']:.3f} D {g['density']:.3f} C {g['coverage']:.3f} "
          f"flagged {audit['summary']['fraction_flagged']:.3f}", flush=True)
    if figs_prefix is not None:
        nearest_neighbour_panel(pool_x, train, audit, f"{figs_prefix}_nn_panel.png", n=8)
        imgs, labels = [], []
        for k, name in enumerate(train.class_names):
            imgs += [train.images[train.labels == k][:8], pool_x[pool_y == k][:8]]
            labels += [f"real {name}", f"synth {name}"]
        save_grid(torch.cat(imgs), f"{figs_prefix}_real_vs_synthetic.png", nrow=8, row_labels=labels,
                  title=f"{study} seed {seed}, {cfg['gan_steps']} steps")
    for a, row in arms.items():
        rec["timing_s"][f"arm_{a}"] = row.get("seconds")
    rec["timing_s"]["ratio_selection_candidates"] = rec["ratio_selection"]["seconds"]
    rec["timing_s"]["total"] = round(time.perf_counter() - t_all, 1)
    write_record(rec, out_json)
    print(f"[{study} seed {seed}] done in {rec['timing_s']['total']} s -> {out_json}", flush=True)
    return rec


def control_arms(train, val, test, seed: int, epochs: int, skip=()) -> dict:
    """The CONTROL_ARMS rows (those not in ``skip``): real + copies of real training images drawn like the
    synthetic images of the matching arm."""
    counts = torch.bincount(train.labels, minlength=train.num_classes)
    reps = int(math.ceil(int(counts.max()) / max(int(counts[counts > 0].min()), 1)))
    copies = (train.images.repeat(reps, 1, 1, 1), train.labels.repeat(reps))
    return {name: run_arm(name, train, val, test, synthetic=copies, ratio=ratio, seed=seed, epochs=epochs,
                          device="cpu")
            for name, ratio in CONTROL_ARMS.items() if name not in skip}


def add_control_arms(rec: dict, out_json: Path) -> None:
    """Back-fill the control arms of a seed finished before they existed (they do not use the generator)."""
    train, val, test = load_splits(rec["study"], rec["seed"])
    new = control_arms(train, val, test, rec["seed"], rec["epochs"], skip=rec["arms"])
    rec["arms"].update(new)
    rec["timing_s"].update({f"arm_{k}": v["seconds"] for k, v in new.items()})
    rec["timing_s"]["controls_added_later"] = round(sum(v["seconds"] for v in new.values()), 1)
    write_record(rec, out_json)
    print(f"[{rec['study']} seed {rec['seed']}] added controls: "
          + ", ".join(f"{k} {v['test_auc']:.4f}" for k, v in new.items()), flush=True)


def extra_arms(arms: dict, gen: GeneratorModel, train, val, test, pool, models: dict, secs: dict, best_kind: str,
               seed: int, epochs: int) -> None:
    """Pre-specified arms beside the validation-chosen share (all scored once on test): real + synthetic at
    each fixed share (the candidate models of the share selection), the same with the seed's best classical
    kind, and a class-balancing top-up (every class filled with synthetic images up to the largest real
    class, ``ratio="balance"``) with and without it."""
    kw = dict(seed=seed, epochs=epochs, device="cpu")
    for r in RATIOS[1:]:
        model, info, ts = models[r]
        arms[f"synthetic@{r}"] = arm_row_from_model(f"synthetic@{r}", model, info, ts, test, seed, r, epochs,
                                                    secs[r])
        name = f"synthetic@{r}+best_classical"
        arms[name] = run_arm(name, train, val, test, synthetic=pool, ratio=r, classical=best_kind, **kw)
    counts = torch.bincount(train.labels, minlength=train.num_classes)
    labels = torch.repeat_interleave(torch.arange(train.num_classes), counts.max() - counts)
    top_up = gen.sample(len(labels), labels=labels, seed=20_000 + seed)
    for name, kind in (("synthetic_balance", None), ("synthetic_balance+best_classical", best_kind)):
        arms[name] = run_arm(name, train, val, test, synthetic=top_up, ratio="balance", classical=kind, **kw)
    for name in EXTRA_ARMS:
        if name.endswith("+best_classical"):
            arms[name]["classical_kind_chosen_on_val"] = best_kind


def add_extra_arms(rec: dict, cfg: dict, out_json: Path, run_root: Path) -> None:
    """Add the fixed-share and class-balancing arms to a seed finished before they existed: same saved
    generator and pool; the share candidates are retrained (deterministic on CPU) and checked against the
    recorded validation scores before their test scores are used."""
    study, seed, E = rec["study"], rec["seed"], rec["epochs"]
    model_dir = run_root / study / f"seed{seed}" / "model"
    train, val, test = load_splits(study, seed)
    gen = GeneratorModel.from_pretrained(model_dir, device="cpu")
    pool = synthetic_pool(gen, train, seed)
    t0 = time.perf_counter()
    best_r, scores, models, secs = select_ratio(rec["arms"]["real_only"], train, val, pool, seed, E)
    old = rec["ratio_selection"]["val_auc_by_ratio"]
    same = best_r == rec["ratio_selection"]["chosen_ratio"] and all(
        abs(scores[r] - old.get(r, old.get(str(r)))) < 1e-9 for r in RATIOS)
    rec["ratio_selection"]["candidates_retrained_and_reproduced"] = bool(same)
    if not same:
        raise SystemExit(f"[{study} seed {seed}] retrained share candidates do not reproduce the recorded "
                         f"validation scores ({scores} vs {old}); rerun this seed from scratch")
    best_kind = rec["arms"]["synthetic+best_classical"]["classical_kind_chosen_on_val"]
    extra_arms(rec["arms"], gen, train, val, test, pool, models, secs, best_kind, seed, E)
    rec["timing_s"]["extra_arms_added_later"] = round(time.perf_counter() - t0, 1)
    for a in EXTRA_ARMS:
        rec["timing_s"][f"arm_{a}"] = rec["arms"][a].get("seconds")
    write_record(rec, out_json)
    print(f"[{study} seed {seed}] added {len(EXTRA_ARMS)} arms in {rec['timing_s']['extra_arms_added_later']} s: "
          + ", ".join(f"{a} {rec['arms'][a]['test_auc']:.4f}" for a in EXTRA_ARMS), flush=True)


def write_record(rec: dict, out_json: Path) -> None:
    out_json.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_json.with_suffix(".tmp")
    tmp.write_text(json.dumps(to_jsonable(rec), indent=1))
    tmp.replace(out_json)


# --- aggregation -----------------------------------------------------------------------------------------
def seed_wall_s(timing: dict) -> float:
    """A seed's wall time: its first run plus any arms back-filled later."""
    return sum(timing.get(k) or 0.0 for k in ("total", "extra_arms_added_later", "controls_added_later"))


def dfmt(t: dict) -> str:
    """A paired difference: mean [CI], p."""
    return f"{t['mean_diff']:+.3f} [{t['lo']:+.3f}, {t['hi']:+.3f}], p={t['p_value']:.3f}"


def fmt(m: dict, d: int = 3) -> str:
    if m["lo"] is None or (isinstance(m["lo"], float) and math.isnan(m["lo"])):
        return f"{m['mean']:.{d}f}"
    return f"{m['mean']:.{d}f} [{m['lo']:.{d}f}, {m['hi']:.{d}f}]"


def aggregate(study: str, recs: list[dict], out_prefix: Path, meta: dict, quick: bool) -> dict:
    cfg = STUDIES[study] if not quick else {**STUDIES[study], **QUICK}
    seeds = [r["seed"] for r in recs]
    rows = {a: {r["seed"]: r["arms"][a] for r in recs} for a in ARMS}
    comparisons = {}
    for metric in METRICS:
        callables = {a: (lambda s, a=a: rows[a][s]) for a in ARMS}
        comparisons[metric] = compare_arms(callables, seeds, metric=metric, baseline="real_only",
                                           classical=["classical_flips_shifts", "classical_randaugment"])
    auc = comparisons["test_auc"]
    label = "QUICK SMOKE TEST (not a result): " if quick else ""
    png = bar_chart(auc["summary"], "test_auc", f"{out_prefix}.png",
                    title=f"{label}{study}: test AUC, mean and 95% CI over {len(seeds)} seeds")
    recall = {a: [mean_ci([rows[a][s]["test_per_class_recall"][k] for s in seeds])
                  for k in range(len(recs[0]["class_names"]))] for a in ARMS}
    gen_keys = ("fid", "kid_mean", "precision", "recall", "density", "coverage")
    gen = {k: mean_ci([r["generator_eval"]["synthetic_vs_train"][k] for r in recs]) for k in gen_keys}
    gen_ref = {k: mean_ci([r["generator_eval"]["val_vs_train_reference"][k] for r in recs]) for k in gen_keys}
    mem = mean_ci([r["memorization"]["synthetic_vs_train"]["fraction_flagged"] for r in recs])
    mem_ref = mean_ci([r["memorization"]["val_vs_train_reference"]["fraction_flagged"] for r in recs])
    chosen = {r["seed"]: r["ratio_selection"]["chosen_ratio"] for r in recs}
    n_zero = sum(1 for v in chosen.values() if v == 0.0)
    timing = {k: mean_ci([r["timing_s"][k] for r in recs if r["timing_s"].get(k) is not None])
              for k in recs[0]["timing_s"] if all(r["timing_s"].get(k) is not None for r in recs)}
    vs_copies = {m: {f"{a} - {b}": paired_test([rows[a][s][m] for s in seeds], [rows[b][s][m] for s in seeds])
                     for a, b in COPY_PAIRS} for m in METRICS}
    out = {"study": study, "quick": quick, "config": cfg, "seeds": seeds, "machine": meta,
           "synthetic_vs_real_copies": vs_copies,
           "comparisons": {m: {k: v for k, v in c.items() if k != "results"} for m, c in comparisons.items()},
           "per_class_recall": recall, "generator_eval": gen, "generator_eval_reference_val_vs_train": gen_ref,
           "memorization_fraction_flagged": mem, "memorization_reference_val_vs_train": mem_ref,
           "chosen_ratio_by_seed": chosen, "timing_s_mean": timing,
           "per_seed": [{"seed": r["seed"], "n_train": r["n_train"], "ratio_selection": r["ratio_selection"],
                         "arms": {a: {k: r["arms"][a].get(k) for k in ("test_auc", "test_accuracy",
                                                                         "test_balanced_accuracy", "ratio",
                                                                         "n_real", "n_synthetic", "best_epoch",
                                                                         "seconds", "classical_kind_chosen_on_val")}
                                  for a in ARMS},
                         "generator_eval": r["generator_eval"], "memorization": r["memorization"],
                         "gan": {k: r["gan"].get(k) for k in ("steps", "seconds", "s_per_step", "rollbacks")},
                         "timing_s": r["timing_s"]} for r in recs]}
    Path(f"{out_prefix}.json").write_text(json.dumps(to_jsonable(out), indent=1))

    r0 = recs[0]
    cn = r0["class_names"]
    L = [f"# {label}Medical downstream study: {study}", ""]
    if quick:
        L += ["**QUICK SMOKE TEST: 2 seeds, few GAN steps and epochs. These numbers are not results.**", ""]
    L += [f"Data: {cfg['data']} {int(round(100 * cfg['fraction']))}% stratified training subsample per seed "
          f"(n_train = {sorted({r['n_train'] for r in recs})}, class counts seed {r0['seed']}: "
          f"{r0['train_class_counts']}); full val ({r0['n_val']}) for model selection; full test ({r0['n_test']}), "
          f"scored once per arm. Seeds: {seeds}.", "",
          f"cGAN: `CGANRecipe` default `CGANConfig` (dcgan G, projection D + spectral norm + mbstd, hinge, "
          f"DiffAugment color,translation,cutout, EMA 0.999 with the library's warm-up "
          f"min(0.999, (1 + n) / (10 + n))), batch 64, {cfg['gan_steps']} steps, trained on the "
          f"seed's training subsample only. Samples are drawn from the EMA generator. "
          f"Synthetic pool per seed: as many samples as real training images, "
          f"with the real class counts (sampling seed 10000+seed).", "",
          f"Classifier: SmallCNN (width 32), AdamW lr 1e-3, cosine schedule, batch 64, {cfg['epochs']} epochs for "
          f"every arm, epoch selected on val AUC, test scored once.", "",
          "Arms: `real_only`; `classical_flips_shifts` (h-flip + reflect-padded shift up to 10%); "
          "`classical_randaugment` (h-flip + RandAugment(2, 9)); `synthetic` = real + synthetic at the share "
          "chosen per seed on val AUC over (0, 0.25, 0.5) (ties to the smaller share; share 0 means the arm is "
          "real_only); `synthetic+best_classical` = real + the classical kind with the better val AUC for that "
          "seed + synthetic at the same share; `synthetic_only_cas` = trained on the synthetic pool only "
          "(Classification Accuracy Score), epoch selected on real val. Pre-specified arms beside the chosen "
          "share (each scored once on test, never used to choose anything): `synthetic@0.25` / `synthetic@0.5` = "
          "real + synthetic at that fixed share (the selection's candidate models); `synthetic_balance` = every "
          "class topped up with synthetic images to the largest real class (the `MixedDataset(balance_classes="
          "True)` use case; top-up sampled with seed 20000+seed); `...+best_classical` = the same with the seed's "
          "val-chosen classical kind. Controls: `real_copies@0.25` / `real_copies_balance` = the same training-set "
          "size and class mix as `synthetic@0.25` / `synthetic_balance`, made of copies of real training images "
          "(oversampling). With this many arms the paired tests are not corrected for multiple "
          "comparisons: read a single p near 0.05 with care.", "",
          "## Test AUC (mean [95% CI] over seeds; paired differences, two-sided paired t-test)", "",
          markdown_table(auc), "",
          "`best classical` in the last column is the classical arm with the higher mean *test* AUC, which favours "
          "the baseline (conservative for the synthetic arms).", "",
          "## Synthetic images vs the same number of real copies (paired by seed)", "",
          "Each synthetic arm against its control: same training-set size and class mix, the added images being "
          "copies of real training images. A gain over real_only that the control shows too comes from more "
          "images (optimiser steps) per epoch, not from the generator.", "",
          "| comparison | test AUC diff [95% CI], p | balanced accuracy diff [95% CI], p |", "|---|---|---|",
          *(f"| {k} | {dfmt(vs_copies['test_auc'][k])} | {dfmt(vs_copies['test_balanced_accuracy'][k])} |"
            for k in vs_copies["test_auc"]), "",
          "## Accuracy and balanced accuracy", "", "### test_accuracy", "",
          markdown_table(comparisons["test_accuracy"]), "", "### test_balanced_accuracy", "",
          markdown_table(comparisons["test_balanced_accuracy"]), "",
          "## Per-class test recall (mean [95% CI])", "",
          "| arm | " + " | ".join(f"recall {c}" for c in cn) + " |", "|---|" + "---|" * len(cn)]
    for a in ARMS:
        L.append(f"| {a} | " + " | ".join(fmt(m) for m in recall[a]) + " |")
    L += ["", "## Synthetic share chosen on validation (val AUC per seed)", "",
          "| seed | val AUC @0 | @0.25 | @0.5 | chosen |", "|---|---|---|---|---|"]
    for r in recs:
        s = r["ratio_selection"]["val_auc_by_ratio"]
        g = [s.get(k, s.get(str(k))) for k in RATIOS]
        L.append(f"| {r['seed']} | {g[0]:.4f} | {g[1]:.4f} | {g[2]:.4f} | "
                 f"{r['ratio_selection']['chosen_ratio']} |")
    L += ["", (f"Share 0 (real only) won on validation for {n_zero} of {len(recs)} seeds"
               + (": for those seeds the synthetic arm *is* real_only and the combination arm *is* the classical "
                  "arm." if n_zero else ".")), ""]
    L += ["## Generator evaluation (per seed, then mean [95% CI])", "",
          "Features: a SmallCNN trained on the seed's real training subsample (`train_feature_encoder`); scores "
          "from different encoders/seeds are not comparable in absolute terms. Real reference row: the real "
          "validation images against the same training subsample in the same encoder (smaller n, so FID is "
          "biased upward): it shows what 'as close as real held-out data' looks like.", "",
          "| | FID | KID | precision | recall | density | coverage |", "|---|---|---|---|---|---|---|",
          "| synthetic vs train | " + " | ".join(fmt(gen[k], 4 if k == "kid_mean" else 3) for k in gen_keys) + " |",
          "| real val vs train (reference) | " + " | ".join(fmt(gen_ref[k], 4 if k == "kid_mean" else 3)
                                                        for k in gen_keys) + " |", "",
          f"Memorisation audit (pixel space, nearest training image, flagged when d(s, r) / d(r, nearest other "
          f"real) < {DEFAULT_THRESHOLD:.3f}): fraction of synthetic images flagged {fmt(mem)}; the same audit of "
          f"real val images against the training set flags {fmt(mem_ref)} (reference).", ""]
    if (out_prefix.parent / f"{out_prefix.name}_nn_panel.png").is_file():
        L += [f"Figures (seed {seeds[0]}): `{out_prefix.name}_real_vs_synthetic.png` (real vs synthetic grid), "
              f"`{out_prefix.name}_nn_panel.png` (8 synthetic images closest to a training image, with it), "
              f"`{out_prefix.name}.png` (bar chart, test AUC with 95% CI).", ""]
    L += ["## Per-seed generator numbers", "", "| seed | FID | KID | P | R | D | C | flagged | GAN s | s/step |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        g = r["generator_eval"]["synthetic_vs_train"]
        L.append(f"| {r['seed']} | {g['fid']:.2f} | {g['kid_mean']:.4f} | {g['precision']:.3f} | {g['recall']:.3f} | "
                 f"{g['density']:.3f} | {g['coverage']:.3f} | "
                 f"{r['memorization']['synthetic_vs_train']['fraction_flagged']:.3f} | {r['gan'].get('seconds')} | "
                 f"{r['gan'].get('s_per_step')} |")
    L += ["", "## Wall time (seconds, mean over seeds)", "", "| part | mean s |", "|---|---|"]
    for k, m in timing.items():
        L.append(f"| {k} | {m['mean']:.1f} |")
    L += ["", f"Machine: {meta['nproc']} CPUs ({meta['cpu']}), torch {meta['torch']} ({meta['torch_threads']} "
              f"threads), Python {meta['python']}, shared with other jobs (load average at start "
              f"{meta['load_average']}). Commit {meta['git_commit'][:10]} (+ uncommitted working tree).",
          f"Command: `{meta['command']}`", ""]
    Path(f"{out_prefix}.md").write_text("\n".join(L))
    print(f"[{study}] wrote {out_prefix}.md/.json and {png}", flush=True)
    return out


def write_summary(results_dir: Path, meta: dict, quick: bool) -> Path:
    prefix = "medical_quick_" if quick else "medical_"
    done = [s for s in ORDER if (results_dir / f"{prefix}{s}.json").is_file()]
    L = [f"# {'QUICK SMOKE TEST: ' if quick else ''}Medical downstream summary (synthaug cGAN augmentation)", "",
         "Test AUC, mean [95% CI] over seeds (Student t); differences are paired by seed (two-sided paired t-test). "
         "SmallCNN classifiers; details and the full protocol in `medical_<study>.md`.", "",
         "| study | n_train | seeds | real only | best classical | synthetic (share chosen on val) | "
         "synthetic + best classical | synthetic only (CAS) | synthetic - real only | synthetic - best classical | "
         "best combination - best classical | share 0 won (seeds) | wall time (min, all seeds) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in done:
        a = json.loads((results_dir / f"{prefix}{s}.json").read_text())
        c = a["comparisons"]["test_auc"]
        summ = {r["arm"]: r for r in c["summary"]}
        bc = c["best_classical"]
        d = dfmt
        n_train = sorted({p["n_train"] for p in a["per_seed"]})
        zero = sum(1 for v in a["chosen_ratio_by_seed"].values() if v == 0.0)
        L.append(f"| {s} | {n_train[0] if len(n_train) == 1 else n_train} | {len(a['seeds'])} | "
                 f"{fmt(summ['real_only'])} | {bc.replace('classical_', '')}: {fmt(summ[bc])} | "
                 f"{fmt(summ['synthetic'])} | {fmt(summ['synthetic+best_classical'])} | "
                 f"{fmt(summ['synthetic_only_cas'])} | {d(c['vs_baseline']['synthetic'])} | "
                 f"{d(c['vs_best_classical']['synthetic'])} | "
                 f"{d(c['vs_best_classical']['synthetic+best_classical'])} | {zero}/{len(a['seeds'])} | "
                 f"{sum(seed_wall_s(p['timing_s']) for p in a['per_seed']) / 60:.0f} |")
    L += ["", "Pre-specified fixed-share and class-balancing arms (not chosen on validation), test AUC, with "
          "the difference to the best classical arm and to the control that adds the same number of *real copies* "
          "instead of synthetic images:", "",
          "| study | synthetic@0.25 | - best classical | - real copies@0.25 | synthetic_balance | - best classical | "
          "- real copies (balance) |", "|---|---|---|---|---|---|---|"]
    for s in done:
        a = json.loads((results_dir / f"{prefix}{s}.json").read_text())
        c, v = a["comparisons"]["test_auc"], a.get("synthetic_vs_real_copies", {}).get("test_auc")
        summ = {r["arm"]: r for r in c["summary"]}
        if v is None or "synthetic_balance" not in summ:
            continue
        L.append(f"| {s} | {fmt(summ['synthetic@0.25'])} | {dfmt(c['vs_best_classical']['synthetic@0.25'])} | "
                 f"{dfmt(v['synthetic@0.25 - real_copies@0.25'])} | {fmt(summ['synthetic_balance'])} | "
                 f"{dfmt(c['vs_best_classical']['synthetic_balance'])} | "
                 f"{dfmt(v['synthetic_balance - real_copies_balance'])} |")
    missing = [s for s in ORDER if s not in done]
    L += ["", f"Studies completed: {', '.join(done) or 'none'}. "
              f"Not run (time budget): {', '.join(missing) or 'none'}.", "",
          "'best classical' = the classical arm with the higher mean test AUC (favours the baseline). "
          "Published MedMNIST v2 references (ResNet-18, 28 px, full training set, test AUC): BreastMNIST 0.901, "
          "PneumoniaMNIST 0.944; our SmallCNN with few epochs is a weaker, cheaper classifier, so compare arms "
          "with each other, not with these.", "",
          f"Machine: {meta['nproc']} CPUs ({meta['cpu']}), torch {meta['torch']}, shared with other jobs. "
          "Command per study (resumable; wall time above = sum over seeds of the first run plus any arms "
          "back-filled later; several ran side by side on the 2 cores): "
          "`OMP_WAIT_POLICY=PASSIVE python benchmarks/study_medical.py --study <study>`; "
          f"this summary was written by `{meta['command']}`.", ""]
    path = results_dir / f"{prefix.rstrip('_')}_summary.md"
    path.write_text("\n".join(L))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", required=True, choices=ORDER + ("all",))
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--quick", action="store_true", help="smoke test: breast, seeds 0 1, few steps; < 10 min")
    p.add_argument("--results-dir", type=Path, default=None)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                   help="torch CPU threads (1 when running two studies side by side on 2 cores)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    meta = machine_info()
    meta["command"] = "OMP_WAIT_POLICY=PASSIVE python benchmarks/study_medical.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    studies = list(ORDER) if args.study == "all" else [args.study]
    if args.quick:
        studies = studies[:1] if args.study != "all" else ["breast"]
        seeds = args.seeds or [0, 1]
        results_dir = args.results_dir or ROOT / "runs" / "study_medical_quick"
        run_root = ROOT / "runs" / "study_medical_quick" / "gan_ema_warmup"
        prefix = "medical_quick_"
    else:
        seeds = args.seeds or [0, 1, 2, 3, 4]
        results_dir = args.results_dir or RESULTS
        run_root = ROOT / "runs" / "study_medical" / "gan_ema_warmup"
        prefix = "medical_"
    if len(seeds) < 5 and not args.quick:
        print("note: fewer than 5 seeds; the protocol asks for >= 5 for a reported result", flush=True)
    per_run = results_dir / "medical" if not args.quick else results_dir / "per_run"
    for study in studies:
        cfg = {**STUDIES[study], **(QUICK if args.quick else {})}
        t_study = time.perf_counter()
        recs = []
        for seed in seeds:
            out_json = per_run / f"{study}_seed{seed}.json"
            if out_json.is_file():
                rec = json.loads(out_json.read_text())
                print(f"[{study} seed {seed}] already done, skipping ({out_json})", flush=True)
                if any(a not in rec["arms"] for a in EXTRA_ARMS):
                    add_extra_arms(rec, cfg, out_json, run_root)
                if any(a not in rec["arms"] for a in CONTROL_ARMS):
                    add_control_arms(rec, out_json)
            else:
                figs = results_dir / f"{prefix}{study}" if seed == seeds[0] else None
                rec = run_seed(study, seed, cfg, out_json, run_root, figs, args.quick)
            recs.append(rec)
        aggregate(study, recs, results_dir / f"{prefix}{study}", meta, args.quick)
        print(f"[{study}] study wall time this invocation {time.perf_counter() - t_study:.0f} s", flush=True)
        write_summary(results_dir, meta, args.quick)
    print(f"total wall time {time.perf_counter() - t_start:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
