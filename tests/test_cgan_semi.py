"""Semi-supervised cGAN: unlabelled images train D's unconditional term; optional confident pseudo-labels."""

import json

import numpy as np
import pytest
import torch

import synthaug.train.cgan as cgan_mod
from synthaug.data import from_arrays
from synthaug.io import read_model_config
from synthaug.models import GeneratorModel
from synthaug.train import CGANConfig, CGANRecipe, Trainer

TINY_G = {"base_channels": 8, "max_channels": 16, "z_dim": 8, "embed_dim": 4}
TINY_D = {"base_channels": 8, "max_channels": 16}
TINY_CLF = {"max_steps": 20, "width": 4, "batch_size": 16, "patience": None}


def toy(n, seed, size=16, channels=1):
    """Class 0 dark, class 1 bright; every image distinct."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    imgs = rng.uniform(0.0, 0.4, size=(n, size, size, channels)).astype(np.float32)
    imgs[labels == 1] += 0.5
    return from_arrays(imgs, labels, class_names=["dark", "bright"])


LABELLED = toy(16, 0)
UNLABELLED = toy(32, 1).images


def config(**kw):
    return CGANConfig(g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), batch_size=8, **kw)


def semi_recipe(seed=0, unlabelled=UNLABELLED, **kw):
    kw.setdefault("pseudo_label_classifier", dict(TINY_CLF))
    return CGANRecipe(LABELLED, config(**kw), device="cpu", seed=seed, unlabelled=unlabelled)


def weights(recipe):
    return {f"{n}.{k}": v.clone() for n, net in recipe.nets.items() for k, v in net.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class MeanBrightness(torch.nn.Module):
    """A fixed 'classifier': logit of bright = 8 * mean pixel, so confidences are known in advance."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-4 * m, 4 * m], dim=1)


def test_unlabelled_pool_feeds_the_unconditional_term():
    recipe = semi_recipe(diffaug="")
    seen, original = [], recipe.D.forward_parts

    def spy(x, y=None):
        if y is None:  # scored without a label: the unconditional term
            seen.append(x.detach().clone())
        return original(x, y)

    recipe.D.forward_parts = spy
    pool = torch.cat([LABELLED.images, UNLABELLED])
    steps = len(pool) // 8  # one epoch of the all-real sampler
    for step in range(steps):
        out = recipe.train_step(step)
        assert "d_real_all" in out
    assert len(seen) == steps and all(len(b) == 8 for b in seen)
    rows = torch.cat(seen).flatten(1)
    match = (rows[:, None, :] == pool.flatten(1)[None]).all(-1)  # which pool image each row is
    assert match.any(1).all()  # only real images, un-augmented here
    assert sorted(match.float().argmax(1).tolist()) == list(range(len(pool)))  # each once: all unlabelled used
    sup = CGANRecipe(LABELLED, config(diffaug=""), device="cpu", seed=0)
    for step in range(steps):
        sup.train_step(step)
    assert not same(weights(sup), weights(recipe))  # the pool changed training


@pytest.mark.parametrize("kw", [
    {"loss": "wgan", "n_critic": 2, "ac_weight": 0.5, "ada": True},
    {"loss": "lsgan", "r1_gamma": 1.0, "label_smoothing": 0.1, "grad_clip": 1.0},
    {"loss": "nonsaturating", "projection": False},
])
def test_losses_and_stabilisers_train_semi_supervised(kw):
    kw = dict(kw)
    d = {**TINY_D, "ac_head": "ac_weight" in kw, "projection": kw.pop("projection", True)}
    recipe = CGANRecipe(LABELLED, CGANConfig(g_kwargs=dict(TINY_G), d_kwargs=d, batch_size=8, **kw), device="cpu",
                        unlabelled=LABELLED)  # an ImageDataset works too (its labels are ignored)
    for step in range(2):
        out = recipe.train_step(step)
        assert all(np.isfinite(v) for v in out.values()) and "d_real_all" in out


def test_no_unlabelled_keeps_the_supervised_recipe():
    recipe = CGANRecipe(LABELLED, config(), device="cpu")
    assert recipe.unlabelled is None and set(recipe.samplers) == {"data"} and "pseudo_labels" not in recipe.extras
    assert "unlabelled" not in recipe.config_dict()
    assert "semi_supervised" not in recipe.model_config()


def test_same_seed_same_run_other_seed_differs():
    a, b, c = semi_recipe(1, pseudo_label_threshold=0.8), semi_recipe(1, pseudo_label_threshold=0.8), \
        semi_recipe(2, pseudo_label_threshold=0.8)
    assert torch.equal(a.pseudo.confidence, b.pseudo.confidence)
    for r in (a, b, c):
        for step in range(3):
            r.train_step(step)
    assert same(weights(a), weights(b))
    assert not same(weights(a), weights(c))


