"""A study's statistics, its plain-language verdicts and its report (Markdown + JSON + PNG).

One wording rule everywhere (engine, demo, README prose): an arm is "better" or "worse" than its reference only when
the paired interval of the difference excludes 0; otherwise it is "not distinguishable", with the interval.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .cache import to_jsonable, version_label, write_json

__all__ = ["verdict", "verdict_of", "direction", "paired_difference", "chosen_kind", "chosen_on_validation",
           "fmt_interval", "fmt_ci", "fmt_diff", "analyse", "write_report", "record", "headline_record", "RECORD_KEYS"]

METRIC_NAMES = {"auc": "AUC", "accuracy": "accuracy", "balanced_accuracy": "balanced accuracy"}
RECORD_KEYS = ("study", "arm", "reference_arm", "metric", "mean", "ci_low", "ci_high", "n_seeds",
               "n_generator_seeds", "diff", "diff_ci_low", "diff_ci_high", "p")


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def fmt_interval(mean, lo=None, hi=None, digits: int = 3, signed: bool = False, scale: float = 1.0) -> str:
    """``mean [lo, hi]``, the one interval format of every report and README table (``–`` for a missing mean;
    the interval left out when it is missing or NaN); ``signed`` for differences."""
    def num(v) -> str:
        return f"{v * scale:+.{digits}f}" if signed else f"{v * scale:.{digits}f}"

    if mean is None:
        return "–"
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return num(mean)
    return f"{num(mean)} [{num(lo)}, {num(hi)}]"


def fmt_ci(row: dict | None, digits: int = 3, scale: float = 1.0) -> str:
    """``mean [lo, hi]`` of a summary row (``mean`` / ``lo`` / ``hi``, as :func:`synthaug.eval.mean_ci` gives)."""
    return fmt_interval(row["mean"], row["lo"], row["hi"], digits, scale=scale) if row else "-"


def fmt_diff(t: dict | None, digits: int = 3, scale: float = 1.0) -> str:
    """A paired difference ``+d [lo, hi], p = ...``, or why no test is reported."""
    if not t:
        return "-"
    if t.get("no_test_reason") or t.get("p_value") is None or math.isnan(t["p_value"]):
        return f"{t['mean_diff'] * scale:+.{digits}f} (no test: {t.get('no_test_reason') or 'undefined'})"
    return f"{fmt_interval(t['mean_diff'], t['lo'], t['hi'], digits, True, scale)}, p = {t['p_value']:.3f}"


def direction(paired: dict | None, higher_is_better: bool = True) -> str:
    """``"better"`` / ``"worse"`` when the paired interval of the difference excludes 0 (in the metric's direction),
    else ``"not distinguishable"`` (also without a test: too few seeds, or half the differences exactly 0)."""
    if not paired or paired.get("no_test_reason") or paired.get("lo") is None or math.isnan(paired["lo"]) \
            or math.isnan(paired["hi"]):
        return "not distinguishable"
    lo, hi = (paired["lo"], paired["hi"]) if higher_is_better else (-paired["hi"], -paired["lo"])
    return "better" if lo > 0 else "worse" if hi < 0 else "not distinguishable"


def verdict(arm: str, reference: str, paired: dict | None, metric: str = "auc", scale: float = 100.0,
            unit: str = "points", higher_is_better: bool = True) -> str:
    """``"<arm> is better than / worse than / not distinguishable from <reference>: +d points of test <metric>
    [lo, hi], p = ..."`` from a paired difference (:func:`synthaug.eval.paired_test`'s dict), by :func:`direction`."""
    if not paired:
        return f"{arm} vs {reference}: no paired result"
    d = paired["mean_diff"] * scale
    what = f"{unit} of test {metric}" if unit else f"test {metric}"
    if paired.get("no_test_reason") or paired.get("p_value") is None or math.isnan(paired["p_value"]):
        return (f"{arm} is not distinguishable from {reference}: {d:+.1f} {what} (no test: "
                f"{paired.get('no_test_reason') or 'undefined'})")
    word = {"better": "better than", "worse": "worse than"}.get(direction(paired, higher_is_better),
                                                                   "not distinguishable from")
    lo, hi = paired["lo"] * scale, paired["hi"] * scale
    return f"{arm} is {word} {reference}: {d:+.1f} {what} [{lo:+.1f}, {hi:+.1f}], p = {paired['p_value']:.3f}"


def chosen_kind(rows: dict[str, dict], select_on: str = "auc") -> str | None:
    """The key of ``rows`` (e.g. classical kind -> that arm's result for one seed) with the best validation score
    (``val_score``; lower is better for ``select_on="loss"``); ties to the earlier key; None without rows."""
    keys = list(rows)
    if not keys:
        return None
    sign = -1.0 if select_on == "loss" else 1.0
    return max(keys, key=lambda k: (sign * rows[k]["val_score"], -keys.index(k)))


def headline_record(study: str, arm: str, reference_arm: str | None, metric: str, summary_row: dict,
                    paired: dict | None, n_generator_seeds: int | None = None) -> dict:
    """One headline number (the README tables' schema, :data:`RECORD_KEYS`): an arm's mean and interval
    (``summary_row`` of :func:`synthaug.eval.mean_ci`) and its paired difference to ``reference_arm``."""
    p = paired or {}
    return {"study": study, "arm": arm, "reference_arm": reference_arm, "metric": metric,
            "mean": _num(summary_row["mean"]), "ci_low": _num(summary_row["lo"]), "ci_high": _num(summary_row["hi"]),
            "n_seeds": int(summary_row["n"]), "n_generator_seeds": n_generator_seeds,
            "diff": _num(p.get("mean_diff")), "diff_ci_low": _num(p.get("lo")), "diff_ci_high": _num(p.get("hi")),
            "p": _num(p.get("p_value")), **({"note": p["no_test_reason"]} if p.get("no_test_reason") else {})}


def paired_difference(results: dict[str, list[dict]], arm: str, reference: str, metric: str) -> dict | None:
    """The paired difference ``arm - reference`` of ``metric`` over the seeds both have
    (:func:`synthaug.eval.paired_test`'s dict), or None when either arm is missing or has fewer than 2 seeds."""
    from ..eval import compare_results

    if not results.get(arm) or not results.get(reference) or len(results[arm]) < 2:
        return None
    return compare_results({reference: results[reference], arm: results[arm]}, metric=metric, baseline=reference,
                           classical=[])["vs_baseline"].get(arm)


def verdict_of(results: dict[str, list[dict]], arm: str, reference: str, metric: str, **kw) -> str:
    """:func:`verdict` of ``arm`` against ``reference`` in ``results`` (``metric`` like ``"test_auc"``)."""
    return verdict(arm, reference, paired_difference(results, arm, reference, metric), metric.removeprefix("test_"),
                   **kw)


def record(study: str, arm: str, reference: str | None, metric: str, results: dict[str, list[dict]],
           n_generator_seeds: int | None = None) -> tuple[dict, dict | None]:
    """``(headline record, paired difference)`` of ``arm`` against ``reference`` (None: no difference) over the
    seeds of ``results`` (paired by seed)."""
    from ..eval import mean_ci

    row = mean_ci([r[metric] for r in results[arm]])
    paired = None if reference is None else paired_difference(results, arm, reference, metric)
    return headline_record(study, arm, reference, metric, row, paired, n_generator_seeds), paired


def chosen_on_validation(results: dict[str, list[dict]], candidates: list[tuple[float, str]],
                         name: str = "synthetic") -> tuple[list[dict], list[float]]:
    """The derived arm ``name``: per seed, the candidate ``(share, arm)`` with the best validation score (ties to
    the smaller share), taken as it is -- nothing retrained, no test value read. Returns its rows (with
    ``chosen_share``) and the chosen shares; seeds missing a candidate are left out."""
    by_seed = {a: {r["seed"]: r for r in results.get(a, [])} for _, a in candidates}
    rows, shares = [], []
    sign = -1.0 if any(r.get("select_on") == "loss" for rs in results.values() for r in rs) else 1.0
    for seed in sorted(by_seed[candidates[0][1]]):
        if not all(seed in by_seed[a] for _, a in candidates):
            continue
        share, a = max(candidates, key=lambda c: (sign * by_seed[c[1]][seed]["val_score"], -c[0]))
        rows.append({**by_seed[a][seed], "arm": name, "chosen_share": share})
        shares.append(share)
    return rows, shares


def analyse(per_seed: dict[int, dict[str, dict]], cfg, specs: dict[str, dict], study: str = "study") -> dict:
    """Results by arm (the validation-chosen ``synthetic`` arm derived), the comparison table, the paired
    comparisons that answer the study's question, their records and verdicts."""
    from ..eval import compare_results

    seeds = sorted(per_seed)
    results: dict[str, list[dict]] = {}
    for s in seeds:
        for a in specs:
            if a in per_seed[s]:
                results.setdefault(a, []).append(per_seed[s][a])
    shares = []
    if cfg.generator is not None:
        rows, shares = chosen_on_validation(results, [(0.0, "real_only")]
                                            + [(r, f"synthetic@{r:g}") for r in cfg.shares])
        if rows:
            results["synthetic"] = rows
    complete = {a: v for a, v in results.items() if len(v) == len(seeds)}
    metric = f"test_{cfg.metric}"
    classical = [f"classical_{k}" for k in cfg.classical if f"classical_{k}" in complete]
    table = compare_results(complete, metric=metric, baseline="real_only", classical=classical)
    best_c = table["best_classical"]
    ref = best_c or "real_only"
    pairs = [(c, "real_only") for c in classical]
    if "synthetic" in complete:
        pairs += [("synthetic", ref)] + ([("synthetic", "real_only")] if best_c else [])
    for a in complete:
        if a.startswith("synthetic@") or a == "synthetic_balance":
            pairs.append((a, ref))
            ctrl = a.replace("synthetic", "real_copies")
            if ctrl in complete:
                pairs.append((a, ctrl))
    for a in ("pseudo_label", "translated", "source+translated"):
        if a in complete:
            pairs += [(a, ref)] + ([(a, "real_only")] if best_c else [])
    gen_arms = {a for a, s in specs.items() if s["extra"] in ("generator", "translator")} | {"synthetic"}
    made = [record(study, "real_only", None, metric, complete)]
    made += [record(study, a, r, metric, complete, len(seeds) if a in gen_arms else None) for a, r in pairs]
    records = [rec for rec, _ in made]
    verdicts = [verdict(rec["arm"], rec["reference_arm"], paired, cfg.metric) for rec, paired in made[1:]]
    for rec in records:
        if rec["arm"] == "synthetic":
            rec["chosen_share_0"] = f"{shares.count(0.0)}/{len(shares)}"
    return {"seeds": seeds, "metric": metric, "results": results, "complete": sorted(complete), "table": table,
            "best_classical": best_c, "reference": ref, "chosen_shares": shares, "records": records,
            "verdicts": verdicts}


def _headline(result: dict) -> list[str]:
    """The verdicts a user asked for first: the validation-chosen synthetic arm (or the translations, or
    self-training) against the reference, and each synthetic share against its real copies."""
    first = [v for v in result["verdicts"] if v.startswith(("synthetic is", "translated is", "source+translated is",
                                                            "pseudo_label is"))
             and f" {result['reference']}:" in v]
    copies = [v for v in result["verdicts"] if " real_copies" in v]
    return first + copies


def write_report(out: Path, result: dict, data, cfg, meta: dict) -> dict:
    """``out/report.md``, ``report.json`` and ``report.png`` (test metric by arm, mean and 95% CI); returns the
    report's dict with ``paths``."""
    from ..eval import bar_chart, markdown_table

    out = Path(out)
    metric, table, seeds = result["metric"], result["table"], result["seeds"]
    paths = {"markdown": out / "report.md", "json": out / "report.json", "plot": out / "report.png"}
    bar_chart(table["summary"], metric, paths["plot"],
              title=f"{data.name}: {metric}, mean and 95% CI over {len(seeds)} seeds")
    if (out / "examples.png").is_file():
        paths["examples"] = out / "examples.png"
    steps = cfg.steps
    versions = dict(Counter(r.get("code_version", "not recorded") for a, rs in result["results"].items()
                            if a != "synthetic" for r in rs))
    meta = {**meta, "versions_in_report": versions}
    headline = _headline(result)
    clf = cfg.classifier()
    desc = data.describe()
    L = [f"# Does synthetic data help on {data.name}?", ""]
    if meta.get("smoke"):
        L += [f"**SYNTHAUG_QUICK={meta['smoke']['SYNTHAUG_QUICK']}: every step budget was capped -- a smoke test; "
              "these numbers mean nothing.**", ""]
    if isinstance(cfg.budget, str) and cfg.budget == "quick" or len(seeds) < 5:
        L += [f"**Budget `{cfg.budget if isinstance(cfg.budget, str) else 'custom'}`, {len(seeds)} seeds: a first "
              "look. Intervals over fewer than 5 seeds are wide; run `--budget standard --seeds 5` before acting "
              "on it.**", ""]
    L += ["## Verdict", ""] + [f"- On this data, {v}." for v in headline or result["verdicts"][:3]] + [""]
    L += ["Every verdict: paired by seed, two-sided t-interval (95%) of the difference; **better / worse only when "
          "the interval excludes 0**, otherwise not distinguishable.", ""]
    L += ["## Data", "",
          f"Classes {desc['classes']}; {desc['channels']} channel(s), {desc['size'][0]}x{desc['size'][1]} px.", "",
          "| split | images | per class | how it was made |", "|---|---:|---|---|"]
    for part in ("train", "val", "test"):
        info = desc[part]
        L.append(f"| {part} | {info['n']} | {info['per_class']} | {data.splits.get(part, '')} |")
    for part in ("unlabelled", "target"):
        if part in desc:
            L.append(f"| {part} | {desc[part]['n']} | (labels not used) | given |")
    L += ["", "## Protocol", "",
          f"Seeds {seeds}. Per seed: "
          + (f"a `{cfg.generator}` generator trained for {steps['generator_steps']} steps on the training split only; "
             if cfg.generator else "")
          + (f"a `{cfg.translator}` translator trained for {steps['translator_steps']} steps from the training images "
             "to the target images; " if data.target is not None else "")
          + f"every arm's classifier (`{clf['arch']}`, up to {clf['max_steps']} steps, early stopping after "
            f"{clf['patience']} evaluations without improvement) keeps its step with the best validation "
            f"{clf['select_on']}, and the test split is scored once per arm. The best classical arm is chosen by mean "
            f"validation score (`{result['best_classical']}`); `synthetic` is, per seed, the share among 0 / "
            + " / ".join(f"{r:g}" for r in cfg.shares)
            + f" with the best validation score (share 0 chosen for {result['chosen_shares'].count(0.0)} of "
              f"{len(result['chosen_shares'])} seeds). `real_copies@s` adds as many copies of real training images as "
              "`synthetic@s` adds generated ones (the count-matched control). "
            + ("Translated arms choose their step on the validation split translated by the same translator (no "
               "target label is used for any choice). " if data.target is not None else ""), "",
          f"## Test {METRIC_NAMES[cfg.metric]} by arm (mean [95% CI]; paired differences by seed)", "",
          markdown_table(table), ""]
    L += ["## Every comparison", "", *(f"- {v}" for v in result["verdicts"]), ""]
    secs = {a: float(np.mean([r.get("seconds") or 0 for r in rs])) for a, rs in result["results"].items()
            if a != "synthetic"}
    L += ["## Time and version", "", "| arm | mean s per seed |", "|---|---:|",
          *(f"| {a} | {s:.0f} |" for a, s in secs.items()), "",
          f"Machine: {meta['nproc']} CPUs ({meta['cpu']}), torch {meta['torch']} with {meta['torch_threads']} "
          f"thread(s), Python {meta['python']}; this invocation {meta['wall_seconds'] / 60:.1f} min (cached arms "
          "are not retrained).", "",
          f"Code: {version_label(meta['code_version'])}."
          + (f" **The results come from {len(versions)} code versions** (allowed by `versions='mix'`): "
             + "; ".join(f"{v}: {n} arm result(s)" for v, n in sorted(versions.items())) + "."
             if len(versions) > 1 else ""), "",
          f"Command: `{meta['command']}`", ""]
    if "examples" in paths:
        L += ["![real and synthetic examples](examples.png)", ""]
    paths["markdown"].parent.mkdir(parents=True, exist_ok=True)
    report = {"data": desc, "config": {**asdict(cfg), "steps": steps, "classifier": clf},
              "verdicts": result["verdicts"], "headline_verdicts": headline, "records": result["records"],
              "best_classical": result["best_classical"], "chosen_shares": result["chosen_shares"],
              "table": {k: table[k] for k in ("metric", "seeds", "baseline", "best_classical", "summary",
                                              "vs_baseline", "vs_best_classical")},
              "results": result["results"], "meta": meta, "paths": {k: str(v) for k, v in paths.items()}}
    write_json(paths["json"], report)
    paths["markdown"].write_text("\n".join(L))
    return to_jsonable(report)
