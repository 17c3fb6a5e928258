"""`make demo` (``synthaug.demo``) in its quick mode: outputs, the comparison it reports, and resume."""

import json

import pytest

from synthaug import demo


@pytest.mark.slow
def test_demo_quick_writes_comparison_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--quick", "--out", str(out), "--device", "cpu"]) == 0
    for name in ("real_vs_synthetic.png", "comparison.png", "demo_report.md", "demo_report.json",
                 "cgan/model/config.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "demo_report.json").read_text())
    arms = report["arms"]
    assert list(arms) == ["real_only", "classical_flips_shifts", "classical_randaugment", "real_copies_balance",
                          "synthetic_balance"]
    assert all(0.0 <= r["test_auc"] <= 1.0 and r["n_test"] == 156 for r in arms.values())
    assert arms["real_only"]["n_synthetic"] == 0
    # balance: the minority class is topped up to the majority (147 malignant, 399 benign in the shipped copy)
    assert arms["synthetic_balance"]["n_synthetic"] == arms["real_copies_balance"]["n_synthetic"] == 399 - 147
    assert report["best_classical"] in ("classical_flips_shifts", "classical_randaugment")
    assert "QUICK" in (out / "demo_report.md").read_text()
    gen = report["generator"]  # the study's generator metrics, in the study's encoder's features
    assert gen["fid"] >= 0 and all(0.0 <= gen[m] <= 1.0 for m in ("precision", "recall", "coverage"))
    # the study's pool: per class the most any arm draws (malignant: 252 to balance; benign: 399 at share 0.5)
    assert gen["n_real"] == 546 and gen["n_fake"] == 252 + 399
    assert (out / "encoder.safetensors").is_file()
    capsys.readouterr()

    # a second run loads the cGAN and every arm from disk and reports the same numbers
    assert demo.main(["--quick", "--out", str(out), "--device", "cpu"]) == 0
    assert capsys.readouterr().out.count(f"from {out / 'arms'}") == 5
    again = json.loads((out / "demo_report.json").read_text())
    assert again["arms"] == arms and again["generator"] == gen


def test_demo_trains_the_breast_studys_generator():
    from benchmarks.studies.medical import STUDIES

    assert (STUDIES["breast"]["gan_steps"], STUDIES["breast"]["cgan"]) == (demo.GAN_STEPS, demo.GAN_SETTINGS)


def test_a_cgan_run_with_other_settings_is_set_aside_not_refused(tmp_path):
    from synthaug.data import load_breastmnist
    from synthaug.train import CGANConfig, CGANRecipe, Trainer

    train = load_breastmnist("train")
    small = {"batch_size": 8, "g_kwargs": {"base_channels": 8, "max_channels": 16}}
    old = CGANRecipe(train, CGANConfig(**small), device="cpu", seed=0, progress=False)  # transposed upsampling
    Trainer(old, tmp_path / "cgan", steps=2, progress=False).fit()
    new = CGANRecipe(train, CGANConfig(**{**small, "g_kwargs": {**small["g_kwargs"], **demo.GAN_SETTINGS["g_kwargs"]}}),
                     device="cpu", seed=0, progress=False)
    aside = demo.set_aside_other_run(tmp_path / "cgan", new)
    assert aside == tmp_path / "cgan.previous-1" and (aside / "model" / "config.json").is_file()
    assert not (tmp_path / "cgan").exists()
    Trainer(new, tmp_path / "cgan", steps=2, progress=False).fit()  # trains afresh; the same settings stay
    assert demo.set_aside_other_run(tmp_path / "cgan", new) is None and (tmp_path / "cgan").is_dir()
    assert demo.set_aside_other_run(tmp_path / "missing", new) is None


def test_cached_arm_reruns_when_settings_change(tmp_path):
    calls = []

    def run():
        calls.append(1)
        return {"test_auc": 0.5 + len(calls) / 10}

    r1, c1 = demo.cached_arm(tmp_path, "a", {"seed": 0}, run)
    r2, c2 = demo.cached_arm(tmp_path, "a", {"seed": 0}, run)
    r3, c3 = demo.cached_arm(tmp_path, "a", {"seed": 1}, run)
    assert (c1, c2, c3) == (False, True, False)
    assert r1 == r2 == {"test_auc": 0.6} and r3 == {"test_auc": 0.7} and len(calls) == 2
    (tmp_path / "a.json").write_text("{ torn")  # a damaged file is rerun, not trusted
    assert demo.cached_arm(tmp_path, "a", {"seed": 1}, run) == ({"test_auc": 0.8}, False)


def test_study_text_reads_the_report(tmp_path):
    assert "not at hand" in demo.study_text(demo.study_auc(tmp_path / "missing.json"))
    auc = demo.study_auc()
    assert auc, "synthaug/data/assets/demo_reference.json: the package data the demo compares with"
    text = demo.study_text(auc)
    from synthaug.study import verdict

    assert verdict("synthetic_balance", "real_only", auc["vs_baseline"]["synthetic_balance"]) in text
    assert verdict("synthetic_balance", auc["best_classical"], auc["vs_best_classical"]["synthetic_balance"]) in text


def test_one_seed_differences_name_every_reference_and_no_winner():
    rows = {"real_only": 0.90, "classical_flips_shifts": 0.89, "real_copies_balance": 0.91, "synthetic_balance": 0.92}
    lines = demo.one_seed_differences({a: {"test_auc": v} for a, v in rows.items()}, "classical_flips_shifts")
    assert [ln.split(":")[-1].strip() for ln in lines[:3]] == ["+0.020", "+0.030", "+0.010"]
    assert "real_copies_balance" in lines[2] and "neither better nor worse" in lines[3]


def test_demo_reference_is_the_studys_numbers(tmp_path):
    """The demo's reference numbers ship inside the package (an installed wheel has no benchmarks/ tree), written
    from the breast study's report by demo.write_reference, which the study calls: they agree with the committed
    report."""
    import json
    from pathlib import Path

    study = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "medical_breast.json"
    if not study.is_file():
        pytest.skip("benchmarks/results/medical_breast.json is not in this checkout")
    report = json.loads(study.read_text())
    written = demo.write_reference(report, tmp_path / "ref.json")
    assert json.loads(written.read_text()) == json.loads(demo.REFERENCE_JSON.read_text())
    assert demo.study_auc(written)["summary"] == report["comparisons"]["test_auc"]["summary"]
    assert "benchmarks" not in str(demo.REFERENCE_JSON.relative_to(Path(demo.__file__).parent))
