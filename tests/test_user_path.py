"""What a new user meets first (issue 32): progress of every long phase, output-folder checks before anything
trains, inputs taken alike by the recipes, the value-range rule at ``translate``, quiet non-main ranks."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.augment import translated_dataset
from synthaug.cli import main
from synthaug.data import from_arrays, load_breastmnist
from synthaug.models import TranslatorModel
from synthaug.train import (CGANConfig, CGANRecipe, CUTConfig, CUTRecipe, CycleGANConfig, CycleGANRecipe,
                            Pix2PixConfig, SRGANConfig, SRGANRecipe, Trainer)
from synthaug.utils import progress_default

TINY_G = {"ngf": 4, "n_blocks": 1}
TINY_D = {"ndf": 4, "n_layers": 2}
TINY_CLF = {"width": 4, "max_steps": 20, "batch_size": 8, "eval_every": 10, "patience": None}
TINY_CGAN = dict(g_kwargs={"base_channels": 4, "max_channels": 8, "z_dim": 8, "embed_dim": 4},
                 d_kwargs={"base_channels": 4, "max_channels": 8}, batch_size=8)
SIZE = 16


def domains(n=16, seed=0):
    """A: dark images, class = which half is bright (labelled); B: the inverted images."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 0.2, size=(n, SIZE, SIZE, 1)).astype(np.float32)
    y = np.arange(n) % 2
    a[y == 0, :, : SIZE // 2] += 0.7
    a[y == 1, :, SIZE // 2:] += 0.7
    return (from_arrays(a, labels=y, class_names=["left", "right"], name="dark"),
            from_arrays((1.0 - a)[rng.permutation(n)], name="light"))


def cyclegan_config(**kw):
    return CycleGANConfig(steps=kw.pop("steps", 2), g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), pool_size=4, **kw)


def _write(folder, arrays01):
    folder.mkdir(parents=True, exist_ok=True)
    for i, arr in enumerate(arrays01):
        Image.fromarray((np.clip(arr[..., 0], 0, 1) * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


@pytest.fixture
def folders(tmp_path):
    """Domain A as class folders (labelled), domain B as a flat folder."""
    a, b = domains()
    to01 = lambda t: (t.numpy().transpose(0, 2, 3, 1) + 1) / 2  # noqa: E731
    labels = a.labels.numpy()
    _write(tmp_path / "A" / "left", to01(a.images)[labels == 0])
    _write(tmp_path / "A" / "right", to01(a.images)[labels == 1])
    _write(tmp_path / "B", to01(b.images))
    return tmp_path


# ------------------------------------------------------------------------------------------------- progress
def test_task_classifier_shows_progress_unless_turned_off(capsys):
    a, b = domains()
    cfg = cyclegan_config(lambda_task=1.0, task_classifier=dict(TINY_CLF))
    CycleGANRecipe(a, b, cfg, device="cpu", names=("dark", "light"))
    err = capsys.readouterr().err
    assert "task classifier f_S (small_cnn)" in err and "/20 [" in err and "step/s" in err  # steps, elapsed<left
    with progress_default(False):
        CycleGANRecipe(a, b, cfg, device="cpu", names=("dark", "light"))
    assert "task classifier" not in capsys.readouterr().err


def test_pseudo_labeller_and_content_encoder_show_progress(capsys):
    train = load_breastmnist("train")
    labelled = train.subsample(n_per_class=8, seed=0)
    cfg = CGANConfig(pseudo_label_threshold=0.9, pseudo_label_classifier={"max_steps": 12}, **TINY_CGAN)
    CGANRecipe(labelled, cfg, device="cpu", unlabelled=train.images[:40])
    assert "pseudo-labeller (small_cnn)" in capsys.readouterr().err
    CGANRecipe(labelled, cfg, device="cpu", unlabelled=train.images[:40], progress=False)
    assert "pseudo-labeller" not in capsys.readouterr().err
    sr = SRGANConfig(steps=2, scale=2, crop=16, g_kwargs={"nf": 4, "n_blocks": 1}, d_kwargs={"ndf": 4, "n_stages": 2},
                     batch_size=2, content_encoder={"width": 4, "steps": 8, "batch_size": 2})
    SRGANRecipe(train.images[:6], sr, device="cpu")
    assert "content encoder" in capsys.readouterr().err
    SRGANRecipe(train.images[:6], sr, device="cpu", progress=False)
    assert capsys.readouterr().err == ""


def test_run_arms_and_translated_dataset_show_progress_by_default(capsys, tmp_path):
    from synthaug.eval import run_arms

    run_arms({"a": lambda s: {"x": s}, "b": lambda s: {"x": -s}}, seeds=[0, 1])
    err = capsys.readouterr().err
    assert "arms x seeds" in err and "/4 [" in err and "run/s" in err
    run_arms({"a": lambda s: {"x": s}}, seeds=[0], progress=False)
    assert capsys.readouterr().err == ""

    a, b = domains()
    recipe = CycleGANRecipe(a, b, cyclegan_config(), device="cpu", names=("dark", "light"))
    result = Trainer(recipe, tmp_path / "run", progress=False).fit()
    model = TranslatorModel.from_pretrained(result.model_dir)
    capsys.readouterr()
    translated_dataset(model, a, classifier=None, batch_size=4)
    assert "translate A2B" in capsys.readouterr().err
    translated_dataset(model, a, classifier=None, progress=False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------- output folders
def test_a_second_run_with_other_settings_is_refused_before_the_task_classifier_trains(folders, capsys, monkeypatch):
    import synthaug.train.task_loss as task_loss

    out = folders / "m2u"
    common = ["train", "cyclegan", "--a", str(folders / "A"), "--b", str(folders / "B"), "--size", str(SIZE),
              "--channels", "1", "--steps", "2", "--g-kwargs", json.dumps(TINY_G), "--d-kwargs", json.dumps(TINY_D),
              "--lambda-task", "1", "--task-classifier", json.dumps(TINY_CLF), "--out", str(out)]
    assert main(common) == 0
    assert "task classifier f_S" in capsys.readouterr().err  # the CLI shows its progress
    trained = []
    real = task_loss.train_task_classifier
    monkeypatch.setattr(task_loss, "train_task_classifier", lambda *a, **k: trained.append(1) or real(*a, **k))
    assert main([*common, "--lambda-cycle", "5"]) == 2
    err = capsys.readouterr().err
    assert "--out: checkpoint:" in err and "different configuration (lambda_cycle: run has 5.0, checkpoint has " \
        "10.0)" in err and "checked before training anything" in err
    assert trained == []  # refused before f_S trained
    assert main([*common, "--steps", "3"]) == 2  # the run length is a setting of a translator
    assert "steps: run has 3, checkpoint has 2" in capsys.readouterr().err and trained == []
    assert main([*common, "--no-progress"]) == 0  # the same settings resume (nothing left to do)
    assert trained == [1] and capsys.readouterr().err == ""  # --no-progress silences f_S's bar too
    assert main([*common, "--lambda-cycle", "5", "--no-resume", "--no-progress"]) == 0  # starting over is allowed
    assert main(["train", "cgan", "--data", "breastmnist", "--out", str(out), "--steps", "1"]) == 2
    assert "expected a 'cgan' checkpoint, found one of recipe 'cyclegan'" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["cgan", "cgan_semi_progressive", "cyclegan_task", "cut", "pix2pix", "srgan"])
def test_planned_config_dict_is_what_the_built_recipe_reports(case):
    from synthaug.data import PairedDataset
    from synthaug.train import Pix2PixRecipe

    a, b = domains()
    train = load_breastmnist("train", n_per_class=8)
    if case == "cgan":
        cfg, attrs = CGANConfig(steps=5, **TINY_CGAN), {"seed": 3, "image_size": 28}
        built = CGANRecipe(train, cfg, device="cpu", seed=3, progress=False)
    elif case == "cgan_semi_progressive":
        cfg = CGANConfig(progressive={"fade_steps": 2}, pseudo_label_threshold=0.9,
                         pseudo_label_classifier={"max_steps": 4}, **TINY_CGAN)
        attrs = {"seed": 0, "image_size": 28, "unlabelled": train.images[:10]}
        built = CGANRecipe(train, cfg, device="cpu", unlabelled=train.images[:10], progress=False)
    elif case == "cyclegan_task":
        cfg, attrs = cyclegan_config(lambda_task=1.0, task_classifier=dict(TINY_CLF)), {}
        with progress_default(False):
            built = CycleGANRecipe(a, b, cfg, device="cpu")
    elif case == "cut":
        cfg, attrs = CUTConfig(steps=2, g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), nce_layers=("input", "down1")), {}
        built = CUTRecipe(a, b, cfg, device="cpu")
    elif case == "pix2pix":
        cfg, attrs = Pix2PixConfig(steps=2, g_kwargs={"ngf": 4}, d_kwargs=dict(TINY_D)), {}
        built = Pix2PixRecipe(PairedDataset(a.images, b.images), cfg, device="cpu")
    else:
        cfg = SRGANConfig(steps=2, scale=2, crop=16, g_kwargs={"nf": 4, "n_blocks": 1},
                          d_kwargs={"ndf": 4, "n_stages": 2}, batch_size=2, lambda_content=0.0)
        attrs, built = {}, SRGANRecipe(train.images[:4], cfg, device="cpu")
    assert type(built).planned_config_dict(cfg, **attrs) == built.config_dict()


def test_sample_refuses_n_0_and_shards_into_a_folder_of_png_samples(tmp_path, capsys):
    train = load_breastmnist("train", n_per_class=8)
    result = Trainer(CGANRecipe(train, CGANConfig(**TINY_CGAN), device="cpu"), tmp_path / "run", 1,
                     progress=False).fit()
    model = str(result.model_dir)
    assert main(["sample", model, "--n", "0", "--out", str(tmp_path / "none")]) == 2
    assert "--n: expected a number of images >= 1, found 0 (nothing would be written)" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    assert main(["sample", model, "--n", "4", "--out", str(tmp_path / "synth")]) == 0
    capsys.readouterr()
    assert main(["sample", model, "--n", "4", "--shards", "--out", str(tmp_path / "synth")]) == 2
    err = capsys.readouterr().err
    assert "--out: expected a folder without PNG samples for --shards" in err and "found 4 PNG file(s)" in err
    assert not list((tmp_path / "synth").glob("*.safetensors"))
    assert main(["sample", model, "--n", "4", "--shards", "--out", str(tmp_path / "shards")]) == 0


# ------------------------------------------------------------------------------------------ inputs alike
def test_cyclegan_takes_plain_tensors_as_cgan_unlabelled_does(tmp_path):
    a, b = domains()
    recipe = CycleGANRecipe(a.images, b.images, cyclegan_config(), device="cpu")
    assert Trainer(recipe, tmp_path / "t", progress=False).fit().step == 2
    with pytest.raises(ValueError, match=r"domain_b: expected pixel values in \[-1, 1\], found range"):
        CycleGANRecipe(a.images, b.images * 3, cyclegan_config(), device="cpu")
    with pytest.raises(TypeError, match=r"domain_a: expected an ImageDataset with .images \(N, C, H, W\) or a float "
                                        r"tensor \(N, C, H, W\) in \[-1, 1\], found list"):
        CycleGANRecipe([1, 2], b.images, cyclegan_config(), device="cpu")
    with pytest.raises(TypeError, match="domain_a: expected the labelled source domain .* found Tensor"):
        CycleGANRecipe(a.images, b, cyclegan_config(lambda_task=1.0, task_classifier=dict(TINY_CLF)), device="cpu")


def test_the_run_length_can_go_in_every_recipes_config(tmp_path):
    train = load_breastmnist("train", n_per_class=8)
    recipe = CGANRecipe(train, CGANConfig(steps=3, **TINY_CGAN), device="cpu")
    result = Trainer(recipe, tmp_path / "c", progress=False).fit()
    assert result.step == 3 and "steps" not in json.loads((result.model_dir / "config.json").read_text())["train"]
    more = Trainer(CGANRecipe(train, CGANConfig(**TINY_CGAN), device="cpu"), tmp_path / "c", 5, progress=False).fit()
    assert more.step == 5  # a cGAN run can still be continued for more steps
    with pytest.raises(ValueError, match=r"steps: expected 3, the run length in the 'cgan' recipe's config"):
        Trainer(CGANRecipe(train, CGANConfig(steps=3, **TINY_CGAN), device="cpu"), tmp_path / "d", 4)
    with pytest.raises(ValueError, match=r"steps: expected an int >= 1, found 0"):
        CGANConfig(steps=0).validate()


# ------------------------------------------------------------------------------------ value range, ranks
def test_translate_refuses_zero_one_input_unless_stated(tmp_path, folders, capsys):
    a, b = domains()
    result = Trainer(CycleGANRecipe(a, b, cyclegan_config(), device="cpu"), tmp_path / "run", progress=False).fit()
    model = TranslatorModel.from_pretrained(result.model_dir)
    x = a.images
    want = model.translate(x)
    with pytest.raises(ValueError, match=r"images: values look like \[0, 1\] data .* synthaug images are float in "
                                         r"\[-1, 1\]; convert \[0, 1\] images with x \* 2 - 1 .*value_range=\(0, 1\)"):
        model.translate((x + 1) / 2)
    assert torch.allclose(model.translate((x + 1) / 2, value_range=(0, 1)), (want + 1) / 2, atol=1e-6)
    bright = torch.full_like(x, 0.5)  # model data without a dark pixel: taken once stated
    assert model.translate(bright, value_range=(-1, 1)).shape == x.shape
    with pytest.raises(ValueError, match=r"images: expected float pixels in \[-1, 1\], found range"):
        model.translate(x * 2, value_range=(-1, 1))
    kept, _, _ = model.translate_labelled((x + 1) / 2, a.labels, classifier=None, value_range=(0, 1), progress=False)
    assert torch.allclose(kept, (want + 1) / 2, atol=1e-6)
    # the command line reads files into [-1, 1] itself: a folder of bright images is translated, not refused
    _write(tmp_path / "bright", np.full((2, SIZE, SIZE, 1), 0.9))
    assert main(["translate", str(result.model_dir), "--in", str(tmp_path / "bright"), "--out",
                 str(tmp_path / "o")]) == 0
    assert len(list((tmp_path / "o").glob("*.png"))) == 2


@pytest.mark.slow
def test_under_torchrun_only_rank_0_reports(tmp_path):
    from tests.test_distributed import torchrun

    out = torchrun("-m", "synthaug.cli", "train", "cgan", "--data", "breastmnist", "--n-per-class", "8",
                   "--out", tmp_path / "ddp", "--steps", "2", "--batch-size", "8", "--device", "cpu",
                   "--g-kwargs", json.dumps(TINY_CGAN["g_kwargs"]), "--d-kwargs", json.dumps(TINY_CGAN["d_kwargs"]),
                   "--no-progress")
    assert out.count("breastmnist") == 1, out  # the data summary, once
    assert out.count("trained 2 steps") == 1 and "model: None" not in out, out


# ------------------------------------------------------------------------------------------- SYNTHAUG_QUICK
def test_synthaug_quick_caps_every_step_budget(tmp_path, monkeypatch):
    from synthaug.eval import train_classifier
    from synthaug.utils import quick_steps

    import synthaug.utils

    assert quick_steps(1500) == 1500  # off unless set
    monkeypatch.setenv("SYNTHAUG_QUICK", "2")
    monkeypatch.setattr(synthaug.utils, "_QUICK_WARNED", set())  # warned once per process: not yet in this test
    with pytest.warns(UserWarning, match="SYNTHAUG_QUICK=2: every step budget is capped at 2 steps"):
        assert quick_steps(1501) == 2
    assert quick_steps(1) == 1 and quick_steps(500, minimum=6) == 6
    train = load_breastmnist("train", n_per_class=8)
    result = Trainer(CGANRecipe(train, CGANConfig(steps=1500, **TINY_CGAN), device="cpu"), tmp_path / "c",
                     progress=False).fit()
    assert result.step == 2 and result.model_dir.is_dir()
    _, info = train_classifier(train, load_breastmnist("val"), max_steps=2000, width=4)
    assert info["steps_run"] == 2 and info["max_steps"] == 2
    # a progressive schedule shrinks with it, and the run covers the shrunk schedule: 7 -> 14 -> 28 px
    grown = CGANRecipe(train, CGANConfig(generator="style", progressive={}, steps=2000,
                                         g_kwargs={"base_channels": 4, "max_channels": 8, "z_dim": 8, "w_dim": 8,
                                                   "mapping_layers": 1, "embed_dim": 4},
                                         d_kwargs=TINY_CGAN["d_kwargs"], batch_size=8), device="cpu")
    assert grown.progressive.steps_to_full == 8
    assert Trainer(grown, tmp_path / "p", progress=False).fit().step == 8
    monkeypatch.setenv("SYNTHAUG_QUICK", "fast")
    with pytest.raises(ValueError, match="SYNTHAUG_QUICK: expected a positive number of steps .*found 'fast'"):
        quick_steps(10)
    monkeypatch.setenv("SYNTHAUG_QUICK", "0")
    assert quick_steps(1500) == 1500


def test_translate_labels_shows_progress_and_takes_a_stratified_subset(tmp_path, folders, capsys):
    a, b = domains()
    result = Trainer(CycleGANRecipe(a, b, cyclegan_config(), device="cpu"), tmp_path / "run", progress=False).fit()
    assert main(["translate", str(result.model_dir), "--in", str(folders / "A"), "--labels", "--classifier", "none",
                 "--n-per-class", "3", "--out", str(tmp_path / "T")]) == 0
    captured = capsys.readouterr()
    report = json.loads((tmp_path / "T" / "report.json").read_text())
    assert report["checked"] == 6 and {c: r["checked"] for c, r in report["per_class"].items()} == \
        {"left": 3, "right": 3}
    assert "translate A2B" in captured.err  # the progress bar
    assert main(["translate", str(result.model_dir), "--in", str(folders / "A"), "--labels", "--classifier", "none",
                 "--fraction", "0.5", "--no-progress", "--out", str(tmp_path / "T2")]) == 0
    assert json.loads((tmp_path / "T2" / "report.json").read_text())["checked"] == 8
    assert capsys.readouterr().err == ""
    assert main(["translate", str(result.model_dir), "--in", str(folders / "B"), "--n-per-class", "3",
                 "--out", str(tmp_path / "T3")]) == 2
    assert "--fraction / --n-per-class: a stratified subset of a labelled set needs --labels" in \
        capsys.readouterr().err
