"""The study harness (benchmarks/harness.py), the --quick modes of the medical and few-labels studies, and the
README table generated from headline.json."""

import json

import pytest

from benchmarks import harness as H
from benchmarks import readme_tables
from benchmarks.studies import medical


def test_cache_is_keyed_by_the_full_config(tmp_path):
    cache = H.ResultCache(tmp_path)
    calls = []

    def compute(v):
        calls.append(v)
        return {"value": v}

    a = cache.result("arms", {"seed": 0, "classifier": {"max_steps": 10}}, lambda: compute(1))
    b = cache.result("arms", {"seed": 0, "classifier": {"max_steps": 10}}, lambda: compute(2))
    c = cache.result("arms", {"seed": 0, "classifier": {"max_steps": 11}}, lambda: compute(3))
    assert a["value"] == 1 and b == {**a, "cached": True} and c["value"] == 3 and calls == [1, 3]
    d1 = cache.directory("cgan", {"steps": 5})
    assert d1 != cache.directory("cgan", {"steps": 6})
    assert json.loads((d1 / "study_config.json").read_text()) == {"steps": 5}


def test_headline_update_keeps_other_studies_and_checks_keys(tmp_path):
    path = tmp_path / "headline.json"
    row = {"mean": 0.9, "lo": 0.88, "hi": 0.92, "n": 5}
    H.update_headline("a", [H.headline_record("a", "real_only", None, "test_auc", row, None, None)], path)
    paired = {"mean_diff": 0.01, "lo": -0.01, "hi": 0.03, "p_value": 0.2}
    H.update_headline("b", [H.headline_record("b", "synthetic@0.25", "classical_x", "test_auc", row, paired, 5)], path)
    H.update_headline("a", [H.headline_record("a", "real_only", None, "test_auc", {**row, "mean": 0.91}, None, None)],
                      path)
    recs = json.loads(path.read_text())["records"]
    assert [(r["study"], r["mean"]) for r in recs] == [("a", 0.91), ("b", 0.9)]  # a re-run study keeps its place
    assert all(set(H.HEADLINE_KEYS) <= set(r) for r in recs) and recs[1]["p"] == 0.2
    with pytest.raises(ValueError, match="headline record"):
        H.update_headline("c", [{"study": "c"}], path)


def test_medical_quick_runs_resumes_and_reports(tmp_path):
    argv = ["--study", "breast", "--quick", "--threads", "1", "--runs-dir", str(tmp_path)]
    assert medical.main(argv) == 0
    out = json.loads((tmp_path / "medical_quick_breast.json").read_text())
    arms = out["arms_seeds"]
    for a in ("real_only", "classical_flips_shifts", "classical_randaugment", "synthetic@0.25", "synthetic@0.5",
              "synthetic_balance", "real_copies@0.25", "real_copies_balance", "synthetic_balance+best_classical",
              "synthetic", "synthetic_only_cas"):
        assert arms[a] == 2, a
    auc = out["comparisons"]["test_auc"]
    assert auc["best_classical"] in ("classical_flips_shifts", "classical_randaugment")
    assert all(0.0 <= r["mean"] <= 1.0 for r in auc["summary"])
    assert set(out["chosen_share_by_seed"].values()) <= {0.0, 0.25, 0.5}
    assert all(set(H.HEADLINE_KEYS) <= set(r) for r in out["headline"])
    assert any(r["arm"] == "synthetic@0.25" and r["reference_arm"] == "real_copies@0.25" for r in out["headline"])
    md = (tmp_path / "medical_quick_breast.md").read_text()
    assert "QUICK SMOKE TEST" in md and "last 10% of the step budget" in md
    assert (tmp_path / "medical_quick_breast.png").stat().st_size > 1000
    # a rerun trains nothing: every arm comes from the cache, with the same numbers
    assert medical.main(argv) == 0
    again = json.loads((tmp_path / "medical_quick_breast.json").read_text())
    assert again["comparisons"]["test_auc"]["summary"] == auc["summary"]
    cached = [r.get("cached") for rs in again["comparisons"]["test_auc"]["results"].values() for r in rs
              if r["arm"] not in ("synthetic", "synthetic_only_cas")]
    assert cached and all(cached)