def test_resume_is_exact_and_reuses_the_saved_pseudo_labels(tmp_path, monkeypatch):
    kw = dict(log_every=1, sample_every=100, ckpt_every=100, progress=False)
    full = semi_recipe(pseudo_label_threshold=0.6, n_critic=2)
    Trainer(full, tmp_path / "full", 6, **kw).fit()
    assert full.pseudo_label_summary()["n_pseudo_labelled"] > 0

    Trainer(semi_recipe(pseudo_label_threshold=0.6, n_critic=2), tmp_path / "half", 3, **kw).fit()
    # the resumed process's classifier would label differently: the checkpoint's pseudo-labels must win
    monkeypatch.setattr(cgan_mod, "train_pseudo_labeller", lambda *a, **k: MeanBrightness())
    resumed = semi_recipe(pseudo_label_threshold=0.6, n_critic=2)
    assert not torch.equal(resumed.labels, full.labels) or not torch.equal(resumed.images, full.images)
    result = Trainer(resumed, tmp_path / "half", 6, **kw).fit()
    assert result.step == 6
    assert torch.equal(resumed.labels, full.labels) and torch.equal(resumed.images, full.images)
    assert same(weights(resumed), weights(full))
    for name in ("data", "all_real"):
        s1, s2 = full.samplers[name].state_dict(), resumed.samplers[name].state_dict()
        assert torch.equal(s1["perm"], s2["perm"]) and s1["pos"] == s2["pos"] and torch.equal(s1["rng"], s2["rng"])

    other = CGANRecipe(LABELLED, config(pseudo_label_threshold=0.6, n_critic=2, pseudo_label_classifier=TINY_CLF),
                       device="cpu", unlabelled=UNLABELLED[:20])
    with pytest.raises(ValueError, match="different configuration.*unlabelled: run has 20, checkpoint has 32"):
        Trainer(other, tmp_path / "half", 8, **kw).fit()


def test_pseudo_labels_take_only_confident_images(tmp_path, monkeypatch):
    monkeypatch.setattr(cgan_mod, "train_pseudo_labeller", lambda *a, **k: MeanBrightness())
    levels = torch.linspace(-1, 1, 21)  # mean pixel of each unlabelled image
    pool = levels[:, None, None, None].expand(21, 1, 16, 16).contiguous()
    recipe = semi_recipe(unlabelled=pool, pseudo_label_threshold=0.9)
    p_bright = torch.sigmoid(8 * levels.double())
    conf = torch.maximum(p_bright, 1 - p_bright)
    expect = torch.nonzero(conf >= 0.9).flatten()
    assert 0 < len(expect) < 21
    assert torch.allclose(recipe.pseudo.confidence, conf)
    assert torch.equal(recipe.pseudo.selected(0.9), expect)
    n = len(LABELLED)
    assert torch.equal(recipe.images[n:], pool[expect])
    assert torch.equal(recipe.labels[n:], (levels[expect] > 0).long())  # dark -> 0, bright -> 1
    assert torch.equal(recipe.images[:n], LABELLED.images) and len(recipe.samplers["data"].perm) == n + len(expect)
    result = Trainer(recipe, tmp_path / "r", 2, sample_every=100, progress=False).fit()
    semi = read_model_config(result.model_dir)["semi_supervised"]
    assert semi.pop("pseudo_label_classifier") == {**cgan_mod.PSEUDO_LABEL_CLASSIFIER, **TINY_CLF}
    assert semi == {"n_labelled": 16, "n_unlabelled": 21, "pseudo_label_threshold": 0.9,
                    "n_pseudo_labelled": len(expect),
                    "pseudo_labels_per_class": {"dark": int((levels[expect] < 0).sum()),
                                                "bright": int((levels[expect] > 0).sum())}}
    imgs, labels = GeneratorModel.from_pretrained(result.model_dir).sample(4, seed=0)
    assert imgs.shape == (4, 1, 16, 16) and labels.tolist() == [0, 1, 0, 1]


