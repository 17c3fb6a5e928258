"""The --quick modes of the domain studies (digits, weather, driving): every arm runs on 2 seeds with a translator
per seed, the JSON report holds the arms, sane values and complete headline records, quick runs never touch
headline.json, and a rerun of cached results trains nothing (not even a translator whose folder is gone)."""

import json
import shutil

import pytest

from benchmarks import harness as H
from benchmarks.studies import digits, driving, weather
from synthaug.train import engine


@pytest.fixture(autouse=True)
def no_headline(monkeypatch, shared_data):
    def refuse(*a, **k):
        raise AssertionError("a quick run wrote headline.json")

    monkeypatch.setattr(H, "update_headline", refuse)


def run_quick(module, name, tmp_path):
    assert module.main(["--quick", "--threads", "1", "--runs-dir", str(tmp_path)]) == 0
    out = json.loads((tmp_path / f"domain_quick_{name}.json").read_text())
    md = (tmp_path / f"domain_quick_{name}.md").read_text()
    assert out["quick"] and out["seeds"] == [0, 1] and out["machine"]["cpu"]
    assert "QUICK SMOKE TEST" in md and "last 10% of the step budget" in md and "Command: `" in md
    for suffix in (".png", "_examples.png"):
        assert (tmp_path / f"domain_quick_{name}{suffix}").stat().st_size > 1000
    return out, md


def check_records(out, translated_arms):
    recs = out["headline"]
    assert recs and all(set(H.HEADLINE_KEYS) <= set(r) for r in recs)
    for r in recs:
        assert 0.0 <= r["mean"] <= 1.0 and r["n_seeds"] == 2
        assert r["n_generator_seeds"] == (2 if r["arm"] in translated_arms else None), r
        assert (r["diff"] is None) == (r["reference_arm"] is None)
    assert any(r.get("readme") for r in recs)


def check_summary(comparison, arms):
    rows = {r["arm"]: r for r in comparison["summary"]}
    assert set(arms) <= set(rows), set(arms) - set(rows)
    assert all(0.0 <= r["mean"] <= 1.0 and r["n"] == 2 for r in rows.values())


def test_digits_quick_runs_every_arm_and_rerun_trains_nothing(tmp_path, monkeypatch):
    out, md = run_quick(digits, "digits", tmp_path)
    check_summary(out["comparison"], digits.ORDER)
    assert out["comparison"]["best_classical"] == "classical_digits"
    check_records(out, digits.TRANSLATED)
    assert {("source+translated", "real_copies@0.5"), ("target_oracle", "source_only")} <= {
        (r["arm"], r["reference_arm"]) for r in out["headline"]}
    assert [t["seed"] for t in out["translators"]] == [0, 1] and len({t["key"] for t in out["translators"]}) == 2
    assert all(t["task_translator"]["key"] != t["key"] for t in out["translators"])  # a second translator per seed
    assert ("source+translated_task", "classical_digits") in {(r["arm"], r["reference_arm"]) for r in out["headline"]}
    checked = out["comparison"]["results"]["source+translated_task_filtered"]
    assert all(0 <= r["label_check"]["kept"] <= r["label_check"]["checked"] for r in checked)
    oracle = out["comparison"]["results"]["target_oracle"]
    assert all(0.0 <= r["reader_translated_mnist"] <= 1.0 for r in oracle)
    assert "Protocol check" in md and "MNIST val split" in md
    # results and translator records are cached: with the translators' folders gone nothing is trained again
    shutil.rmtree(tmp_path / "cyclegan")
    monkeypatch.setattr(engine.Trainer, "fit", lambda *a, **k: pytest.fail("a cached rerun trained a translator"))
    assert digits.main(["--quick", "--threads", "1", "--runs-dir", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "domain_quick_digits.json").read_text())
    assert again["comparison"]["summary"] == out["comparison"]["summary"]
    assert all(r["cached"] for rs in again["comparison"]["results"].values() for r in rs)


