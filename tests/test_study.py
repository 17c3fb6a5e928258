"""The study engine (synthaug.study) and `synthaug study`: choices that never read test labels, resume after a
kill, the code-version rule, the report and its verdict wording, and every bad input refused up front."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.data import ImageDataset, load_breastmnist
from synthaug.study import StudyConfig, StudyData, load_study_data, run, verdict
from synthaug.study.cache import ResultCache, write_json

TINY = {"generator_steps": 3, "translator_steps": 2,
        "classifier": {"max_steps": 12, "eval_every": 3, "patience": 3, "width": 8, "batch_size": 16, "lr": 3e-3}}
FEW = {"classical": ("flips_shifts",), "shares": (0.5,)}  # fewer arms where a test needs no choice among them
RECORD_KEYS = {"study", "arm", "reference_arm", "metric", "mean", "ci_low", "ci_high", "n_seeds", "n_generator_seeds",
               "diff", "diff_ci_low", "diff_ci_high", "p"}


@pytest.fixture(scope="module")
def breast_parts():
    """Disjoint real BreastMNIST subsets: train 10 per class, val 4, test 4 (all from the train split)."""
    full = load_breastmnist("train")
    rng = np.random.default_rng(0)
    idx = {p: [] for p in ("train", "val", "test")}
    for c in range(2):
        members = rng.permutation(np.flatnonzero(full.labels.numpy() == c))
        idx["train"] += members[:10].tolist()
        idx["val"] += members[10:14].tolist()
        idx["test"] += members[14:18].tolist()
    return {p: full.subset(sorted(i)) for p, i in idx.items()}


def _data(parts, test=None, **kw):
    return StudyData(train=parts["train"], val=parts["val"], test=test or parts["test"], name="breast_tiny", **kw)


def _write_folder(root, ds, per_class=None, prefix=""):
    for i, (x, y) in enumerate(zip(ds.images, ds.labels)):
        d = root / ds.class_names[int(y)].replace("/", "_")
        d.mkdir(parents=True, exist_ok=True)
        arr = ((x.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(d / f"{prefix}{i:04d}.png")
    return root


def test_choices_never_read_test_labels(breast_parts, tmp_path):
    """Scrambled test labels change the test scores and nothing else: every step, share and classical choice."""
    test = breast_parts["test"]
    g = torch.Generator().manual_seed(0)
    scrambled = ImageDataset(test.images, test.labels[torch.randperm(len(test), generator=g)], test.class_names)
    cfg = dict(seeds=[0, 1], budget=TINY, progress=False, log=lambda m: None)
    a = run(_data(breast_parts), out=tmp_path / "a", **cfg)
    b = run(_data(breast_parts, test=scrambled), out=tmp_path / "b", **cfg)
    choices = lambda r: {arm: [(x["val_score"], x["best_step"], x.get("chosen_share"),  # noqa: E731
                                x.get("classical_chosen_on_val")) for x in rows] for arm, rows in r["results"].items()}
    assert choices(a) == choices(b)
    assert a["best_classical"] == b["best_classical"] and a["chosen_shares"] == b["chosen_shares"]
    assert [x["test_auc"] for x in a["results"]["real_only"]] != [x["test_auc"] for x in b["results"]["real_only"]]
    arms = set(a["results"])
    assert {"real_only", "classical_flips_shifts", "classical_randaugment", "synthetic@0.25", "synthetic@0.5",
            "real_copies@0.25", "real_copies@0.5", "synthetic@0.25+best_classical", "synthetic"} <= arms
    assert "synthetic_balance" not in arms  # balanced classes: topping up adds nothing


def test_a_killed_study_loses_only_the_arm_in_progress_and_a_rerun_trains_nothing(breast_parts, tmp_path,
                                                                                  monkeypatch):
    import synthaug.eval.downstream as downstream

    real_run_arm, calls = downstream.run_arm, []

    def dies_on_the_fourth(*a, **k):
        calls.append(a[0])
        if len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real_run_arm(*a, **k)

    monkeypatch.setattr(downstream, "run_arm", dies_on_the_fourth)
    cfg = dict(seeds=[0, 1], budget=TINY, **FEW, progress=False, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        run(_data(breast_parts), out=tmp_path, **cfg)
    assert len(list((tmp_path / "cache" / "arms").glob("*.json"))) == 3
    calls.clear()
    monkeypatch.setattr(downstream, "run_arm", lambda *a, **k: (calls.append(a[0]), real_run_arm(*a, **k))[1])
    first = run(_data(breast_parts), out=tmp_path, **cfg)
    trained_arms = set(first["results"]) - {"synthetic"}
    assert calls[:1] == ["synthetic@0.5+best_classical"] and len(calls) == len(trained_arms) * 2 - 3
    calls.clear()
    again = run(_data(breast_parts), out=tmp_path, **cfg)
    assert calls == [] and again["records"] == first["records"]


def test_report_records_and_verdict_wording(breast_parts, tmp_path):
    rep = run(_data(breast_parts), out=tmp_path, seeds=[0, 1], budget=TINY, **FEW, progress=False, log=lambda m: None)
    for rec in rep["records"]:
        assert RECORD_KEYS <= set(rec) and rec["n_seeds"] == 2
    md = (tmp_path / "report.md").read_text()
    assert "## Verdict" in md and "not distinguishable" in md and (tmp_path / "report.png").stat().st_size > 1000
    assert json.loads((tmp_path / "report.json").read_text())["verdicts"] == rep["verdicts"]
    for v in rep["verdicts"]:
        assert any(w in v for w in (" better than ", " worse than ", " not distinguishable from "))


def test_verdict_says_better_or_worse_only_when_the_interval_excludes_zero():
    assert verdict("a", "b", {"mean_diff": 0.02, "lo": 0.005, "hi": 0.035, "p_value": 0.01}).startswith(
        "a is better than b: +2.0 points")
    assert verdict("a", "b", {"mean_diff": -0.02, "lo": -0.03, "hi": -0.01, "p_value": 0.01}).startswith(
        "a is worse than b")
    assert verdict("a", "b", {"mean_diff": 0.02, "lo": -0.001, "hi": 0.04, "p_value": 0.08}) == (
        "a is not distinguishable from b: +2.0 points of test auc [-0.1, +4.0], p = 0.080")
    assert "no test" in verdict("a", "b", {"mean_diff": 0.0, "lo": float("nan"), "hi": float("nan"),
                                           "p_value": float("nan"), "no_test_reason": "2 of 2 are exactly 0"})


def test_cached_results_of_another_code_version_are_refused_unless_told(breast_parts, tmp_path):
    kw = dict(seeds=[0, 1], budget=TINY, **FEW, progress=False, log=lambda m: None)
    run(_data(breast_parts), out=tmp_path, **kw)
    old = sorted((tmp_path / "cache" / "arms").glob("*.json"))[0]
    saved = json.loads(old.read_text())
    write_json(old, {**saved, "code": {"package": "0.0.1", "commit": None}})
    (tmp_path / "report.md").unlink()
    with pytest.raises(ValueError, match=r"versions: expected cached results of this code version only .*"
                                         r"synthaug 0\.0\.1: 1 result"):
        run(_data(breast_parts), out=tmp_path, **kw)
    assert not (tmp_path / "report.md").exists()
    mixed = run(_data(breast_parts), out=tmp_path, versions="mix", **kw)
    assert mixed["meta"]["versions_in_report"]["synthaug 0.0.1"] == 1
    assert "The results come from 2 code versions" in (tmp_path / "report.md").read_text()
    rerun = run(_data(breast_parts), out=tmp_path, versions="rerun", **kw)
    assert list(rerun["meta"]["versions_in_report"]) != ["synthaug 0.0.1"]
    assert len(rerun["meta"]["versions_in_report"]) == 1 and rerun["meta"]["trained_this_run"]["arms"] == 1
    assert ResultCache(tmp_path / "cache").versions().get("synthaug 0.0.1") is None


def test_quick_cli_study_on_an_image_folder(tmp_path, monkeypatch, capsys):
    """`synthaug study --data <folder> --budget quick --seeds 2` end to end (steps capped by SYNTHAUG_QUICK)."""
    from synthaug.cli import main

    full = load_breastmnist("train")
    _write_folder(tmp_path / "imgs", full.subsample(n_per_class=14, seed=0))
    monkeypatch.setenv("SYNTHAUG_QUICK", "2")
    args = ["study", "--data", str(tmp_path / "imgs"), "--budget", "quick", "--seeds", "2", "--out",
            str(tmp_path / "out"), "--threads", "1", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Estimated time: at most" in out and "Verdict:" in out and "On this data, synthetic is" in out
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    made = rep["data"]["splits"]["made"]
    assert len(made["train"]) + len(made["val"]) + len(made["test"]) == 28
    assert not set(made["train"]) & set(made["test"])
    assert main(args) == 0 and "Every arm is cached" in capsys.readouterr().out


def test_study_help_works(capsys):
    from synthaug.cli import main

    with pytest.raises(SystemExit) as e:
        main(["study", "--help"])
    assert e.value.code == 0 and "--budget" in capsys.readouterr().out


# --- bad input: refused before anything is trained ------------------------------------------------------------
@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    return _write_folder(root / "data", load_breastmnist("train").subsample(n_per_class=14, seed=1))


def _copy(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "data")


def test_refuses_a_class_with_too_few_images(folder, tmp_path):
    root = _copy(folder, tmp_path)
    for p in sorted((root / "malignant").glob("*.png"))[5:]:
        p.unlink()
    with pytest.raises(ValueError, match=r"at least 12 distinct images of every class.*found 5 in class 'malignant'"):
        load_study_data(root)


def test_refuses_one_class_only(folder, tmp_path):
    root = _copy(folder, tmp_path)
    shutil.rmtree(root / "malignant")
    with pytest.raises(ValueError, match="at least 2 classes"):
        load_study_data(root)


def test_refuses_mixed_channels_and_sizes_unless_converted(folder, tmp_path):
    root = _copy(folder, tmp_path)
    Image.new("RGB", (28, 28), (200, 10, 10)).save(root / "malignant" / "colour.png")
    with pytest.raises(ValueError, match=r"1 colour \(e\.g\. colour\.png\)"):
        load_study_data(root)
    assert load_study_data(root, channels=3).train.channels == 3
    Image.new("L", (40, 30), 7).save(root / "malignant" / "big.png")
    with pytest.raises(ValueError, match=r"one size, found 2 sizes.*40x30: 1 file"):
        load_study_data(root, channels=3)
    assert load_study_data(root, channels=3, size=32).train.image_size == (32, 32)


def test_refuses_an_unreadable_image(folder, tmp_path):
    root = _copy(folder, tmp_path)
    (root / "malignant" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"readable image files, found 1 unreadable: '.*broken\.png'"):
        load_study_data(root)


def test_refuses_a_test_split_that_overlaps_train(folder, tmp_path):
    root = _copy(folder, tmp_path)
    test = tmp_path / "test"
    for c in ("malignant", "normal_benign"):
        (test / c).mkdir(parents=True)
        for p in sorted((root / c).glob("*.png"))[:3]:
            shutil.copy(p, test / c / f"copy_{p.name}")
    with pytest.raises(ValueError, match=r"test: expected no image that is also in train, found [1-6] identical"):
        load_study_data(root, test=test)


def test_identical_images_stay_in_one_made_split(folder, tmp_path):
    root = _copy(folder, tmp_path)
    for p in sorted((root / "malignant").glob("*.png"))[:4]:
        shutil.copy(p, p.with_name("dup_" + p.name))
    data = load_study_data(root)  # the check in StudyData would refuse a duplicate across splits
    assert len(data.train) + len(data.val) + len(data.test) == 32


def test_refuses_a_target_without_images_or_without_a_target_test(folder, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="test: expected labelled images of the target domain"):
        load_study_data(folder, target=tmp_path / "empty")
    with pytest.raises(ValueError, match=r"target: expected image files .* found none"):
        load_study_data(folder, target=tmp_path / "empty", test=folder)


def test_cli_names_the_problem_and_exits_2(folder, tmp_path, capsys):
    from synthaug.cli import main

    root = _copy(folder, tmp_path)
    shutil.rmtree(root / "malignant")
    assert main(["study", "--data", str(root), "--out", str(tmp_path / "o")]) == 2
    assert "at least 2 classes" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_translated_arms_with_a_target_domain(tmp_path):
    """A target domain adds a translator per seed and the translated arms, selected on translated val."""
    from synthaug.data import load_digits
    from synthaug.data.npz import shared_data_dir

    shared = shared_data_dir()
    if shared is None or not (shared / "digits" / "mnistm_25k.npz").is_file():
        pytest.skip("needs ../shared/data/digits")
    src = load_digits(shared / "digits" / "mnist_t10k.npz", channels=3, size=32)
    tgt = load_digits(shared / "digits" / "mnistm_25k.npz", split="test", size=32)
    keep = lambda ds, n, s: ds.subsample(n_per_class=n, seed=s)  # noqa: E731
    train = keep(src.subset(range(0, 3000)), 8, 0)
    val = keep(src.subset(range(3000, 6000)), 2, 0)
    data = StudyData(train=train, val=val, test=keep(tgt, 2, 0), target=tgt.subset(range(2000, 2040)),
                     name="digits_tiny")
    rep = run(data, out=tmp_path, seeds=[0, 1], budget=TINY, generator=None, metric="accuracy", classical=("colour",),
              progress=False, log=lambda m: None)
    assert {"translated", "source+translated"} <= set(rep["results"])
    assert any(v.startswith("translated is") for v in rep["verdicts"])
    assert len(list((tmp_path / "models" / "translators").iterdir())) == 2


def test_config_errors_name_the_setting():
    with pytest.raises(ValueError, match="seeds: expected at least 2 distinct ints"):
        StudyConfig(seeds=[1, 1])
    with pytest.raises(ValueError, match="budget"):
        StudyConfig(budget="huge")
    with pytest.raises(ValueError, match="shares"):
        StudyConfig(shares=(0.0,))


def test_an_unlabelled_pool_adds_self_training(breast_parts, tmp_path):
    pool = load_breastmnist("val")  # images the splits do not hold; self-training reads their images only
    data = _data(breast_parts, unlabelled=pool)
    rep = run(data, out=tmp_path, seeds=[0, 1], budget=TINY, generator=None, classical=("flips_shifts",),
              progress=False, log=lambda m: None)
    rows = rep["results"]["pseudo_label"]
    assert len(rows) == 2 and all(r["n_pseudo"] >= 0 and r["n_real"] == 20 for r in rows)
    assert any(v.startswith("pseudo_label is") for v in rep["verdicts"])