def test_real_pseudo_labeller_is_confident_and_right_and_keeps_global_rng():
    torch.manual_seed(7)
    CGANRecipe(LABELLED, config(), device="cpu", seed=3)
    after_supervised = torch.get_rng_state()
    torch.manual_seed(7)
    clf = {**TINY_CLF, "max_steps": 40, "width": 8, "lr": 3e-3}
    recipe = semi_recipe(3, pseudo_label_threshold=0.9, pseudo_label_classifier=clf)
    assert torch.equal(torch.get_rng_state(), after_supervised)  # classifier training left no trace
    idx, conf = recipe.pseudo.selected(0.9), recipe.pseudo.confidence
    left = torch.ones(32, dtype=torch.bool)
    left[idx] = False
    assert len(idx) >= 16 and bool((conf[idx] >= 0.9).all()) and bool((conf[left] < 0.9).all())
    truth = torch.arange(32) % 2
    assert torch.equal(recipe.pseudo.predicted[idx], truth[idx])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unlabelled: expected 1 channel.*found 3"):
        semi_recipe(unlabelled=toy(4, 2, channels=3).images)
    with pytest.raises(ValueError, match="unlabelled: expected 16x16 images.*found 28x28"):
        semi_recipe(unlabelled=toy(4, 2, size=28).images)
    with pytest.raises(ValueError, match="unlabelled: expected at least one non-empty image"):
        semi_recipe(unlabelled=torch.zeros(0, 1, 16, 16))
    with pytest.raises(ValueError, match=r"unlabelled: expected pixel values in \[-1, 1\]"):
        semi_recipe(unlabelled=torch.full((2, 1, 16, 16), 3.0))
    with pytest.raises(TypeError, match="unlabelled: expected an ImageDataset.*found ndarray"):
        semi_recipe(unlabelled=np.zeros((2, 16, 16, 1), np.float32))
    with pytest.raises(ValueError, match="pseudo_label_threshold: needs an unlabelled pool"):
        CGANRecipe(LABELLED, config(pseudo_label_threshold=0.9), device="cpu")
    with pytest.raises(ValueError, match=r"pseudo_label_threshold: expected None or a probability in \(0, 1\]"):
        semi_recipe(pseudo_label_threshold=1.5)
    with pytest.raises(ValueError, match="pseudo_label_classifier: expected keys among.*unknown \\['epochs'\\]"):
        semi_recipe(pseudo_label_threshold=0.9, pseudo_label_classifier={"epochs": 3})
    one_class = from_arrays(np.zeros((4, 16, 16, 1), np.float32), class_names=["only"])
    with pytest.raises(ValueError, match="pseudo_label_threshold: needs at least two classes"):
        CGANRecipe(one_class, config(pseudo_label_threshold=0.9), device="cpu", unlabelled=UNLABELLED)


def test_discriminator_without_separate_terms_is_refused(monkeypatch):
    from synthaug.nets.discriminators import ProjectionDiscriminator

    monkeypatch.setattr(ProjectionDiscriminator, "forward_parts", None)
    with pytest.raises(ValueError, match="discriminator: expected one whose unconditional and class terms"):
        CGANRecipe(LABELLED, config(), device="cpu", unlabelled=UNLABELLED)


def test_cli_semi_supervised_smoke(tmp_path, capsys):
    from synthaug.cli import main
    from synthaug.data import load_labelled_and_rest, load_training_data

    out = tmp_path / "cli"
    rc = main(["train", "cgan", "--data", "breastmnist", "--n-per-class", "8", "--unlabelled", "rest",
               "--pseudo-label-threshold", "0.9", "--pseudo-label-classifier", json.dumps(TINY_CLF),
               "--out", str(out), "--steps", "2", "--batch-size", "4", "--no-progress",
               "--g-kwargs", json.dumps(TINY_G), "--d-kwargs", json.dumps(TINY_D)])
    assert rc == 0, capsys.readouterr().err
    assert "pseudo-labelled:" in capsys.readouterr().out
    semi = read_model_config(out / "model")["semi_supervised"]
    assert semi["n_labelled"] == 16 and semi["n_unlabelled"] == 546 - 16
    assert semi["pseudo_label_threshold"] == 0.9 and sum(semi["pseudo_labels_per_class"].values()) == \
        semi["n_pseudo_labelled"]
    assert main(["sample", str(out / "model"), "--n", "2", "--out", str(tmp_path / "s")]) == 0
    labelled, rest = load_labelled_and_rest("breastmnist", n_per_class=8)
    assert torch.equal(labelled.images, load_training_data("breastmnist", n_per_class=8).images)  # same subset
    assert not (rest.images.flatten(1)[:, None] == labelled.images.flatten(1)[None]).all(-1).any()  # disjoint
    rc = main(["train", "cgan", "--data", "breastmnist", "--unlabelled", "rest", "--out", str(tmp_path / "x"),
               "--steps", "1", "--no-progress"])
    assert rc == 2 and "--unlabelled: 'rest' means" in capsys.readouterr().err
    rc = main(["train", "cgan", "--data", "breastmnist", "--unlabelled", str(tmp_path / "missing"),
               "--out", str(tmp_path / "x"), "--steps", "1", "--no-progress"])
    assert rc == 2 and "--unlabelled: expected 'rest'" in capsys.readouterr().err
