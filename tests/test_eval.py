"""Tests of synthaug.eval: classifiers, statistics, feature metrics, memorisation audit and the harness."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from synthaug.data import ImageDataset
from synthaug.eval import (
    FeatureExtractor,
    SmallCNN,
    bar_chart,
    cas,
    choose_ratio,
    classical_augment,
    compare_arms,
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
    quick_gain,
    resnet18_small,
    run_arm,
    summarise,
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
    model, info = train_classifier(train, val, epochs=5, batch_size=8, lr=3e-3, width=8, seed=0, select_on="loss")
    losses = [h["val_loss"] for h in info["history"]]
    assert info["best_epoch"] == 1 + int(np.argmin(losses))
    assert info["best_val"] == pytest.approx(min(losses))
    after = evaluate(model, val)
    assert after["loss"] == pytest.approx(info["best_val"], rel=1e-5)  # the selected weights were restored
    assert after["accuracy"] > 0.9
    assert info["n_train"] == 64 and info["n_synthetic"] == 0


def test_train_classifier_deterministic_and_accuracy_selection():
    train, val = toy_set(32, 2), toy_set(16, 3)
    _, a = train_classifier(train, val, epochs=2, batch_size=16, width=8, seed=5, select_on="accuracy")
    _, b = train_classifier(train, val, epochs=2, batch_size=16, width=8, seed=5, select_on="accuracy")
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    accs = [h["val_accuracy"] for h in a["history"]]
    assert a["best_epoch"] == 1 + int(np.argmax(accs))


def test_train_classifier_rejects_bad_arguments():
    train = toy_set(8, 0)
    with pytest.raises(ValueError, match="select_on"):
        train_classifier(train, train, select_on="f1")
    with pytest.raises(ValueError, match="arch"):
        train_classifier(train, train, arch="vgg", epochs=1)


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
    assert same["mean_diff"] == 0 and same["p_value"] == 1.0
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
def test_mixed_training_set_counts_and_determinism():
    real = toy_set(30, 0)
    pool = (toy_set(100, 9).images, torch.arange(100) % 2)
    a = mixed_training_set(real, pool, ratio=0.25, seed=1)
    b = mixed_training_set(real, pool, ratio=0.25, seed=1)
    syn = a.tensors[2]
    assert int(syn.sum()) == 10 and len(a) == 40
    assert torch.equal(a.tensors[0], b.tensors[0])
    assert torch.bincount(a.tensors[1][syn]).tolist() == [5, 5]
    with pytest.raises(ValueError, match="ratio"):
        mixed_training_set(real, pool, ratio=1.0)
    with pytest.raises(ValueError, match="synthetic"):
        mixed_training_set(real, None, ratio=0.5)


def test_mixed_training_set_balance_tops_up_minority():
    real = ImageDataset(toy_set(30, 0).images, torch.tensor([0] * 22 + [1] * 8), ["c0", "c1"])
    pool = (toy_set(40, 9).images, torch.arange(40) % 2)
    ds = mixed_training_set(real, pool, ratio="balance", seed=3)
    syn = ds.tensors[2]
    assert torch.bincount(ds.tensors[1]).tolist() == [22, 22]
    assert torch.bincount(ds.tensors[1][syn], minlength=2).tolist() == [0, 14]
    assert torch.equal(ds.tensors[0], mixed_training_set(real, pool, ratio="balance", seed=3).tensors[0])
    with pytest.raises(ValueError, match="at least 14 images of class 1"):
        mixed_training_set(real, (pool[0][:10], pool[1][:10]), ratio="balance")
    with pytest.raises(ValueError, match="'balance'"):
        mixed_training_set(real, pool, ratio="balanced")


def test_run_arm_choose_ratio_and_cas():
    train, val, test = toy_set(32, 0), toy_set(16, 1), toy_set(16, 2)
    pool = toy_set(64, 3)
    r = run_arm("synthetic", train, val, test, synthetic=pool, ratio=0.5, classical="flips_shifts", seed=0,
                epochs=1)
    assert r["n_real"] == 32 and r["n_synthetic"] == 32 and r["classical"] == "flips_shifts"
    assert 0 <= r["test_auc"] <= 1 and r["n_test"] == 16
    choice = choose_ratio(train, val, pool, ratios=(0, 0.5), epochs=1)
    assert choice["best_ratio"] in (0.0, 0.5) and set(choice["val_scores"]) == {0.0, 0.5}
    assert choice["zero_is_best"] == (choice["best_ratio"] == 0.0)
    if choice["zero_is_best"]:
        assert "did not help" in choice["message"]
    c = cas(pool.images, pool.labels, val, test, epochs=1)
    assert 0 <= c["cas_accuracy"] <= 1 and c["n_synthetic"] == 64


def test_compare_arms_bar_chart_and_table(tmp_path):
    base = {0: 0.80, 1: 0.78, 2: 0.82, 3: 0.79}
    arms = {
        "real_only": lambda s: {"test_auc": base[s]},
        "classical_flips": lambda s: {"test_auc": base[s] + 0.01},
        "classical_randaug": lambda s: {"test_auc": base[s] + 0.02 + 0.001 * s},
        "synthetic": lambda s: {"test_auc": base[s] + 0.03 - 0.002 * s},
    }
    out = compare_arms(arms, seeds=[0, 1, 2, 3])
    assert out["baseline"] == "real_only" and out["best_classical"] == "classical_randaug"
    assert out["vs_baseline"]["synthetic"]["mean_diff"] == pytest.approx(0.027)
    assert out["vs_best_classical"]["synthetic"]["mean_diff"] == pytest.approx(0.027 - 0.0215)
    assert {r["arm"] for r in out["summary"]} == set(arms)
    assert all(r["seed"] == s for r, s in zip(out["results"]["synthetic"], [0, 1, 2, 3]))
    table = markdown_table(out)
    assert "| synthetic |" in table and "(reference)" in table
    png = bar_chart(out["summary"], "test_auc", tmp_path / "bars.png", title="toy")
    assert png.exists() and png.stat().st_size > 1000
    json.dumps(out)


def test_quick_gain_breastmnist():
    from synthaug.models import GeneratorModel
    from synthaug.nets import create_net

    torch.manual_seed(0)
    net = create_net("dcgan", num_classes=2, image_size=28, channels=1, z_dim=16, base_channels=8, max_channels=32)
    model = GeneratorModel(net, {"kind": "cgan", "image_size": 28, "channels": 1, "num_classes": 2,
                                 "class_names": ["malignant", "normal/benign"]}, device="cpu")
    out = quick_gain(model, seed=0, device="cpu", epochs=1)
    assert "single seed, indicative only" in out["note"]
    assert out["real_plus_synthetic"]["n_synthetic"] == out["real_only"]["n_real"] == 546
    assert out["difference"]["test_auc"] == pytest.approx(out["real_plus_synthetic"]["test_auc"]
                                                         - out["real_only"]["test_auc"])
    json.dumps(out)


def test_paired_test_is_not_fooled_by_float_noise():
    assert paired_test([0.1 + 0.2, 0.7], [0.3, 0.7])["p_value"] == 1.0
    constant_shift = paired_test([0.675, 0.6875, 0.7], [0.6625, 0.675, 0.6875])
    assert math.isnan(constant_shift["p_value"]) and constant_shift["mean_diff"] == pytest.approx(0.0125)