def test_weather_quick_runs_every_arm(tmp_path):
    out, md = run_quick(weather, "weather", tmp_path)
    for k in (10, 25):
        comp = out["comparisons"][f"rain{k}"]
        check_summary(comp["test_balanced_accuracy"], [f"rain{k}/{a}" for a in weather.KINDS] + ["target_oracle"])
        check_summary(comp["test_rain_recall"], [f"rain{k}/translated", f"rain{k}/translated_structure"])
        assert comp["test_balanced_accuracy"]["best_classical"] == f"rain{k}/classical_randomrain"
    translated = {f"rain{k}/{a}" for k in (10, 25) for a in weather.TRANSLATED}
    check_records(out, translated)
    pairs = {(r["arm"], r["reference_arm"], r["metric"]) for r in out["headline"]}
    assert ("rain10/translated", "rain10/real_copies", "test_balanced_accuracy") in pairs
    assert ("rain10/translated_structure", "rain10/classical_randomrain", "rain_recall") in pairs
    # every seed trains both translators per rain count, and the structure one records its weight
    assert sorted((t["seed"], t["rain_count"]) for t in out["translators"]) == [
        (s, k) for s in (0, 1) for k in (10, 10, 25, 25)]
    assert sum("structure" in t["kind"] for t in out["translators"]) == 4
    assert "`rain<k>/+CycleGAN` -> `rain<k>/translated`" in md


def test_driving_quick_runs_every_arm(tmp_path):
    out, md = run_quick(driving, "driving", tmp_path)
    check_summary(out["comparisons"]["test_balanced_accuracy"], driving.ORDER)
    check_summary(out["comparisons"]["test_car_recall"], driving.ORDER)
    check_records(out, driving.TRANSLATED)
    assert {("translated", "real_copies"), ("translated_task", "classical_randomfog"),
            ("translated_task", "translated")} <= {(r["arm"], r["reference_arm"]) for r in out["headline"]}
    # person is dropped; both remaining classes have dozens of clear and fog crops in --quick's 24 frames per split
    assert set(out["crops"]["clear_train"]) == {"background", "car"}
    assert min(out["crops"]["clear_train"].values()) > 40 and min(out["crops"]["fog_test"].values()) > 40
    assert out["skipped"]["clear_train"]["person"] > 0 and "Person is dropped" in md
    # a plain and a task-loss translator per seed; the filtered arm reports its label check
    assert [t["seed"] for t in out["translators"]] == [0, 1]
    assert all(t["task_translator"]["task_consistency"]["lambda_task"] == 1.0 for t in out["translators"])
    assert "Label check (filtered arm) per seed" in md and "Task loss gate per seed" in md


@pytest.mark.slow
def test_mnistm_quick_runs_every_arm(tmp_path):
    from benchmarks.studies import mnistm

    out, md = run_quick(mnistm, "mnistm", tmp_path)
    names = list(mnistm.QUICK["translators"])
    arms = ["source_only", *(f"classical_{k}" for k in mnistm.CLASSICAL), "real_copies@0.5", "target_oracle",
            *(f"{n}:{a}" for n in names for a in ("translated", "source+translated")),
            f"{mnistm.QUICK['primary']}:translated+best_classical"]
    check_summary(out["comparison"], arms)
    check_records(out, {a for a in arms if ":" in a})
    assert out["comparison"]["best_classical"] in {f"classical_{k}" for k in mnistm.CLASSICAL}
    assert set(out["best_classical_per_seed"].values()) <= set(mnistm.CLASSICAL)
    assert all(0.0 <= t["oracle_reads_label"] <= 1.0 for t in out["translators"])
    assert "Target (issue 28)" in md and "translated by the same translator" in md
    assert len({t["key"] for t in out["translators"]}) == 2 * len(names)  # every seed retrains every translator
    # the reader records need the oracle's weights: with them and the records gone, the oracle is retrained to the
    # same weights (deterministic on a CPU) and reads the same
    shutil.rmtree(tmp_path / "mnistm_oracle")
    shutil.rmtree(tmp_path / "mnistm_reader")
    assert mnistm.main(["--quick", "--threads", "1", "--runs-dir", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "domain_quick_mnistm.json").read_text())
    reads = [t["oracle_reads_label"] for t in out["translators"]]
    assert [t["oracle_reads_label"] for t in again["translators"]] == reads
