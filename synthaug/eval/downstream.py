"""Downstream harness: does a classifier improve with synthetic data, against real-only training and strong
classical augmentation, with confidence intervals over seeds?

Every arm trains on (real + optional synthetic) images through the dataset objects a user builds
(:class:`~synthaug.augment.MixedDataset`), with optional classical augmentation, selects its step on the
validation split only (early stopping within a step budget), and is scored once on the test split.
:func:`run_arms` runs arms over the same seeds; :func:`compare_results` reports mean/CI per arm and paired
differences to a baseline and to the best classical arm (chosen on validation). Hyper-parameters such as the
synthetic share are chosen on validation (:func:`choose_ratio`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset
from torch.utils.data import Dataset

from ..augment.datasets import SyntheticDataset
from ..augment.mixed import MixedDataset
from ..augment.plan import per_class_counts, synthetic_counts
from ..checks import check_probability
from ..models import GeneratorModel
from ..utils import progress_bar
from .classifier import CLASSICAL_KINDS, classical_augment, evaluate, predict_proba, train_classifier
from .stats import paired_test, summarise

__all__ = [
    "TRAIN_DEFAULTS",
    "mixed_training_set",
    "as_synthetic_dataset",
    "real_copies",
    "per_class_counts",
    "train_arm",
    "score_arm",
    "run_arm",
    "pseudo_label_arm",
    "choose_ratio",
    "cas",
    "default_arms",
    "run_arms",
    "best_by_validation",
    "compare_results",
    "compare_arms",
    "format_diff",
    "markdown_table",
    "bar_chart",
]


# --- training sets --------------------------------------------------------------------------------------
def _pool(synthetic, name: str = "synthetic") -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) from a tuple/list of two tensors or a dataset with ``.images`` and ``.labels``."""
    if isinstance(synthetic, (tuple, list)) and len(synthetic) == 2:
        images, labels = synthetic
    elif hasattr(synthetic, "images") and hasattr(synthetic, "labels"):
        images, labels = synthetic.images, synthetic.labels
    else:
        raise TypeError(f"{name}: expected (images, labels) or a dataset with .images and .labels, "
                        f"found {type(synthetic).__name__}")
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 4:
        raise TypeError(f"{name}: expected float images (N, C, H, W) in [-1, 1], found "
                        f"{type(images).__name__} with shape {tuple(getattr(images, 'shape', ()))}")
    labels = torch.as_tensor(labels).long().flatten()
    if len(labels) != len(images):
        raise ValueError(f"{name}: expected one label per image ({len(images)}), found {len(labels)} labels")
    return images.float(), labels


def _check_ratio(ratio) -> float | str | dict:
    if ratio == "balance" or isinstance(ratio, dict):
        return ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating)) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio: expected the synthetic share of the training set in [0, 1), 'balance' or a dict "
                         f"class -> count, found {ratio!r}")
    return float(ratio)


def _class_names(ds, k: int) -> list[str]:
    names = getattr(ds, "class_names", None)
    return [str(c) for c in names] if names else [str(i) for i in range(k)]


def as_synthetic_dataset(synthetic, class_names, name: str = "synthetic") -> SyntheticDataset:
    """A :class:`SyntheticDataset` from a SyntheticDataset (as is), (images, labels) tensors or a dataset with
    ``.images``/``.labels`` (in memory, e.g. a translated set)."""
    if isinstance(synthetic, SyntheticDataset):
        return synthetic
    images, labels = _pool(synthetic, name)
    return SyntheticDataset.from_tensors(images, labels, class_names, source={"source": name})


