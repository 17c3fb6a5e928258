"""Confidence intervals over seeds and paired comparisons of arms (scipy.stats)."""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from scipy import stats

__all__ = ["mean_ci", "paired_test", "summarise", "WILCOXON_MIN_N"]

#: Below this many pairs the Wilcoxon signed-rank test is not reported (its smallest two-sided
#: p-value at n=5 is 0.0625, so it cannot reject at 0.05).
WILCOXON_MIN_N = 6


def _as_values(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a sequence of numbers, found {type(values).__name__}") from None
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one value, found none")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: expected finite numbers, found {int((~np.isfinite(arr)).sum())} NaN/Inf "
                         f"value(s) in {arr.tolist()}")
    return arr


def _check_confidence(confidence: float) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), found {confidence!r}")
    return float(confidence)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean with a Student-t confidence interval: ``{mean, lo, hi, std, n}``.

    ``std`` is the sample standard deviation (ddof=1). With one value, ``std``/``lo``/``hi`` are NaN.
    """
    x = _as_values(values, "values")
    confidence = _check_confidence(confidence)
    n, mean = int(x.size), float(x.mean())
    if n < 2:
        return {"mean": mean, "lo": math.nan, "hi": math.nan, "std": math.nan, "n": n}
    std = float(x.std(ddof=1))
    if std == 0.0:
        lo = hi = mean
    else:
        lo, hi = stats.t.interval(confidence, df=n - 1, loc=mean, scale=std / math.sqrt(n))
    return {"mean": mean, "lo": float(lo), "hi": float(hi), "std": std, "n": n}


def paired_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Paired comparison of ``a`` and ``b`` (the same seeds, in the same order): ``a - b``.

    Returns ``mean_diff``, its Student-t interval ``lo``/``hi`` and ``p_value`` of the two-sided paired
    t-test (``scipy.stats.ttest_rel``), ``test`` naming it, ``n``, and ``wilcoxon_p`` (two-sided
    ``scipy.stats.wilcoxon`` signed-rank test) when ``n >= 6``, else None.

    No test is reported (``p_value`` NaN, interval NaN, ``no_test_reason`` says why) when half or more of the
    differences are exactly 0 -- the arms coincide for those seeds (e.g. a validation-chosen share of 0), so a
    p-value would describe the few remaining seeds while reading as a result over all of them -- or when every
    difference is equal (no variance).
    """
    x, y = _as_values(a, "a"), _as_values(b, "b")
    confidence = _check_confidence(confidence)
    if x.size != y.size:
        raise ValueError(f"b: expected {x.size} values paired with a, found {y.size}")
    n = int(x.size)
    if n < 2:
        raise ValueError(f"a: expected at least 2 paired values for a paired test, found {n}")
    d = x - y
    d = np.round(d, 12)  # float noise (0.1 + 0.2 - 0.3) must not turn equal differences into p = 1e-29
    mean_diff = float(d.mean())
    out = {"mean_diff": mean_diff, "lo": math.nan, "hi": math.nan, "p_value": math.nan,
           "test": "paired t-test (scipy.stats.ttest_rel, two-sided)", "n": n, "wilcoxon_p": None,
           "n_zero": int((d == 0.0).sum()), "no_test_reason": None}
    if 2 * out["n_zero"] >= n:
        out["no_test_reason"] = f"{out['n_zero']} of {n} paired differences are exactly 0"
        return out
    if np.ptp(d) == 0.0:
        out["no_test_reason"] = f"all {n} paired differences are equal ({mean_diff:+.4g})"
        return out
    else:
        res = stats.ttest_rel(x, y)
        ci = res.confidence_interval(confidence)
        out.update(lo=float(ci.low), hi=float(ci.high), p_value=float(res.pvalue))
    if n >= WILCOXON_MIN_N:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out["wilcoxon_p"] = float(stats.wilcoxon(x, y).pvalue)
    return out


def _pair_by_seed(base: list[dict], other: list[dict], metric: str, arm: str) -> tuple[list, list]:
    if all("seed" in r for r in base + other):
        bmap = {r["seed"]: r[metric] for r in base}
        omap = {r["seed"]: r[metric] for r in other}
        common = [s for s in bmap if s in omap]
        if len(common) < min(len(bmap), len(omap)):
            raise ValueError(f"results_by_arm[{arm!r}]: expected the baseline's seeds {sorted(bmap)}, "
                             f"found {sorted(omap)}")
        return [omap[s] for s in common], [bmap[s] for s in common]
    if len(base) != len(other):
        raise ValueError(f"results_by_arm[{arm!r}]: expected {len(base)} results paired with the baseline, "
                         f"found {len(other)}")
    return [r[metric] for r in other], [r[metric] for r in base]


def summarise(results_by_arm: dict[str, list[dict]], metric: str, baseline: str | None = None,
              confidence: float = 0.95) -> list[dict]:
    """One row per arm: ``arm, metric, mean, lo, hi, std, n``; with ``baseline`` also the paired difference
    to it (``diff``, ``diff_lo``, ``diff_hi``, ``p_value``, ``wilcoxon_p``). Results are paired by their
    ``seed`` key when every result has one, else by position.
    """
    if not isinstance(results_by_arm, dict) or not results_by_arm:
        raise ValueError(f"results_by_arm: expected a non-empty dict arm -> list of result dicts, "
                         f"found {type(results_by_arm).__name__} {results_by_arm!r:.80}")
    if baseline is not None and baseline not in results_by_arm:
        raise ValueError(f"baseline: expected one of {list(results_by_arm)}, found {baseline!r}")
    rows = []
    for arm, results in results_by_arm.items():
        missing = [i for i, r in enumerate(results) if metric not in r]
        if missing:
            raise ValueError(f"metric: expected key {metric!r} in every result of arm {arm!r}, "
                             f"missing in result(s) {missing}")
        row = {"arm": arm, "metric": metric, **mean_ci([r[metric] for r in results], confidence)}
        if baseline is not None and arm != baseline and len(results) >= 2:
            a, b = _pair_by_seed(results_by_arm[baseline], results, metric, arm)
            pt = paired_test(a, b, confidence)
            row.update(diff=pt["mean_diff"], diff_lo=pt["lo"], diff_hi=pt["hi"], p_value=pt["p_value"],
                       wilcoxon_p=pt["wilcoxon_p"], no_test_reason=pt["no_test_reason"])
        rows.append(row)
    return rows
