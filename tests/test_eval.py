"""Tests of synthaug.eval: classifiers, statistics, feature metrics, memorisation audit and the harness."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from synthaug.augment import MixedDataset, SyntheticDataset
from synthaug.data import ImageDataset
from synthaug.eval import (
    FeatureExtractor,
    LeNet,
    SmallCNN,
    bar_chart,
    cas,
    choose_ratio,
    classical_augment,
    compare_arms,
    compare_results,
    density_coverage,
    evaluate,
    fid_kid,
    filter_near_copies,
    markdown_table,
    mean_ci,
    memorization_audit,
    metrics_from_proba,
    mixed_training_set,
    nearest_neighbour_panel,
    paired_test,
    precision_recall,
    pseudo_label_arm,
    real_copies,
    resnet18_small,
    run_arm,
    run_arms,
    score_arm,
    summarise,
    train_arm,
    train_classifier,
)


def toy_set(n: int, seed: int, channels: int = 1, num_classes: int = 2) -> ImageDataset:
    """Separable toy images: class c has a bright vertical band at column block c, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    x = torch.full((n, channels, 28, 28), -0.8) + 0.2 * torch.rand(n, channels, 28, 28, generator=g)
    width = 28 // num_classes
    for i, c in enumerate(y.tolist()):
        x[i, :, :, c * width:(c + 1) * width] += 1.2
    return ImageDataset(x.clamp(-1, 1), y, [f"c{c}" for c in range(num_classes)])