def real_copies(real_train, counts) -> SyntheticDataset:
    """A pool of copies of the real training images holding at least ``counts`` items of each class (real images
    repeated as often as needed): the count-matched control for a synthetic arm, mixed in through the same
    :class:`MixedDataset` path.

    ``counts``: the number of extra images wanted per class, as a sequence with one count per class index (a list,
    numpy array or tensor, e.g. :func:`~synthaug.augment.plan.synthetic_counts`), or a dict by class index
    (``{0: 2000, 1: 2000}``) or by class name (``{"malignant": 2000, "normal": 2000}``, as
    ``ImageDataset.class_counts()`` returns); a class a dict leaves out gets 0. All forms give the same pool."""
    x, y = _pool(real_train, "real_train")
    names = _class_names(real_train, _num_classes(real_train))
    wanted = per_class_counts(counts, names, "counts")
    have = np.bincount(y.numpy(), minlength=len(names))
    reps = max([1] + [(c + h - 1) // h for c, h in zip(wanted, have) if h > 0])
    return SyntheticDataset.from_tensors(x.repeat(reps, 1, 1, 1), y.repeat(reps), names,
                                         source={"source": "copies of real training images"})


def mixed_training_set(real_train, synthetic=None, ratio: float | str = 0.0, seed: int = 0,
                       class_mix: str = "real", keep=None, allow_short: bool = False) -> Dataset:
    """The training set of an arm, built exactly as a user would: ``real_train`` alone (ratio 0) or
    ``MixedDataset(real_train, synthetic, ratio=..., class_mix=..., seed=seed, return_source=True)``; items
    ``(image, label, is_synthetic)``. ``ratio="balance"`` tops every class up to the largest real class; a dict
    ``{class: count}`` adds exactly those numbers (``MixedDataset(per_class=...)``).
    ``synthetic``: a generator (model or path), a :class:`SyntheticDataset` or in-memory (images, labels).
    Which samples, and how many per class, is decided by :mod:`synthaug.augment.plan`. ``keep``: a sample
    filter for a generator (see ``MixedDataset``)."""
    ratio = _check_ratio(ratio)
    if synthetic is None:
        if ratio != 0.0:
            raise ValueError(f"synthetic: expected a pool of synthetic images for ratio={ratio!r}, found None")
        return real_train
    k = _num_classes(real_train)
    if not isinstance(synthetic, (str, Path, GeneratorModel)):
        synthetic = as_synthetic_dataset(synthetic, _class_names(real_train, k))
    kw = ({"balance_classes": True} if ratio == "balance" else {"per_class": ratio} if isinstance(ratio, dict)
          else {"ratio": ratio, "class_mix": class_mix})
    return MixedDataset(real_train, synthetic, seed=seed, return_source=True, keep=keep, allow_short=allow_short,
                        **kw)


def _transform(classical):
    if classical is None or callable(classical):
        return classical, (None if classical is None else getattr(classical, "__name__", type(classical).__name__))
    if isinstance(classical, str):
        return classical_augment(classical), classical
    raise TypeError(f"classical: expected None, one of {list(CLASSICAL_KINDS)} or a batch callable, "
                    f"found {type(classical).__name__}")


def _num_classes(*datasets) -> int:
    for ds in datasets:
        if isinstance(getattr(ds, "num_classes", None), int):
            return int(ds.num_classes)
    return int(max(int(_pool(ds, "dataset")[1].max()) for ds in datasets)) + 1


# --- arms -----------------------------------------------------------------------------------------------
#: Classifier training settings every arm of a comparison shares (see :func:`train_classifier`).
TRAIN_DEFAULTS = dict(arch="small_cnn", max_steps=2000, eval_every=None, patience=20, batch_size=64, lr=1e-3,
                      select_on="auc", width=32)


def score_arm(arm: str, model, info: dict, train_set, test, *, seed: int, ratio=0.0, classical_name=None,
              device=None, seconds: float | None = None) -> dict:
    """The result row of a trained arm: its training facts and its test metrics (test scored here, once)."""
    m = evaluate(model, test, device)
    n_syn = int(info.get("n_synthetic", 0))
    sel = info["select_on"]
    return {"arm": arm, "seed": seed, "ratio": ratio if isinstance(ratio, (str, dict)) else float(ratio),
            "classical": classical_name, "arch": info["arch"], "max_steps": info["max_steps"],
            "n_real": len(train_set) - n_syn, "n_synthetic": n_syn, "best_step": info["best_step"],
            "best_epoch": info["best_epoch"], "steps_run": info["steps_run"], "stopped_early": info["stopped_early"],
            "best_in_last_10pct": info["best_in_last_10pct"], "select_on": sel, "val_score": info["best_val"],
            f"val_{sel}": info["best_val"], "synthetic_weight": info["synthetic_weight"],
            **({"stage1": info["stage1"]} if "stage1" in info else {}),
            **({"shortfall": train_set.shortfall} if getattr(train_set, "shortfall", None) else {}),
            **({"filter_report": report} if (report := getattr(getattr(train_set, "synthetic", None),
                                                                  "filter_report", None)) else {}),
            **{f"test_{k}": m[k] for k in ("accuracy", "balanced_accuracy", "auc", "loss", "per_class_recall")},
            "n_test": m["n"], "seconds": round(seconds if seconds is not None else info["seconds"], 2)}


def train_arm(real_train, val, *, synthetic=None, ratio: float | str = 0.0, classical=None, seed: int = 0,
              class_mix: str = "real", device=None, num_classes: int | None = None, keep=None,
              allow_short: bool = False, finetune_steps: int = 0, finetune_lr: float | None = None, **train_kw):
    """Train one arm (no test data involved): ``(model, info, train_set)``. ``train_kw`` go to
    :func:`train_classifier` over :data:`TRAIN_DEFAULTS` (``synthetic_weight`` < 1 down-weights synthetic
    items). ``keep``: a sample filter applied when ``synthetic`` is a generator (``MixedDataset(keep=...)``).
    ``finetune_steps`` > 0: two-stage training -- after the mixed set, fine-tune on the real data only
    (learning rate ``finetune_lr``, default a tenth of the first stage's), again selected on validation;
    ``info["stage1"]`` keeps the first stage's facts."""
    train_set = mixed_training_set(real_train, synthetic, ratio, seed, class_mix, keep=keep, allow_short=allow_short)
    transform, _ = _transform(classical)
    kw = {**TRAIN_DEFAULTS, **train_kw}
    k = num_classes or _num_classes(real_train, val)
    model, info = train_classifier(train_set, val, transform=transform, seed=seed, device=device, num_classes=k,
                                   **kw)
    if finetune_steps:
        stage1 = {key: info[key] for key in ("best_step", "best_val", "steps_run", "n_synthetic", "seconds")}
        n_syn = info["n_synthetic"]
        kw2 = {**kw, "max_steps": int(finetune_steps), "lr": finetune_lr or kw["lr"] / 10}
        model, info = train_classifier(real_train, val, transform=transform, seed=seed, device=device,
                                       num_classes=k, init_state=model.state_dict(), **kw2)
        info = {**info, "stage1": stage1, "n_synthetic": n_syn, "finetune_steps": int(finetune_steps)}
    return model, info, train_set


def run_arm(arm: str, real_train, val, test, *, synthetic=None, ratio: float | str = 0.0, classical=None,
            seed: int = 0, class_mix: str = "real", device=None, **train_kw) -> dict:
    """Train one arm for one seed (:func:`train_arm`; every choice on ``val``) and score it once on ``test``.

    Returns a flat dict: ``arm, seed, ratio, classical, arch, n_real, n_synthetic, best_step, best_epoch,
    steps_run, best_in_last_10pct, select_on, val_score, test_accuracy, test_balanced_accuracy, test_auc,
    test_loss, test_per_class_recall, n_test, seconds``.
    """
    t0 = time.perf_counter()
    model, info, train_set = train_arm(real_train, val, synthetic=synthetic, ratio=ratio, classical=classical,
                                       seed=seed, class_mix=class_mix, device=device, **train_kw)
    return score_arm(arm, model, info, train_set, test, seed=seed, ratio=ratio,
                     classical_name=_transform(classical)[1], device=device, seconds=time.perf_counter() - t0)


def pseudo_label_arm(arm: str, real_train, unlabelled, val, test, *, threshold: float = 0.9, seed: int = 0,
                     classical=None, device=None, true_labels=None, **train_kw) -> dict:
    """Self-training, the classifier-only semi-supervised baseline: train on ``real_train`` (step chosen on
    ``val``), label the ``unlabelled`` images (float NCHW in [-1, 1]) whose top class probability is at least
    ``threshold``, retrain from scratch on the labelled plus pseudo-labelled images, and score ``test`` once.
    ``true_labels`` of the pool (optional, diagnostics only: never used for a choice) give the pseudo-labels'
    accuracy. The row adds ``n_pseudo``, ``pseudo_per_class`` and ``pseudo_label_accuracy``."""
    from ..data import ImageDataset

    check_probability("threshold", threshold, zero=False)
    images = unlabelled.images if hasattr(unlabelled, "images") else unlabelled
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise TypeError(f"unlabelled: expected float images (N, C, H, W) in [-1, 1], found "
                        f"{type(unlabelled).__name__}")
    t0 = time.perf_counter()
    k = _num_classes(real_train, val)
    teacher, _, _ = train_arm(real_train, val, classical=classical, seed=seed, device=device, num_classes=k,
                              **train_kw)
    proba, _ = predict_proba(teacher, TensorDataset(images, torch.zeros(len(images), dtype=torch.long)), device)
    conf, pseudo = proba.max(1), proba.argmax(1)
    chosen = np.flatnonzero(conf >= float(threshold))
    x, y = _pool(real_train, "real_train")
    names = _class_names(real_train, k)
    combined = ImageDataset(torch.cat([x, images[torch.from_numpy(chosen)]]),
                            torch.cat([y, torch.from_numpy(pseudo[chosen]).long()]), names, name="labelled+pseudo")
    model, info, train_set = train_arm(combined, val, classical=classical, seed=seed, device=device, num_classes=k,
                                       **train_kw)
    row = score_arm(arm, model, info, train_set, test, seed=seed, classical_name=_transform(classical)[1],
                    device=device, seconds=time.perf_counter() - t0)
    acc = None
    if true_labels is not None and len(chosen):
        acc = float((torch.as_tensor(true_labels).long().reshape(-1)[torch.from_numpy(chosen)]
                     == torch.from_numpy(pseudo[chosen]).long()).float().mean())
    return {**row, "n_real": len(x), "n_pseudo": int(len(chosen)), "threshold": float(threshold),
            "pseudo_per_class": np.bincount(pseudo[chosen], minlength=k).tolist(), "pseudo_label_accuracy": acc}


def choose_ratio(real_train, val, synthetic, ratios: Sequence[float] = (0, 0.25, 0.5, 0.75), *,
                 seed: int = 0, classical=None, device=None, class_mix: str = "real", **train_kw) -> dict:
    """Pick the synthetic share by the best validation score of one classifier per share (test is not used).

    Ties go to the smaller share. Returns ``best_ratio``, ``val_scores`` (ratio -> best validation score),
    ``zero_is_best``, ``message`` (which says plainly when real data alone did best) and ``candidates``
    (ratio -> ``(model, info, train_set)``), so the chosen model, or any pre-specified share, can be scored
    on test without retraining.
    """
    ratios = sorted({_check_ratio(r) for r in ratios if r != "balance"})
    if not ratios:
        raise ValueError("ratios: expected at least one synthetic share, found none")
    k = _num_classes(real_train, val)
    candidates, scores = {}, {}
    for r in ratios:
        candidates[r] = train_arm(real_train, val, synthetic=synthetic if r > 0 else None, ratio=r,
                                  classical=classical, seed=seed, class_mix=class_mix, device=device,
                                  num_classes=k, **train_kw)
        scores[r] = float(candidates[r][1]["best_val"])
    select_on = candidates[ratios[0]][1]["select_on"]
    sign = -1.0 if select_on == "loss" else 1.0
    best = max(ratios, key=lambda r: (sign * scores[r], -r))
    if best == 0.0:
        others = [r for r in ratios if r > 0]
        alt = max(others, key=lambda r: sign * scores[r]) if others else None
        message = ("Real data only (ratio 0) scored best on validation"
                   + (f" ({select_on} {scores[0.0]:.4f} vs {scores[alt]:.4f} at ratio {alt})" if alt is not None
                      else "") + ": the synthetic images did not help here.")
    else:
        message = (f"Synthetic share {best} scored best on validation ({select_on} {scores[best]:.4f}"
                   + (f" vs {scores[0.0]:.4f} real-only" if 0.0 in scores else "")
                   + "); chosen on validation only, confirm over several seeds on test.")
    return {"best_ratio": best, "val_scores": scores, "zero_is_best": best == 0.0, "select_on": select_on,
            "seed": seed, "message": message, "candidates": candidates}


def cas(synthetic_images: torch.Tensor, synthetic_labels, val, test, *, real_train=None, seed: int = 0,
        device=None, **train_kw) -> dict:
    """Classification Accuracy Score (Ravuri & Vinyals 2019): train on synthetic images only, score on real test.

    The step is selected on the real validation split. With ``real_train`` the same classifier trained on
    real data is reported alongside (``real_reference``) for scale.
    """
    syn_x, syn_y = _pool((synthetic_images, synthetic_labels), "synthetic_images")
    k = _num_classes(val, test)
    t0 = time.perf_counter()
    model, info = train_classifier(TensorDataset(syn_x, syn_y), val, seed=seed, device=device, num_classes=k,
                                   **{**TRAIN_DEFAULTS, **train_kw})
    m = evaluate(model, test, device)
    out = {"cas_accuracy": m["accuracy"], "cas_balanced_accuracy": m["balanced_accuracy"], "cas_auc": m["auc"],
           "cas_per_class_recall": m["per_class_recall"], "n_synthetic": len(syn_y), "n_test": m["n"],
           "best_step": info["best_step"], "best_in_last_10pct": info["best_in_last_10pct"],
           "val_score": info["best_val"], "seed": seed, "seconds": round(time.perf_counter() - t0, 2),
           "real_reference": None,
           "note": "trained on synthetic images only; step selected on real validation; scored on real test"}
    if real_train is not None:
        ref = run_arm("real_only", real_train, val, test, seed=seed, device=device, **train_kw)
        out["real_reference"] = {k2: ref[k2] for k2 in ("test_accuracy", "test_balanced_accuracy", "test_auc")}
    return out


def default_arms(real_train, val, test, synthetic=None, *, ratio: float = 0.5, device=None,
                 classical_kinds: Sequence[str] = ("flips_shifts", "randaugment"), **train_kw) -> dict[str, Callable]:
    """The standard arms for :func:`run_arms`: ``real_only``, ``classical_<kind>`` for each classical kind and,
    with a ``synthetic`` pool, ``synthetic@<ratio>``, its count-matched control ``real_copies@<ratio>`` and
    ``synthetic@<ratio>+<kind>`` for each kind."""
    kw = dict(device=device, **train_kw)

    def arm(name, **extra):
        return lambda seed: run_arm(name, real_train, val, test, seed=seed, **kw, **extra)

    arms = {"real_only": arm("real_only")}
    for kind in classical_kinds:
        arms[f"classical_{kind}"] = arm(f"classical_{kind}", classical=kind)
    if synthetic is not None:
        r = _check_ratio(ratio)
        k = _num_classes(real_train, val)
        counts = synthetic_counts(_pool(real_train, "real_train")[1].numpy(), k, ratio=r)
        arms[f"synthetic@{r:g}"] = arm(f"synthetic@{r:g}", synthetic=synthetic, ratio=r)
        arms[f"real_copies@{r:g}"] = arm(f"real_copies@{r:g}", synthetic=real_copies(real_train, counts), ratio=r)
        for kind in classical_kinds:
            arms[f"synthetic@{r:g}+{kind}"] = arm(f"synthetic@{r:g}+{kind}", synthetic=synthetic, ratio=r,
                                                  classical=kind)
    return arms


# --- comparisons ----------------------------------------------------------------------------------------
def run_arms(arms: dict[str, Callable[[int], dict]], seeds: Sequence[int], *, progress: bool | None = True) -> dict:
    """Run every arm on every seed (paired: the same seeds for all arms): ``{arm: [result per seed]}``.

    ``arms``: name -> callable(seed) returning a result dict (e.g. :func:`run_arm`). ``progress`` (on by default,
    as the Trainer's; None follows :func:`synthaug.utils.progress_default`): a bar over the (seed, arm) runs with
    the time left, naming the run in progress."""
    if not isinstance(arms, dict) or not arms or not all(callable(f) for f in arms.values()):
        raise TypeError(f"arms: expected a non-empty dict name -> callable(seed), found {type(arms).__name__}")
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected distinct seeds, found {seeds}")
    results: dict[str, list[dict]] = {a: [] for a in arms}
    steps = [(s, a) for s in seeds for a in arms]
    with progress_bar(len(steps), "arms x seeds", unit="run", enabled=progress) as bar:
        for seed, name in steps:
            bar.set_postfix_str(f"{name}, seed {seed}")
            r = dict(arms[name](seed))
            r.setdefault("arm", name)
            r.setdefault("seed", seed)
            results[name].append(r)
            bar.update(1)
    return results


def best_by_validation(results: dict[str, list[dict]], candidates: Sequence[str]) -> str | None:
    """The candidate arm with the best mean validation score over seeds (``val_score``; lower is better when
    the arms selected on loss). Test metrics are never read. Ties go to the earlier candidate."""
    candidates = [a for a in candidates if results.get(a)]
    if not candidates:
        return None
    for a in candidates:
        if any("val_score" not in r for r in results[a]):
            raise ValueError(f"results[{a!r}]: expected 'val_score' in every result to choose on validation")
    sign = -1.0 if results[candidates[0]][0].get("select_on") == "loss" else 1.0
    means = {a: float(np.mean([r["val_score"] for r in results[a]])) for a in candidates}
    return max(candidates, key=lambda a: (sign * means[a], -candidates.index(a)))


def compare_results(results: dict[str, list[dict]], *, metric: str = "test_auc", baseline: str | None = None,
                    classical: Sequence[str] | None = None, confidence: float = 0.95) -> dict:
    """Compare saved results (``{arm: [result per seed]}``, paired by ``seed``): mean and t-interval per arm,
    paired differences to ``baseline`` (default: the first arm) and to the best classical arm, which is chosen
    by mean **validation** score (:func:`best_by_validation`), never by test. ``classical`` names the classical
    arms (default: names starting with ``"classical"``). Paired tests follow :func:`~.stats.paired_test`: none
    is reported when half or more of the differences are exactly zero."""
    if not isinstance(results, dict) or not results:
        raise ValueError(f"results: expected a non-empty dict arm -> list of results, found {type(results).__name__}")
    baseline = next(iter(results)) if baseline is None else baseline
    if baseline not in results:
        raise ValueError(f"baseline: expected one of {list(results)}, found {baseline!r}")
    classical = [a for a in results if a.startswith("classical")] if classical is None else list(classical)
    unknown = [a for a in classical if a not in results]
    if unknown:
        raise ValueError(f"classical: expected arm names from {list(results)}, found unknown {unknown}")
    for a, rs in results.items():
        missing = [r.get("seed") for r in rs if metric not in r]
        if missing:
            raise ValueError(f"metric: expected key {metric!r} in the result of arm {a!r}, missing for seeds "
                             f"{missing}")
    results = {a: sorted(rs, key=lambda r: r["seed"]) for a, rs in results.items()}
    seeds = sorted({r["seed"] for rs in results.values() for r in rs})
    summary = summarise(results, metric, baseline=baseline, confidence=confidence)
    best_classical = best_by_validation(results, classical)

    def paired_vs(ref: str | None) -> dict:
        out = {}
        if ref is None:
            return out
        by_seed = {r["seed"]: r[metric] for r in results[ref]}
        for a, rs in results.items():
            common = [r for r in rs if r["seed"] in by_seed]
            if a != ref and len(common) >= 2:
                out[a] = paired_test([r[metric] for r in common], [by_seed[r["seed"]] for r in common], confidence)
        return out

    return {"metric": metric, "seeds": seeds, "confidence": confidence, "baseline": baseline,
            "classical": classical, "best_classical": best_classical,
            "best_classical_chosen_on": "mean validation score", "results": results, "summary": summary,
            "vs_baseline": paired_vs(baseline), "vs_best_classical": paired_vs(best_classical)}


def compare_arms(arms: dict[str, Callable[[int], dict]], seeds: Sequence[int], *, metric: str = "test_auc",
                 baseline: str | None = None, classical: Sequence[str] | None = None, confidence: float = 0.95,
                 progress: bool | None = True) -> dict:
    """:func:`run_arms` then :func:`compare_results` (see both)."""
    results = run_arms(arms, seeds, progress=progress)
    return compare_results(results, metric=metric, baseline=baseline, classical=classical, confidence=confidence)


def format_diff(t: dict | None, digits: int = 3) -> str:
    """A paired difference as ``d [lo, hi], p=...``, or why no test is reported."""
    if not t:
        return "-"
    if t.get("no_test_reason"):
        return f"{t['mean_diff']:+.{digits}f} (no test: {t['no_test_reason']})"
    return f"{_fmt_ci(t['mean_diff'], t['lo'], t['hi'], digits)}, p={t['p_value']:.3f}"


def _fmt_ci(mean: float, lo: float, hi: float, digits: int = 3) -> str:
    if math.isnan(lo):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown_table(comparison: dict) -> str:
    """Markdown table of a :func:`compare_arms` result: mean [CI] per arm, paired differences and p-values."""
    metric, base, best_c = comparison["metric"], comparison["baseline"], comparison["best_classical"]
    pct = int(round(100 * comparison["confidence"]))
    head = f"| arm | {metric} mean [{pct}% CI] | n | diff vs {base} [CI], p |"
    sep = "|---|---|---|---|"
    if best_c:
        head += f" diff vs {best_c} [CI], p |"
        sep += "---|"
    lines = [head, sep]
    for row in comparison["summary"]:
        arm = row["arm"]
        cells = [arm, _fmt_ci(row["mean"], row["lo"], row["hi"]), str(row["n"])]
        for ref, table in ((base, comparison["vs_baseline"]), (best_c, comparison["vs_best_classical"])):
            if ref is None:
                continue
            t = table.get(arm)
            cells.append("(reference)" if arm == ref else format_diff(t))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Intervals: Student t over {len(comparison['seeds'])} seeds; differences are paired by seed "
                 f"(two-sided paired t-test; none where half or more of the differences are exactly 0)."
                 + (f" Best classical arm ({best_c}) chosen by mean validation score." if best_c else ""))
    return "\n".join(lines)


def bar_chart(summary_rows: list[dict], metric: str, path, title: str | None = None) -> Path:
    """PNG bar chart of per-arm means with their confidence-interval error bars (rows from ``summarise`` or
    ``compare_arms(...)["summary"]``; 95% by default). The y axis is zoomed to the values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not summary_rows:
        raise ValueError("summary_rows: expected at least one row, found none")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [r["arm"] for r in summary_rows]
    means = np.array([r["mean"] for r in summary_rows], dtype=float)
    lo = np.array([r["lo"] for r in summary_rows], dtype=float)
    hi = np.array([r["hi"] for r in summary_rows], dtype=float)
    err = np.nan_to_num(np.vstack([means - lo, hi - means]), nan=0.0)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 1.5), 3.8), dpi=120)
    ax.bar(range(len(names)), means, yerr=err, capsize=5, color="#4c72b0", alpha=0.85)
    for i, (m, r) in enumerate(zip(means, summary_rows)):
        ax.annotate(f"{m:.3f}\nn={r['n']}", (i, m), textcoords="offset points", xytext=(12, 2), fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=25, ha="right", fontsize=8)
    finite = np.concatenate([means, lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
    span = float(finite.max() - finite.min()) or 0.05
    ax.set_ylim(max(0.0, float(finite.min()) - 0.5 * span), float(finite.max()) + 0.3 * span)
    ax.set_ylabel(f"{metric} (mean, t-interval)")
    ax.set_title(title or f"{metric} by arm")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
