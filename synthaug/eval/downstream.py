"""Downstream harness: does a classifier improve with synthetic data, against real-only training and strong
classical augmentation, with confidence intervals over seeds?

Every arm trains on (real + optional synthetic) images with optional classical augmentation, selects its
epoch on the validation split only, and is scored once on the test split. :func:`compare_arms` runs arms
over the same seeds and reports mean/CI per arm and paired differences to a baseline and to the best
classical arm. Hyper-parameters such as the synthetic share are chosen on validation (:func:`choose_ratio`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .classifier import classical_augment, evaluate, train_classifier
from ..utils import allocate_counts
from .stats import paired_test, summarise

__all__ = [
    "mixed_training_set",
    "run_arm",
    "choose_ratio",
    "cas",
    "quick_gain",
    "default_arms",
    "compare_arms",
    "markdown_table",
    "bar_chart",
    "SINGLE_SEED_NOTE",
]

SINGLE_SEED_NOTE = ("single seed, indicative only: differences of a few AUC points are within seed-to-seed "
                    "noise on a test set this small; use compare_arms over >= 5 seeds for a conclusion")


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


def _check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float, np.floating)) or not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio: expected the synthetic share of the training set in [0, 1), found {ratio!r}")
    return float(ratio)


def mixed_training_set(real_train, synthetic=None, ratio: float | str = 0.0, seed: int = 0,
                       class_mix: str = "real") -> TensorDataset:
    """Real images plus synthetic ones making up ``ratio`` of the result; items ``(image, label, is_synthetic)``.

    ``n_syn = round(ratio / (1 - ratio) * n_real)`` images are drawn without replacement from the
    ``synthetic`` pool ((images, labels) or a dataset), deterministically under ``seed``, with class counts
    following the real training set (``class_mix="real"``) or equal per class (``"balanced"``).
    ``ratio="balance"`` instead tops every class up to the largest real class (as
    ``MixedDataset(balance_classes=True)``); ``class_mix`` is then unused.
    """
    balance = isinstance(ratio, str)
    if balance and ratio != "balance":
        raise ValueError(f"ratio: expected a synthetic share in [0, 1) or 'balance', found {ratio!r}")
    if not balance:
        ratio = _check_ratio(ratio)
    if class_mix not in ("real", "balanced"):
        raise ValueError(f"class_mix: expected 'real' or 'balanced', found {class_mix!r}")
    real_x, real_y = _pool(real_train, "real_train")
    parts_x, parts_y, parts_s = [real_x], [real_y], [torch.zeros(len(real_y), dtype=torch.bool)]
    if synthetic is None:
        if balance or ratio > 0:
            raise ValueError(f"synthetic: expected a pool of synthetic images for ratio={ratio!r}, found None")
        return TensorDataset(real_x, real_y, parts_s[0])
    syn_x, syn_y = _pool(synthetic)
    if syn_x.shape[1:] != real_x.shape[1:]:
        raise ValueError(f"synthetic: expected images of shape {tuple(real_x.shape[1:])} like real_train, "
                         f"found {tuple(syn_x.shape[1:])}")
    k = int(max(real_y.max(), syn_y.max())) + 1
    real_counts = np.bincount(real_y.numpy(), minlength=k)
    if balance:
        want = real_counts.max() - real_counts
    else:
        n_real = len(real_y)
        weights = real_counts.astype(float) if class_mix == "real" else (real_counts > 0).astype(float)
        want = allocate_counts(int(round(ratio / (1.0 - ratio) * n_real)), weights)
    n_syn = int(want.sum())
    if n_syn > 0:
        rng = np.random.default_rng(int(seed))
        chosen = []
        for c in range(k):
            members = np.flatnonzero(syn_y.numpy() == c)
            if want[c] > len(members):
                raise ValueError(f"synthetic: expected at least {want[c]} images of class {c} for ratio={ratio!r} "
                                 f"({n_syn} synthetic for {len(real_y)} real), found {len(members)} in the pool")
            chosen.append(rng.choice(members, size=int(want[c]), replace=False))
        idx = torch.from_numpy(np.sort(np.concatenate(chosen)))
        parts_x.append(syn_x[idx])
        parts_y.append(syn_y[idx])
        parts_s.append(torch.ones(len(idx), dtype=torch.bool))
    return TensorDataset(torch.cat(parts_x), torch.cat(parts_y), torch.cat(parts_s))


def _transform(classical):
    if classical is None or callable(classical):
        return classical, (None if classical is None else getattr(classical, "__name__", type(classical).__name__))
    if isinstance(classical, str):
        return classical_augment(classical), classical
    raise TypeError(f"classical: expected None, 'flips_shifts', 'randaugment' or a batch callable, "
                    f"found {type(classical).__name__}")


def _num_classes(*datasets) -> int:
    for ds in datasets:
        if isinstance(getattr(ds, "num_classes", None), int):
            return int(ds.num_classes)
    return int(max(int(_pool(ds, "dataset")[1].max()) for ds in datasets)) + 1


# --- arms -----------------------------------------------------------------------------------------------
def run_arm(arm: str, real_train, val, test, *, synthetic=None, ratio: float | str = 0.0, classical=None,
            seed: int = 0,
            epochs: int = 30, arch: str = "small_cnn", device=None, batch_size: int = 64, lr: float = 1e-3,
            select_on: str = "auc", class_mix: str = "real") -> dict:
    """Train one arm for one seed and score it once on ``test``.

    Training set: :func:`mixed_training_set` (``ratio`` = synthetic share). ``classical``: None, a
    :func:`classical_augment` kind or a batch callable. Epoch selected on ``val``. Returns a flat dict:
    ``arm, seed, ratio, classical, n_real, n_synthetic, best_epoch, val_<select_on>, test_accuracy,
    test_balanced_accuracy, test_auc, test_loss, test_per_class_recall, n_test, seconds``.
    """
    t0 = time.perf_counter()
    train_set = mixed_training_set(real_train, synthetic, ratio, seed, class_mix)
    transform, classical_name = _transform(classical)
    model, info = train_classifier(train_set, val, arch=arch, epochs=epochs, batch_size=batch_size, lr=lr,
                                   transform=transform, seed=seed, device=device, select_on=select_on,
                                   num_classes=_num_classes(real_train, val))
    m = evaluate(model, test, device)
    n_syn = int(train_set.tensors[2].sum())
    return {"arm": arm, "seed": seed, "ratio": ratio if isinstance(ratio, str) else float(ratio),
            "classical": classical_name, "arch": arch,
            "epochs": epochs, "n_real": len(train_set) - n_syn, "n_synthetic": n_syn,
            "best_epoch": info["best_epoch"], f"val_{select_on}": info["best_val"],
            **{f"test_{k}": m[k] for k in ("accuracy", "balanced_accuracy", "auc", "loss", "per_class_recall")},
            "n_test": m["n"], "seconds": round(time.perf_counter() - t0, 2)}


def choose_ratio(real_train, val, synthetic, ratios: Sequence[float] = (0, 0.25, 0.5, 0.75), *,
                 seeds: Sequence[int] = (0,), select_on: str = "auc", epochs: int = 30, arch: str = "small_cnn",
                 classical=None, device=None, class_mix: str = "real") -> dict:
    """Pick the synthetic share by the mean best-epoch validation score over ``seeds`` (test is not used).

    Ties go to the smaller share. Returns ``best_ratio``, ``val_scores`` (ratio -> mean), ``val_scores_by_seed``,
    ``zero_is_best`` and ``message``, which says plainly when real data alone did best.
    """
    ratios = sorted({_check_ratio(r) for r in ratios})
    if not ratios:
        raise ValueError("ratios: expected at least one synthetic share, found none")
    transform, _ = _transform(classical)
    k = _num_classes(real_train, val)
    by_seed: dict[float, list[float]] = {}
    for r in ratios:
        for s in seeds:
            train_set = mixed_training_set(real_train, synthetic, r, s, class_mix)
            _, info = train_classifier(train_set, val, arch=arch, epochs=epochs, transform=transform, seed=s,
                                       device=device, select_on=select_on, num_classes=k)
            by_seed.setdefault(r, []).append(float(info["best_val"]))
    scores = {r: float(np.mean(v)) for r, v in by_seed.items()}
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
                   + "); chosen on validation only, confirm with compare_arms over several seeds on test.")
    return {"best_ratio": best, "val_scores": scores, "val_scores_by_seed": by_seed, "zero_is_best": best == 0.0,
            "select_on": select_on, "seeds": list(seeds), "message": message}


def cas(synthetic_images: torch.Tensor, synthetic_labels, val, test, *, real_train=None, seed: int = 0,
        epochs: int = 30, arch: str = "small_cnn", device=None, select_on: str = "auc") -> dict:
    """Classification Accuracy Score (Ravuri & Vinyals 2019): train on synthetic images only, score on real test.

    The epoch is selected on the real validation split. With ``real_train`` the same classifier trained on
    real data is reported alongside (``real_reference``) for scale.
    """
    syn_x, syn_y = _pool((synthetic_images, synthetic_labels), "synthetic_images")
    k = _num_classes(val, test)
    t0 = time.perf_counter()
    model, info = train_classifier(TensorDataset(syn_x, syn_y), val, arch=arch, epochs=epochs, seed=seed,
                                   device=device, select_on=select_on, num_classes=k)
    m = evaluate(model, test, device)
    out = {"cas_accuracy": m["accuracy"], "cas_balanced_accuracy": m["balanced_accuracy"], "cas_auc": m["auc"],
           "cas_per_class_recall": m["per_class_recall"], "n_synthetic": len(syn_y), "n_test": m["n"],
           "best_epoch": info["best_epoch"], "seed": seed, "seconds": round(time.perf_counter() - t0, 2),
           "real_reference": None,
           "note": "trained on synthetic images only; epoch selected on real validation; scored on real test"}
    if real_train is not None:
        ref = run_arm("real_only", real_train, val, test, seed=seed, epochs=epochs, arch=arch, device=device,
                      select_on=select_on)
        out["real_reference"] = {k2: ref[k2] for k2 in ("test_accuracy", "test_balanced_accuracy", "test_auc")}
    return out


def quick_gain(model, *, seed: int = 0, device=None, epochs: int = 10, ratio: float = 0.5,
               arch: str = "small_cnn") -> dict:
    """Real-only vs real + synthetic (share ``ratio``, drawn from ``model.sample``) on the shipped BreastMNIST,
    one seed, SmallCNN by default. For ``make demo``: a quick indication, not a result."""
    from ..data import load_breastmnist

    t0 = time.perf_counter()
    train, val, test = (load_breastmnist(s) for s in ("train", "val", "test"))
    model.check_compatible(image_size=28, channels=1, num_classes=train.num_classes, what="BreastMNIST")
    n_syn = int(round(_check_ratio(ratio) / (1.0 - ratio) * len(train)))
    counts = allocate_counts(n_syn, np.bincount(train.labels.numpy(), minlength=train.num_classes).astype(float))
    labels = torch.repeat_interleave(torch.arange(train.num_classes), torch.from_numpy(counts))
    pool = model.sample(n_syn, labels=labels, seed=seed) if n_syn else None
    kw = dict(seed=seed, epochs=epochs, arch=arch, device=device)
    real = run_arm("real_only", train, val, test, **kw)
    mixed = run_arm(f"real+synthetic({ratio:g})", train, val, test, synthetic=pool, ratio=ratio, class_mix="real",
                    **kw)
    keys = ("test_auc", "test_accuracy", "test_balanced_accuracy", "best_epoch", "n_real", "n_synthetic")
    return {"note": SINGLE_SEED_NOTE, "dataset": "BreastMNIST (shipped copy)", "classifier": arch,
            "seed": seed, "epochs": epochs, "ratio": ratio,
            "real_only": {k: real[k] for k in keys}, "real_plus_synthetic": {k: mixed[k] for k in keys},
            "difference": {k: mixed[k] - real[k] for k in ("test_auc", "test_accuracy", "test_balanced_accuracy")},
            "seconds": round(time.perf_counter() - t0, 1)}


def default_arms(real_train, val, test, synthetic=None, *, ratio: float = 0.5, epochs: int = 30,
                 arch: str = "small_cnn", device=None,
                 classical_kinds: Sequence[str] = ("flips_shifts", "randaugment")) -> dict[str, Callable]:
    """The standard arms for :func:`compare_arms`: ``real_only``, ``classical_<kind>`` for each classical kind
    and, with a ``synthetic`` pool, ``synthetic`` (share ``ratio``) and ``synthetic+<kind>`` for each kind."""
    kw = dict(epochs=epochs, arch=arch, device=device)

    def arm(name, **extra):
        return lambda seed: run_arm(name, real_train, val, test, seed=seed, **kw, **extra)

    arms = {"real_only": arm("real_only")}
    for kind in classical_kinds:
        arms[f"classical_{kind}"] = arm(f"classical_{kind}", classical=kind)
    if synthetic is not None:
        arms["synthetic"] = arm("synthetic", synthetic=synthetic, ratio=ratio)
        for kind in classical_kinds:
            arms[f"synthetic+{kind}"] = arm(f"synthetic+{kind}", synthetic=synthetic, ratio=ratio, classical=kind)
    return arms


# --- comparisons ----------------------------------------------------------------------------------------
def compare_arms(arms: dict[str, Callable[[int], dict]], seeds: Sequence[int], *, metric: str = "test_auc",
                 baseline: str | None = None, classical: Sequence[str] | None = None, confidence: float = 0.95,
                 progress: bool = False) -> dict:
    """Run every arm on every seed (paired: the same seeds for all arms) and compare.

    ``arms``: name -> callable(seed) returning a dict with ``metric``. ``baseline`` defaults to the first arm;
    ``classical`` names the classical-augmentation arms (default: names starting with ``"classical"``).
    Returns ``results`` (per arm, per seed), ``summary`` (mean and ``confidence`` t-interval per arm, with the
    paired difference to the baseline), ``vs_baseline`` and ``vs_best_classical`` (``paired_test`` of
    arm - reference, for every other arm), ``best_classical`` (highest mean, or lowest for a loss).
    """
    if not isinstance(arms, dict) or not arms or not all(callable(f) for f in arms.values()):
        raise TypeError(f"arms: expected a non-empty dict name -> callable(seed), found {type(arms).__name__}")
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected distinct seeds, found {seeds}")
    baseline = next(iter(arms)) if baseline is None else baseline
    if baseline not in arms:
        raise ValueError(f"baseline: expected one of {list(arms)}, found {baseline!r}")
    classical = [a for a in arms if a.startswith("classical")] if classical is None else list(classical)
    unknown = [a for a in classical if a not in arms]
    if unknown:
        raise ValueError(f"classical: expected arm names from {list(arms)}, found unknown {unknown}")
    results: dict[str, list[dict]] = {a: [] for a in arms}
    steps = [(s, a) for s in seeds for a in arms]
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="arms x seeds")
    for seed, name in steps:
        r = dict(arms[name](seed))
        if metric not in r:
            raise ValueError(f"metric: expected key {metric!r} in the result of arm {name!r}, found {sorted(r)}")
        r.setdefault("arm", name)
        r.setdefault("seed", seed)
        results[name].append(r)
    summary = summarise(results, metric, baseline=baseline, confidence=confidence)
    sign = -1.0 if "loss" in metric else 1.0
    means = {row["arm"]: row["mean"] for row in summary}
    best_classical = max(classical, key=lambda a: sign * means[a]) if classical else None

    def paired_vs(ref: str) -> dict:
        if len(seeds) < 2:
            return {}
        base = [r[metric] for r in results[ref]]
        return {a: paired_test([r[metric] for r in results[a]], base, confidence) for a in arms if a != ref}

    return {"metric": metric, "seeds": seeds, "confidence": confidence, "baseline": baseline,
            "classical": classical, "best_classical": best_classical, "results": results, "summary": summary,
            "vs_baseline": paired_vs(baseline),
            "vs_best_classical": paired_vs(best_classical) if best_classical else {}}


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
            cells.append("(reference)" if arm == ref else
                         "-" if t is None else f"{_fmt_ci(t['mean_diff'], t['lo'], t['hi'])}, p={t['p_value']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Intervals: Student t over {len(comparison['seeds'])} seeds; differences are paired by seed "
                 f"(two-sided paired t-test).")
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