class Lookup(torch.nn.Module):
    """A 'model' whose logits are the first K pixels of the image (times 4)."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x):
        return 4.0 * x[:, 0, 0, :self.k]


# --- classifier -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_classifier_shapes(channels):
    x = torch.rand(2, channels, 28, 28) * 2 - 1
    cnn = SmallCNN(channels, 5, 28, width=8)
    assert cnn(x).shape == (2, 5)
    assert cnn.features(x).shape == (2, cnn.num_features)
    assert resnet18_small(channels, 3).eval()(x).shape == (2, 3)
    with pytest.raises(ValueError, match="num_classes"):
        SmallCNN(channels, 1, 28)


def test_train_classifier_separable_and_selection():
    train, val = toy_set(64, 0), toy_set(32, 1)
    model, info = train_classifier(train, val, max_steps=40, batch_size=8, lr=3e-3, width=8, seed=0,
                                   select_on="loss", patience=None)
    losses = [h["val_loss"] for h in info["history"]]
    assert [h["step"] for h in info["history"]] == [10, 20, 30, 40]  # one pass over 64 images = 8 steps -> 10
    assert info["best_step"] == 10 * (1 + int(np.argmin(losses)))
    assert info["best_val"] == pytest.approx(min(losses))
    after = evaluate(model, val)
    assert after["loss"] == pytest.approx(info["best_val"], rel=1e-5)  # the selected weights were restored
    assert after["accuracy"] > 0.9
    assert info["n_train"] == 64 and info["n_synthetic"] == 0


def test_train_classifier_deterministic_and_accuracy_selection():
    train, val = toy_set(32, 2), toy_set(16, 3)
    _, a = train_classifier(train, val, max_steps=6, eval_every=2, batch_size=16, width=8, seed=5,
                            select_on="accuracy")
    _, b = train_classifier(train, val, max_steps=6, eval_every=2, batch_size=16, width=8, seed=5,
                            select_on="accuracy")
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    accs = [h["val_accuracy"] for h in a["history"]]
    assert a["best_step"] == 2 * (1 + int(np.argmax(accs)))


def test_train_classifier_stops_early_and_flags_short_budgets():
    train, val = toy_set(64, 0), toy_set(32, 1)
    _, info = train_classifier(train, val, max_steps=400, eval_every=4, patience=3, batch_size=16, lr=3e-3,
                               width=8, seed=0, select_on="loss")
    assert info["stopped_early"] and info["steps_run"] < 400
    assert info["steps_run"] == info["best_step"] + 3 * 4  # three evaluations without improvement
    assert not info["best_in_last_10pct"]
    _, short = train_classifier(train, val, max_steps=4, eval_every=2, batch_size=16, lr=3e-3, width=8, seed=0,
                                select_on="loss")
    assert short["best_step"] == 4 and short["best_in_last_10pct"] and not short["stopped_early"]


def test_synthetic_weight_changes_the_loss_only_for_synthetic_items():
    x, y = toy_set(32, 0).images, torch.arange(32) % 2
    flags = torch.zeros(32, dtype=torch.bool)
    real_only = torch.utils.data.TensorDataset(x, y, flags)
    with_syn = torch.utils.data.TensorDataset(x, y, torch.ones(32, dtype=torch.bool))
    kw = dict(max_steps=4, eval_every=2, batch_size=16, width=8, seed=1, select_on="accuracy")
    _, a = train_classifier(real_only, toy_set(16, 1), synthetic_weight=0.3, **kw)
    _, b = train_classifier(with_syn, toy_set(16, 1), synthetic_weight=0.3, **kw)
    _, c = train_classifier(with_syn, toy_set(16, 1), **kw)
    # all items carry the same weight in each run, so a weighted mean equals the plain mean
    assert [h["train_loss"] for h in a["history"]] == pytest.approx([h["train_loss"] for h in c["history"]])
    assert b["n_synthetic"] == 32 and a["n_synthetic"] == 0
    mixed = torch.utils.data.TensorDataset(x, y, torch.arange(32) % 4 == 0)
    _, d = train_classifier(mixed, toy_set(16, 1), synthetic_weight=0.0, **kw)
    _, e = train_classifier(mixed, toy_set(16, 1), **kw)
    assert d["history"][0]["train_loss"] != pytest.approx(e["history"][0]["train_loss"])
    with pytest.raises(ValueError, match="synthetic_weight"):
        train_classifier(mixed, None, synthetic_weight=-1.0)


def test_lenet_and_digits_augmentation():
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    net = LeNet(1, 10, 28)
    assert net(x).shape == (3, 10) and net.features(x).shape == (3, 500)
    aug = classical_augment("digits")
    torch.manual_seed(0)
    digit = torch.full((4, 1, 28, 28), -1.0)
    digit[:, :, 8:20, 12:16] = 1.0
    out = aug(digit)
    assert out.shape == digit.shape and out.min() >= -1.0 and out.max() <= 1.0
    assert not torch.equal(out, digit)
    ink = (out > 0).flatten(1).sum(1)
    assert len(set(ink.tolist())) > 1  # stroke width / scale differ between images


def test_train_classifier_rejects_bad_arguments():
    train = toy_set(8, 0)
    with pytest.raises(ValueError, match="select_on"):
        train_classifier(train, train, select_on="f1")
    with pytest.raises(ValueError, match="arch"):
        train_classifier(train, train, arch="vgg", max_steps=1)
    with pytest.raises(ValueError, match="max_steps"):
        train_classifier(train, train, max_steps=0)


@pytest.mark.parametrize("k", [2, 3])
def test_evaluate_matches_sklearn(k):
    g = torch.Generator().manual_seed(k)
    n = 60
    x = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
    y = torch.arange(n) % k
    m = evaluate(Lookup(k), ImageDataset(x, y))
    proba = torch.softmax(4.0 * x[:, 0, 0, :k].double(), 1).numpy()
    pred = proba.argmax(1)
    assert m["n"] == n
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["per_class_recall"] == pytest.approx(list(skm.recall_score(y, pred, average=None)))
    expected_auc = (skm.roc_auc_score(y, proba[:, 1]) if k == 2
                    else skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"))
    assert m["auc"] == pytest.approx(expected_auc)


def test_auc_known_values():
    y = [0, 0, 1, 1]
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    assert metrics_from_proba(y, np.stack([1 - p1, p1], 1))["auc"] == pytest.approx(0.75)
    y3 = [0, 1, 2, 0, 1, 2]
    perfect = np.eye(3)[y3] * 0.8 + 0.2 / 3
    assert metrics_from_proba(y3, perfect)["auc"] == pytest.approx(1.0)
    with pytest.warns(UserWarning, match="auc is NaN"):
        assert math.isnan(metrics_from_proba([1, 1], np.array([[0.2, 0.8], [0.6, 0.4]]))["auc"])


@pytest.mark.parametrize("kind", ["flips_shifts", "randaugment"])
@pytest.mark.parametrize("channels", [1, 3])
def test_classical_augment(kind, channels):
    x = torch.rand(6, channels, 28, 28) * 2 - 1
    aug = classical_augment(kind)
    torch.manual_seed(0)
    a = aug(x)
    torch.manual_seed(0)
    b = aug(x)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert float(a.min()) >= -1 and float(a.max()) <= 1
    assert aug(x[0]).shape == x[0].shape
    with pytest.raises(ValueError, match="kind"):
        classical_augment("mixup")


# --- stats ------------------------------------------------------------------------------------------------
def test_mean_ci_hand_computed():
    r = mean_ci([1, 2, 3, 4, 5])
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, df=4) * s / sqrt(n)
    assert r["mean"] == pytest.approx(3.0) and r["n"] == 5
    assert r["std"] == pytest.approx(math.sqrt(2.5))
    assert (r["lo"], r["hi"]) == pytest.approx((3 - half, 3 + half))
    one = mean_ci([0.7])
    assert one["mean"] == 0.7 and math.isnan(one["lo"])
    with pytest.raises(ValueError, match="values"):
        mean_ci([1.0, float("nan")])


def test_paired_test_known_vectors():
    r = paired_test([1, 2, 3, 4], [0.5, 1.5, 2.0, 3.5])
    # differences 0.5, 0.5, 1.0, 0.5: mean 0.625, sd 0.25, t = 5 with df 3
    assert r["mean_diff"] == pytest.approx(0.625)
    assert r["p_value"] == pytest.approx(0.015392, abs=1e-5)
    half = 3.182446305284263 * 0.25 / 2
    assert (r["lo"], r["hi"]) == pytest.approx((0.625 - half, 0.625 + half))
    assert "paired t-test" in r["test"] and r["wilcoxon_p"] is None
    r6 = paired_test([1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5.5])
    assert r6["wilcoxon_p"] is not None and 0 < r6["wilcoxon_p"] < 0.1
    same = paired_test([0.8, 0.9], [0.8, 0.9])
    assert same["mean_diff"] == 0 and math.isnan(same["p_value"]) and "2 of 2" in same["no_test_reason"]
    # a validation-chosen arm equal to the baseline in 4 of 5 seeds: no p-value, the reason instead
    mostly_same = paired_test([0.9, 0.8, 0.85, 0.7, 0.95], [0.9, 0.8, 0.85, 0.7, 0.90])
    assert math.isnan(mostly_same["p_value"]) and mostly_same["no_test_reason"] == \
        "4 of 5 paired differences are exactly 0"
    assert mostly_same["mean_diff"] == pytest.approx(0.01)
    half = paired_test([1, 2, 3, 4.5], [1, 2, 2.5, 4])
    assert half["n_zero"] == 2 and half["no_test_reason"]
    with pytest.raises(ValueError, match="b: expected 3"):
        paired_test([1, 2, 3], [1, 2])


def test_summarise_pairs_by_seed():
    res = {"base": [{"seed": 0, "auc": 0.8}, {"seed": 1, "auc": 0.7}, {"seed": 2, "auc": 0.75}],
           "new": [{"seed": 2, "auc": 0.8}, {"seed": 0, "auc": 0.85}, {"seed": 1, "auc": 0.74}]}
    rows = summarise(res, "auc", baseline="base")
    assert [r["arm"] for r in rows] == ["base", "new"]
    assert rows[1]["diff"] == pytest.approx((0.05 + 0.04 + 0.05) / 3)
    assert "diff" not in rows[0]
    with pytest.raises(ValueError, match="metric"):
        summarise(res, "accuracy")


# --- features ---------------------------------------------------------------------------------------------
def test_fid_kid_identical_and_shifted(tmp_path):
    torch.manual_seed(0)
    enc = FeatureExtractor(SmallCNN(1, 2, 28, width=4).eval())
    real = torch.rand(120, 1, 28, 28) * 2 - 1
    same = fid_kid(real, real.clone(), enc, subset_size=50, subsets=10)
    shifted = fid_kid(real, (real * 0.5 + 0.4).clamp(-1, 1), enc, subset_size=50, subsets=10)
    assert abs(same["fid"]) < 1e-3 * max(1.0, shifted["fid"])
    assert shifted["fid"] > 100 * max(abs(same["fid"]), 1e-6)
    assert shifted["kid_mean"] > same["kid_mean"]
    again = fid_kid(real, (real * 0.5 + 0.4).clamp(-1, 1), enc, subset_size=50, subsets=10)
    assert again["kid_mean"] == shifted["kid_mean"]  # KID subsets drawn under the seed
    # save / load round trip through safetensors metadata
    enc.meta.update(arch="small_cnn", in_channels=1, num_classes=2, image_size=28, width=4)
    path = enc.save(tmp_path / "enc.safetensors")
    loaded = FeatureExtractor.from_safetensors(path)
    assert torch.allclose(loaded(real[:4]), enc(real[:4]))
    with pytest.raises(ValueError, match="channel"):
        enc(torch.zeros(2, 3, 28, 28))


def test_precision_recall_density_coverage():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    far = rng.normal(size=(300, 4)) + 20
    pr = precision_recall(real, fake, k=5)
    assert pr["precision"] > 0.8 and pr["recall"] > 0.8
    assert precision_recall(real, far, k=5) == {"precision": 0.0, "recall": 0.0, "k": 5}
    dc = density_coverage(real, fake, k=5)
    assert 0.7 < dc["density"] < 1.3 and dc["coverage"] > 0.8
    assert density_coverage(real, far, k=5)["coverage"] == 0.0
    with pytest.raises(ValueError, match="k"):
        precision_recall(real, fake, k=0)


# --- memorisation -----------------------------------------------------------------------------------------
def test_memorization_flags_planted_copies(tmp_path):
    g = torch.Generator().manual_seed(0)
    real = torch.rand(60, 1, 28, 28, generator=g) * 2 - 1
    novel = torch.rand(20, 1, 28, 28, generator=g) * 2 - 1
    planted = [3, 17, 42]
    copies = torch.stack([real[3], (real[17] + 0.02).clamp(-1, 1), real[42]])
    synthetic = torch.cat([novel[:10], copies, novel[10:]])
    where = [10, 11, 12]
    audit = memorization_audit(synthetic, real)
    assert audit["flagged"][where].all()
    assert not np.delete(audit["flagged"], where).any()
    assert audit["nearest_index"][where].tolist() == planted
    assert audit["summary"]["n_flagged"] == 3 and audit["summary"]["fraction_flagged"] == pytest.approx(3 / 23)
    assert audit["ratio"][10] == 0.0 and np.delete(audit["ratio"], where).min() > 0.8
    json.dumps(audit["summary"])
    png = nearest_neighbour_panel(synthetic, real, audit, tmp_path / "nn.png", n=4)
    assert png.exists() and png.stat().st_size > 0
    kept, n_dropped = filter_near_copies(synthetic, real)
    assert n_dropped == 3 and kept.dtype == torch.bool
    assert (~kept).nonzero().flatten().tolist() == where
    enc = FeatureExtractor(SmallCNN(1, 2, 28, width=4).eval())
    feat_audit = memorization_audit(synthetic, real, encoder=enc, space="features")
    assert feat_audit["flagged"][[10, 12]].all()
    with pytest.raises(ValueError, match="encoder"):
        memorization_audit(synthetic, real, space="features")


# --- harness ----------------------------------------------------------------------------------------------
def test_mixed_training_set_is_the_users_mixed_dataset():
    real = toy_set(30, 0)
    pool = (toy_set(100, 9).images, torch.arange(100) % 2)
    a = mixed_training_set(real, pool, ratio=0.25, seed=1)
    b = mixed_training_set(real, pool, ratio=0.25, seed=1)
    assert isinstance(a, MixedDataset) and a.return_source
    assert len(a) == 40 and a.counts()["synthetic"] == {"c0": 5, "c1": 5}
    assert torch.equal(a.synthetic_index, b.synthetic_index)
    user = MixedDataset(real, SyntheticDataset.from_tensors(*pool, real.class_names), ratio=0.25, seed=1)
    assert torch.equal(user.synthetic_index, a.synthetic_index)  # the harness measures the user's path
    assert mixed_training_set(real, None, ratio=0.0) is real
    with pytest.raises(ValueError, match="ratio"):
        mixed_training_set(real, pool, ratio=1.0)
    with pytest.raises(ValueError, match="synthetic"):
        mixed_training_set(real, None, ratio=0.5)


def test_mixed_training_set_balance_and_real_copies():
    real = ImageDataset(toy_set(30, 0).images, torch.tensor([0] * 22 + [1] * 8), ["c0", "c1"])
    pool = (toy_set(40, 9).images, torch.arange(40) % 2)
    ds = mixed_training_set(real, pool, ratio="balance", seed=3)
    assert ds.counts()["total"] == {"c0": 22, "c1": 22} and ds.counts()["synthetic"] == {"c0": 0, "c1": 14}
    with pytest.raises(ValueError, match="at least 14 samples of class 'c1'"):
        mixed_training_set(real, (pool[0][:10], pool[1][:10]), ratio="balance")
    with pytest.raises(ValueError, match="'balance'"):
        mixed_training_set(real, pool, ratio="balanced")
    copies = real_copies(real, [0, 14])  # 14 copies of a class with 8 real images: repeated
    ctrl = mixed_training_set(real, copies, ratio="balance", seed=3)
    assert ctrl.counts()["synthetic"] == {"c0": 0, "c1": 14}
    real_imgs = {tuple(im.flatten()[:20].tolist()) for im in real.images}
    assert all(tuple(ctrl[i][0].flatten()[:20].tolist()) in real_imgs for i in range(30, 44))



def test_real_copies_takes_counts_as_a_sequence_or_a_dict_by_index_or_name():
    """Issue 32: a dict's keys were read as counts (``{0: 2000, 1: 2000}`` gave one copy) and the dict of
    ``class_counts()`` failed; every form now gives the pool of the list form."""
    from synthaug.data import load_breastmnist

    train = load_breastmnist("train")
    malignant, benign = train.class_names
    want = len(real_copies(train, [2000, 2000]))
    assert want == 7644  # 14 repetitions of the 546 images: at least 2000 of each class
    for counts in ({0: 2000, 1: 2000}, {malignant: 2000, benign: 2000}, np.array([2000, 2000]),
                   torch.tensor([2000, 2000]), (2000, 2000)):
        assert len(real_copies(train, counts)) == want, counts
    # the obvious call: class_counts() is keyed by class name; as many extra copies as real images, one copy
    assert train.class_counts() == {malignant: 147, benign: 399}
    assert len(real_copies(train, train.class_counts())) == len(real_copies(train, [147, 399])) == 546
    assert len(real_copies(train, {benign: 800})) == len(real_copies(train, [0, 800])) == 3 * 546  # missing class: 0
    pool = real_copies(train, {0: 300})
    assert pool.class_counts() == {malignant: 3 * 147, benign: 3 * 399}


@pytest.mark.parametrize("counts, error, message", [
    ("2000", TypeError, r"counts: expected one count per class \(2: \['malignant', 'normal/benign'\]\) as a "
                        r"sequence, or a dict by class index .* or by class name .*found str '2000'"),
    (2000, TypeError, r"counts: expected one count per class .*found int 2000"),
    (np.zeros((2, 2), dtype=int), TypeError, r"counts: expected .*found ndarray of shape \(2, 2\)"),
    ({1.5: 3}, TypeError, r"counts: expected dict keys that are class indices or class names, found float 1.5"),
    ([1, 2, 3], ValueError, r"counts: expected 2 counts \(one per class: .*\), found 3"),
    ({"benign": 5}, ValueError, r"counts: expected class names from \['malignant', 'normal/benign'\], "
                                r"found 'benign'"),
    ({2: 5}, ValueError, r"counts: expected class indices in \[0, 1\], found 2"),
    ([10, -1], ValueError, r"counts\[1\]: expected an int >= 0, found -1"),
    ({0: 1.5}, TypeError, r"counts\[0\]: expected an int >= 0, found float 1.5"),
])
def test_real_copies_refuses_other_counts_by_name(counts, error, message):
    from synthaug.data import load_breastmnist

    with pytest.raises(error, match=message):
        real_copies(load_breastmnist("train"), counts)

def test_run_arm_choose_ratio_and_cas():
    train, val, test = toy_set(32, 0), toy_set(16, 1), toy_set(16, 2)
    pool = toy_set(64, 3)
    kw = dict(max_steps=4, width=8)
    r = run_arm("synthetic", train, val, test, synthetic=pool, ratio=0.5, classical="flips_shifts", seed=0, **kw)
    assert r["n_real"] == 32 and r["n_synthetic"] == 32 and r["classical"] == "flips_shifts"
    assert 0 <= r["test_auc"] <= 1 and r["n_test"] == 16 and r["val_score"] == r["val_auc"]
    choice = choose_ratio(train, val, pool, ratios=(0, 0.5), **kw)
    assert choice["best_ratio"] in (0.0, 0.5) and set(choice["val_scores"]) == {0.0, 0.5}
    assert choice["zero_is_best"] == (choice["best_ratio"] == 0.0)
    model, info, ts = choice["candidates"][0.5]  # the trained candidate, reusable without retraining
    assert info["best_val"] == choice["val_scores"][0.5] and len(ts) == 64
    again = run_arm("synthetic", train, val, test, synthetic=pool, ratio=0.5, seed=0, **kw)
    assert score_arm("synthetic", model, info, ts, test, seed=0, ratio=0.5)["test_auc"] == again["test_auc"]
    if choice["zero_is_best"]:
        assert "did not help" in choice["message"]
    c = cas(pool.images, pool.labels, val, test, **kw)
    assert 0 <= c["cas_accuracy"] <= 1 and c["n_synthetic"] == 64


def test_compare_results_table_and_best_classical_on_validation(tmp_path):
    base = {0: 0.80, 1: 0.78, 2: 0.82, 3: 0.79}
    arms = {
        "real_only": lambda s: {"test_auc": base[s], "val_score": 0.7},
        "classical_flips": lambda s: {"test_auc": base[s] + 0.01, "val_score": 0.75},  # best on validation
        "classical_randaug": lambda s: {"test_auc": base[s] + 0.02 + 0.001 * s, "val_score": 0.72},
        "synthetic": lambda s: {"test_auc": base[s] + 0.03 - 0.002 * s, "val_score": 0.71},
    }
    results = run_arms(arms, seeds=[0, 1, 2, 3])
    out = compare_results(results)
    assert out["baseline"] == "real_only" and out["best_classical"] == "classical_flips"
    assert out["vs_baseline"]["synthetic"]["mean_diff"] == pytest.approx(0.027)
    assert out["vs_best_classical"]["synthetic"]["mean_diff"] == pytest.approx(0.027 - 0.01)
    assert {r["arm"] for r in out["summary"]} == set(arms)
    assert all(r["seed"] == s for r, s in zip(out["results"]["synthetic"], [0, 1, 2, 3]))
    assert compare_arms(arms, seeds=[0, 1, 2, 3])["summary"] == out["summary"]
    table = markdown_table(out)
    assert "| synthetic |" in table and "(reference)" in table and "chosen by mean validation" in table
    png = bar_chart(out["summary"], "test_auc", tmp_path / "bars.png", title="toy")
    assert png.exists() and png.stat().st_size > 1000
    json.dumps(out)


def test_selection_never_reads_test_labels():
    """Scrambling the test labels changes test scores but none of the choices: step, share, classical arm."""
    train, val = toy_set(48, 0), toy_set(24, 1)
    test = toy_set(24, 2)
    g = torch.Generator().manual_seed(0)
    scrambled = ImageDataset(test.images, test.labels[torch.randperm(len(test), generator=g)], test.class_names)
    pool = toy_set(96, 3)
    kw = dict(max_steps=12, eval_every=3, width=8, batch_size=16, lr=3e-3)

    def study(test_set):
        res = {"real_only": [], "classical_flips_shifts": [], "classical_randaugment": []}
        chosen = []
        for seed in (0, 1):
            res["real_only"].append(run_arm("real_only", train, val, test_set, seed=seed, **kw))
            for kind in ("flips_shifts", "randaugment"):
                res[f"classical_{kind}"].append(run_arm(f"classical_{kind}", train, val, test_set, classical=kind,
                                                        seed=seed, **kw))
            ch = choose_ratio(train, val, pool, ratios=(0, 0.25, 0.5), seed=seed, **kw)
            chosen.append((ch["best_ratio"], {r: c[1]["best_step"] for r, c in ch["candidates"].items()}))
        steps = {a: [r["best_step"] for r in rs] for a, rs in res.items()}
        return compare_results(res), steps, chosen

    a, steps_a, chosen_a = study(test)
    b, steps_b, chosen_b = study(scrambled)
    assert steps_a == steps_b and chosen_a == chosen_b
    assert a["best_classical"] == b["best_classical"]
    assert [r["test_auc"] for r in a["results"]["real_only"]] != [r["test_auc"] for r in b["results"]["real_only"]]


def test_paired_test_is_not_fooled_by_float_noise():
    assert paired_test([0.1 + 0.2, 0.7], [0.3, 0.7])["n_zero"] == 2
    constant_shift = paired_test([0.675, 0.6875, 0.7], [0.6625, 0.675, 0.6875])
    assert math.isnan(constant_shift["p_value"]) and constant_shift["mean_diff"] == pytest.approx(0.0125)


def test_two_stage_arm_fine_tunes_on_real_only():
    train, val, test = toy_set(32, 0), toy_set(16, 1), toy_set(16, 2)
    pool = toy_set(64, 3)
    kw = dict(max_steps=4, eval_every=2, width=8, seed=0)
    model, info, ts = train_arm(train, val, synthetic=pool, ratio=0.5, finetune_steps=4, **kw)
    assert info["stage1"]["n_synthetic"] == 32 and info["finetune_steps"] == 4
    assert info["n_train"] == 32 and info["n_synthetic"] == 32  # stage 2 saw the real images only
    row = score_arm("two_stage", model, info, ts, test, seed=0, ratio=0.5)
    assert row["stage1"]["best_val"] == info["stage1"]["best_val"] and row["n_real"] == 32
    _, plain, _ = train_arm(train, val, synthetic=pool, ratio=0.5, **kw)
    assert plain["best_val"] == info["stage1"]["best_val"]  # stage 1 is the plain mixed arm


def test_pseudo_label_self_training():
    train, val, test = toy_set(16, 0), toy_set(16, 1), toy_set(16, 2)
    pool = toy_set(40, 5)
    row = pseudo_label_arm("pseudo_label", train, pool.images, val, test, threshold=0.6, seed=0,
                           true_labels=pool.labels, max_steps=30, eval_every=5, width=8, lr=3e-3, batch_size=16,
                           select_on="loss")
    assert row["n_real"] == 16 and 0 < row["n_pseudo"] <= 40 and sum(row["pseudo_per_class"]) == row["n_pseudo"]
    assert row["pseudo_label_accuracy"] > 0.9  # the toy classes are separable
    assert 0 <= row["test_auc"] <= 1
    with pytest.raises(ValueError, match="threshold"):
        pseudo_label_arm("x", train, pool.images, val, test, threshold=0.0)


@pytest.mark.parametrize("kind", ["colour", "augmix"])
def test_colour_and_augmix_classical_kinds(kind):
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    torch.manual_seed(0)
    y = classical_augment(kind, hflip=False)(x)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.min() >= -1 and y.max() <= 1
    assert (y - x).abs().mean() > 0.02  # it changes the images
    torch.manual_seed(0)
    assert torch.equal(classical_augment(kind, hflip=False)(x), y)  # seeded by torch's global RNG
    gray = classical_augment(kind)(torch.rand(2, 1, 16, 16) * 2 - 1)
    assert gray.shape == (2, 1, 16, 16)


def test_colour_kind_moves_colours_not_shapes():
    torch.manual_seed(0)
    x = -torch.ones(32, 3, 16, 16)
    x[:, :, 4:12, 7:9] = 1.0  # a white bar on black
    y = classical_augment("colour", hflip=False)(x)
    bar, bg = y[:, :, 4:12, 7:9].mean((1, 2, 3)), y[:, :, :4].mean((1, 2, 3))
    assert ((bar - bg).abs() > 0.05).all()  # the bar stays visible in every image
    assert (bar < bg).any() and (bar > bg).any()  # inverted in some, not in others