def test_readme_table_is_generated_from_headline():
    assert readme_tables.main(["--check"]) == 0


def test_readme_blocks_select_their_records():
    rec = dict(study="digits", metric="test_accuracy", mean=0.8, ci_low=0.7, ci_high=0.9, reference_arm=None,
               diff=None, diff_ci_low=None, diff_ci_high=None, p=None, n_seeds=5, n_generator_seeds=5)
    records = [dict(rec, arm="source_only", readme=True), dict(rec, arm="translated_task", readme=False)]
    text = ("a\n<!-- headline:start -->\nold\n<!-- headline:end -->\nb\n"
            "<!-- headline:task:start -->\n<!-- headline:task:end -->\nc")
    out = readme_tables.render(text, records)
    main, task = out.split("<!-- headline:task:start -->")
    assert "| source_only |" in main and "translated_task" not in main and "old" not in main
    assert "| translated_task |" in task and "source_only" not in task and out.endswith("-->\nc")
    with pytest.raises(ValueError, match="markers"):
        readme_tables.render("no markers", records)


def test_few_labels_quick_runs_every_arm(tmp_path):
    from benchmarks.studies import few_labels

    argv = ["--study", "breast_labels25", "--quick", "--threads", "1", "--runs-dir", str(tmp_path)]
    assert few_labels.main(argv) == 0
    out = json.loads((tmp_path / "quick_breast_labels25.json").read_text())
    arms = {r["arm"] for r in out["comparison"]["summary"]}
    assert {"real_only", "pseudo_label", "real_only_all_labels", "synthetic@0.25", "semi_synthetic@0.25",
            "semi_synthetic@0.25_filtered", "semi_synthetic@0.25_w0.5", "semi_synthetic@0.25_twostage",
            "real_copies@0.25"} <= arms
    assert all(set(H.HEADLINE_KEYS) <= set(r) for r in out["headline"])
    semi = [r for r in out["headline"] if r["arm"].startswith("semi")]
    assert semi and all(r["n_generator_seeds"] == 2 for r in semi)
    assert any(r["reference_arm"] == out["comparison"]["best_classical"] for r in semi)


def test_medical_report_without_classical_arms_compares_with_real_only(tmp_path):
    """The resnet18_small studies train real_only and two synthetic arms only: each synthetic record must carry
    its paired difference to real_only, not a missing reference."""
    def result(arm, seed, auc):
        return {"arm": arm, "seed": seed, "test_auc": auc, "test_balanced_accuracy": auc - 0.1,
                "test_accuracy": auc - 0.05, "val_score": auc, "best_step": 100, "max_steps": 2000,
                "best_in_last_10pct": False, "stopped_early": True, "seconds": 1.0}

    per_seed = {s: {"real_only": result("real_only", s, 0.90 + 0.01 * s),
                    "synthetic@0.25": result("synthetic@0.25", s, 0.91 + 0.01 * s + 0.002 * (s % 2)),
                    "synthetic_balance": result("synthetic_balance", s, 0.89 + 0.01 * s)} for s in range(5)}
    cfg = {**medical.STUDIES["breast"]}
    clf = medical.classifier_settings("resnet18_small", quick=False)
    meta = {**H.machine(), "command": "x"}
    out = medical.report("breast_resnet18_small", per_seed, cfg, clf, meta, tmp_path / "r", False, 1.0)
    syn = {r["arm"]: r for r in out["headline"] if r["arm"].startswith("synthetic")}
    assert set(syn) == {"synthetic@0.25", "synthetic_balance"}
    assert all(r["reference_arm"] == "real_only" and r["readme"] for r in syn.values())
    assert syn["synthetic_balance"]["diff"] == pytest.approx(-0.01)
    md = (tmp_path / "r.md").read_text()
    assert "0.901" in md and "Best classical arm" not in md and "real copies" not in md
