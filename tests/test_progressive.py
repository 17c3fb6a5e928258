"""Progressive growing: the schedule, the nets' stages, a growing cGAN run (resume, export) and its errors."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthaug.data import from_arrays
from synthaug.io import read_model_config
from synthaug.models import GeneratorModel
from synthaug.nets import NETS, create_net
from synthaug.nets.layers import fade_in
from synthaug.train import CGANConfig, CGANRecipe, Trainer, read_metrics
from synthaug.train.progressive import PROGRESSIVE_DEFAULTS, ProgressiveSchedule, Stage, check_progressive_options

TINY = {"dcgan": dict(base_channels=4, max_channels=16, z_dim=8, embed_dim=4),
        "style": dict(base_channels=4, max_channels=16, z_dim=8, w_dim=16, mapping_layers=2, embed_dim=4)}
TINY_D = dict(base_channels=4, max_channels=16)
GROW = {"start": 8, "fade_steps": 2, "stable_steps": 1}  # 32 px: 8 | fade 16 | 16 | fade 32 -> full at step 6


def toy_data(n=32, size=32, channels=1):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    imgs = rng.uniform(0.0, 0.4, size=(n, size, size, channels)).astype(np.float32)
    imgs[labels == 1] += 0.5
    return from_arrays(imgs, labels, class_names=["dark", "bright"])


def make_recipe(arch="dcgan", seed=0, size=32, progressive=GROW, data=None, **kw):
    cfg = CGANConfig(generator=arch, g_kwargs=dict(TINY[arch]), d_kwargs=dict(TINY_D), batch_size=8,
                     progressive=None if progressive is None else dict(progressive), **kw)
    return CGANRecipe(data or toy_data(size=size), cfg, device="cpu", seed=seed)


def pair(arch, size=32, **kw):
    """The same net without and with the progressive layers, from the same seed."""
    nets = []
    for progressive in (False, True):
        torch.manual_seed(0)
        nets.append(create_net(arch, num_classes=2, image_size=size, progressive=progressive, **kw).eval())
    return nets


# --------------------------------------------------------------------------------------------- the schedule
def test_schedule_stages_are_monotone_and_end_at_full_resolution():
    s = ProgressiveSchedule(64, start=8, fade_steps=4, stable_steps=3)
    assert s.resolutions == [8, 16, 32, 64] and s.steps_to_full == 3 * (4 + 3)
    got = [s.stage(i) for i in range(30)]
    assert got[:11] == [Stage(8, 1.0)] * 3 + [Stage(16, a) for a in (0.25, 0.5, 0.75, 1.0)] + [Stage(16, 1.0)] * 3 \
        + [Stage(32, 0.25)]
    assert got[20] == Stage(64, 1.0) and got[19] == Stage(64, 0.75)  # the last fade step has alpha 1
    assert all(g == Stage(64, 1.0) for g in got[20:]) and s.stage(10**6) == Stage(64, 1.0)
    progress = [math.log2(g.resolution) - 1 + g.alpha for g in got]  # fades count between their resolutions
    assert all(b >= a for a, b in zip(progress, progress[1:]))
    assert s.stage(0).kwargs == {"resolution": 8, "alpha": 1.0}
    s.steps_done = 20
    assert not s.finished
    s.steps_done = 21
    assert s.finished
    no_stable = ProgressiveSchedule(16, start=4, fade_steps=1, stable_steps=0)
    assert [no_stable.stage(i) for i in range(3)] == [Stage(8, 1.0), Stage(16, 1.0), Stage(16, 1.0)]
    assert ProgressiveSchedule(28, start=7).resolutions == [7, 14, 28]


def test_real_images_are_pooled_and_faded_like_the_generator():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    s = ProgressiveSchedule(32, start=8, fade_steps=4, stable_steps=1)
    assert torch.equal(s.real_images(x, Stage(8, 1.0)), F.avg_pool2d(x, 4))
    x16 = F.avg_pool2d(x, 2)
    assert torch.equal(s.real_images(x, Stage(16, 0.25)), 0.75 * F.interpolate(F.avg_pool2d(x16, 2), scale_factor=2)
                       + 0.25 * x16)
    assert torch.equal(s.real_images(x, Stage(32, 1.0)), x)
    assert s.upsample(torch.ones(1, 3, 8, 8)).shape == (1, 3, 32, 32)


def test_bad_settings_name_what_was_expected_and_found():
    with pytest.raises(ValueError, match=r"progressive\['start'\]: expected one of \[4, 8, 16, 32\] .*found 12 "
                                         r"\(not one of .*power of two"):
        ProgressiveSchedule(64, start=12)
    with pytest.raises(ValueError, match=r"expected one of \[4, 8, 16, 32\] .*found 128 \(larger than the image "
                                         r"size 64\)"):
        ProgressiveSchedule(64, start=128)
    with pytest.raises(ValueError, match=r"found 64 \(the image size itself"):
        ProgressiveSchedule(64, start=64)
    with pytest.raises(ValueError, match=r"expected one of \[7, 14\] .*found 8"):
        ProgressiveSchedule(28, start=8)
    with pytest.raises(ValueError, match=r"progressive\['fade_steps'\]: expected an int >= 1, found 0"):
        CGANConfig(progressive={"fade_steps": 0}).validate()
    with pytest.raises(ValueError, match=r"progressive\['stable_steps'\]: expected an int >= 0, found 2.5"):
        CGANConfig(progressive={"stable_steps": 2.5}).validate()
    with pytest.raises(ValueError, match=r"expected keys among \['fade_steps', 'stable_steps', 'start'\], found "
                                         r"unknown \['fade'\]"):
        CGANConfig(progressive={"fade": 3}).validate()
    with pytest.raises(TypeError, match="progressive: expected None .* found bool"):
        CGANConfig(progressive=True).validate()
    with pytest.raises(ValueError, match=r"progressive\['start'\]: expected one of \[4, 8\] .*found 16"):
        make_recipe(size=16, progressive={"start": 16})
    with pytest.raises(ValueError, match=r"steps: expected at least 6, the steps the progressive schedule .* found 5"):
        Trainer(make_recipe(), "unused", 5, progress=False)


def test_a_generator_that_cannot_grow_is_refused(monkeypatch):
    from synthaug.nets import register

    for registry in NETS.values():
        monkeypatch.setattr(registry, "_classes", dict(registry._classes))

    @register("generator", "flat_test_gen")
    class Flat(nn.Module):
        def __init__(self, num_classes, image_size, channels=1, z_dim=8):
            super().__init__()
            self.num_classes, self.image_size, self.channels, self.z_dim = num_classes, image_size, channels, z_dim

        def forward(self, z, y, truncation=1.0):
            return z

    with pytest.raises(ValueError, match=r"progressive: expected a generator that can grow progressively, one of "
                                         r"\['dcgan', 'style'.*\] .*found 'flat_test_gen': __init__ must accept "
                                         r"\['progressive'\]; forward must accept \['resolution', 'alpha'\]"):
        CGANRecipe(toy_data(), CGANConfig(generator="flat_test_gen", progressive={}), device="cpu")


# ----------------------------------------------------------------------------------------------- the nets
@pytest.mark.parametrize("arch", ["dcgan", "style"])
def test_generator_stages(arch):
    plain, grown = pair(arch, **TINY[arch])
    if arch == "style":
        plain.noise_mode = grown.noise_mode = "const"
    assert set(plain.state_dict()) < set(grown.state_dict())
    assert all(k.startswith("to_img_low.") for k in set(grown.state_dict()) - set(plain.state_dict()))
    assert all(torch.equal(v, grown.state_dict()[k]) for k, v in plain.state_dict().items())
    z, y = torch.randn(5, 8), torch.tensor([0, 1, 1, 0, 1])
    full = plain(z, y)
    assert torch.equal(grown(z, y), full) and torch.equal(grown(z, y, resolution=32, alpha=1.0), full)
    assert grown.resolutions == [4, 8, 16, 32]
    for r in grown.resolutions:
        assert grown(z, y, resolution=r).shape == (5, 1, r, r)
        if r > 4:
            low = grown(z, y, resolution=r // 2)
            assert torch.equal(grown(z, y, resolution=r, alpha=0.0), F.interpolate(low, scale_factor=2))
            mid = grown(z, y, resolution=r, alpha=0.3)
            assert torch.allclose(mid, 0.7 * F.interpolate(low, scale_factor=2) + 0.3 * grown(z, y, resolution=r))
            assert mid.min() >= -1 and mid.max() <= 1
    with pytest.raises(ValueError, match=r"a net built without progressive=True runs at its full resolution 32 with "
                                         r"alpha=1 only, found resolution=16, alpha=1"):
        plain(z, y, resolution=16)
    with pytest.raises(ValueError, match=r"resolution: expected one of \[4, 8, 16, 32\] or None \(= 32\), found 12"):
        grown(z, y, resolution=12)
    with pytest.raises(ValueError, match=r"alpha: expected a float in \[0, 1\], found 1.5"):
        grown(z, y, resolution=16, alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha: expected 1 at the lowest resolution 4"):
        grown(z, y, resolution=4, alpha=0.5)


def test_discriminator_stages():
    plain, grown = pair("projection", **TINY_D)
    assert all(k.startswith("from_img_low.") for k in set(grown.state_dict()) - set(plain.state_dict()))
    x, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.tensor([0, 1, 0, 1])
    assert torch.equal(grown(x, y), plain(x, y)) and torch.equal(grown(x, y, resolution=32), plain(x, y))
    assert torch.equal(grown.forward_parts(x, y)[0], plain.forward_parts(x, y)[0])
    for r in (8, 16, 32):
        xr = F.avg_pool2d(x, 32 // r)
        assert grown(xr, y, resolution=r).shape == (4,)
        lower = grown(F.avg_pool2d(xr, 2), y, resolution=r // 2)
        assert torch.equal(grown(xr, y, resolution=r, alpha=0.0), lower)
        uncond, proj, _ = grown.forward_parts(xr, y, resolution=r, alpha=0.5)
        assert torch.allclose(uncond + proj, grown(xr, y, resolution=r, alpha=0.5))
    with pytest.raises(ValueError, match=r"x: expected spatial size 16x16 .*found 32x32"):
        grown(x, y, resolution=16)


def test_fade_in_is_a_convex_blend():
    low, high = torch.rand(1, 1, 2, 2), torch.rand(1, 1, 4, 4)
    assert torch.equal(fade_in(low, high, 0.0), F.interpolate(low, scale_factor=2))
    assert torch.equal(fade_in(low, high, 1.0), high)


# ------------------------------------------------------------------------------------------- training runs
@pytest.mark.parametrize("arch", ["dcgan", "style"])
def test_progressive_run_trains_every_stage_and_exports_a_plain_full_size_model(tmp_path, arch):
    recipe = make_recipe(arch, r1_gamma=1.0, ada=True)
    shapes = {name: {k: v.shape for k, v in net.state_dict().items()} for name, net in recipe.nets.items()}
    seen = []
    original = recipe.train_step

    def watch(step):
        out = original(step)
        seen.append((out["resolution"], out["alpha"], recipe.sample_grid()[0].shape))
        for name, net in recipe.nets.items():  # nothing is ever resized or replaced
            assert {k: v.shape for k, v in net.state_dict().items()} == shapes[name]
        return out

    recipe.train_step = watch
    result = Trainer(recipe, tmp_path / arch, 8, log_every=1, sample_every=4, progress=False).fit()
    assert [s[:2] for s in seen] == [(8, 1.0), (16, 0.5), (16, 1.0), (16, 1.0), (32, 0.5), (32, 1.0), (32, 1.0),
                                     (32, 1.0)]
    assert all(s[2] == (16, 1, 32, 32) for s in seen)  # grids are always at full size
    rows = read_metrics(result.metrics_path)
    assert all(math.isfinite(v) for r in rows for v in r.values())
    assert rows[0]["aug_p"] >= 0 and (tmp_path / arch / "samples" / "step_0000004.png").is_file()
    cfg = read_model_config(result.model_dir)
    assert cfg["train"]["progressive"] == GROW
    assert cfg["nets"]["generator"]["kwargs"]["progressive"] is False
    model = GeneratorModel.from_pretrained(result.model_dir)
    assert not any("to_img_low" in k for k in model.generator.state_dict())
    imgs, _ = model.sample(4, seed=0)
    assert imgs.shape == (4, 1, 32, 32) and imgs.min() >= -1 and imgs.max() <= 1
    ema = recipe.ema.module.eval()  # the exported net is the EMA generator at full resolution
    if arch == "style":
        ema.noise_mode = "const"
    z, y = torch.randn(3, 8), torch.tensor([0, 1, 0])
    # the same weights; training runs them channels_last on CPU, the export is contiguous: rounding may differ (up to
    # 1.1e-6 on outputs in [-1, 1] with AVX2 kernels)
    torch.testing.assert_close(model.generator(z, y), ema(z, y), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kw", [{"loss": "wgan", "n_critic": 2}, {"semi": True}, {"ac": True}],
                         ids=["wgan_gp", "semi_supervised", "ac_gan"])
def test_progressive_with_other_training_paths(tmp_path, kw):
    data = toy_data(size=16)
    extra, unlabelled = {}, None
    if kw.get("semi"):
        unlabelled = toy_data(n=16, size=16).images
    elif kw.get("ac"):
        extra = {"ac_weight": 0.5}
    else:
        extra = dict(kw)
    cfg = CGANConfig(g_kwargs=dict(TINY["dcgan"]), d_kwargs={**TINY_D, "ac_head": bool(kw.get("ac"))}, batch_size=8,
                     progressive={"start": 4, "fade_steps": 1, "stable_steps": 1}, **extra)
    recipe = CGANRecipe(data, cfg, device="cpu", unlabelled=unlabelled)
    result = Trainer(recipe, tmp_path / "r", 5, log_every=1, progress=False).fit()
    rows = read_metrics(result.metrics_path)
    assert [r["resolution"] for r in rows] == [4, 8, 8, 16, 16]
    assert all(math.isfinite(v) for r in rows for v in r.values())


def test_resume_across_a_resolution_change_is_exact(tmp_path, strip, kill_at, weights_hash):
    def trainer(name):
        return Trainer(make_recipe("style"), tmp_path / name, 9, log_every=1, ckpt_every=2, sample_every=100,
                       progress=False)

    full = trainer("full")
    rows = read_metrics(full.fit().metrics_path)
    kill_at(trainer("killed"), 5)  # checkpoint at step 4 (trained at <= 16 px), killed in the 32 px fade
    again = trainer("killed")
    resumed = again.fit()
    assert [r["resolution"] for r in rows[3:6]] == [16, 32, 32]
    assert strip(read_metrics(resumed.metrics_path)) == strip(rows)
    assert weights_hash(again.recipe.nets) == weights_hash(full.recipe.nets)
    assert again.recipe.progressive.steps_done == 9


def test_off_by_default_and_config_unchanged(tmp_path):
    assert CGANConfig().progressive is None and PROGRESSIVE_DEFAULTS["start"] is None  # picked from the image size
    plain = make_recipe(progressive=None)
    assert "progressive" not in plain.config_dict() and "progressive" not in plain.extras
    assert not any("_low" in k for net in plain.nets.values() for k in net.state_dict())
    grown = make_recipe(progressive={})
    assert grown.config_dict()["progressive"] == {**PROGRESSIVE_DEFAULTS, "start": 8}  # as recorded before: 32 px
    old_kwargs = dict(plain.G.spec["kwargs"])
    del old_kwargs["progressive"]  # config.json written before the option existed
    assert create_net("dcgan", **json.loads(json.dumps(old_kwargs))).progressive is False


def test_mid_schedule_export_is_refused():
    recipe = make_recipe()
    for step in range(3):
        recipe.train_step(step)
    with pytest.raises(ValueError, match=r"progressive: expected a finished schedule to export \(6 steps, to 32 px "
                                         r"fully faded in\), found 3 steps trained"):
        recipe.save_pretrained("unused")


def test_cli_trains_progressively(tmp_path):
    from synthaug.cli import main

    out = tmp_path / "cli"
    args = ["train", "cgan", "--data", "breastmnist", "--n-per-class", "4", "--out", str(out), "--batch-size", "4",
            "--no-progress", "--g-kwargs", json.dumps(TINY["dcgan"]), "--d-kwargs", json.dumps(TINY_D),
            "--log-every", "1", "--progressive", json.dumps({"start": 7, "fade_steps": 1, "stable_steps": 1})]
    assert main(args + ["--steps", "4"]) == 0
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["resolution"] for r in rows] == [7, 14, 14, 28]
    assert read_model_config(out / "model")["train"]["progressive"] == {"start": 7, "fade_steps": 1,
                                                                        "stable_steps": 1}
    assert main(args[:-2] + ["--progressive", "[7]", "--steps", "4", "--out", str(tmp_path / "bad")]) == 2


def test_default_start_fits_the_image_size():
    """Issue 32: ``progressive={}`` started at 8 px, which 28 px images (7, 14, 28) cannot grow from."""
    from synthaug.train.progressive import default_start

    assert {size: default_start(size) for size in (8, 16, 28, 32, 64, 128, 256)} == \
        {8: 4, 16: 8, 28: 7, 32: 8, 64: 8, 128: 8, 256: 8}
    assert ProgressiveSchedule(28).resolutions == [7, 14, 28] and ProgressiveSchedule(64).resolutions == [8, 16, 32, 64]
    with pytest.raises(ValueError, match="progressive: expected images larger than the nets' smallest resolution"):
        ProgressiveSchedule(4)
    assert check_progressive_options({}) == PROGRESSIVE_DEFAULTS
    assert check_progressive_options({}, image_size=28)["start"] == 7
    assert check_progressive_options({"start": 14}, image_size=28)["start"] == 14  # a given start is kept


def test_readme_style_progressive_on_breastmnist_28px(tmp_path):
    """The README's ``CGANConfig(generator="style", progressive={})`` on its own 28 px BreastMNIST: grows from 7 px
    (the default schedule takes 2 x (500 + 500) steps); a short schedule of the same shape trains and exports."""
    from synthaug.data import load_breastmnist

    train = load_breastmnist("train", n_per_class=8)
    tiny = dict(g_kwargs=dict(TINY["style"]), d_kwargs=dict(TINY_D), batch_size=8)
    recipe = CGANRecipe(train, CGANConfig(generator="style", progressive={}, **tiny), device="cpu")
    assert recipe.progressive.resolutions == [7, 14, 28] and recipe.progressive.steps_to_full == 2000
    assert recipe.config_dict()["progressive"] == {"start": 7, "fade_steps": 500, "stable_steps": 500}
    short = CGANRecipe(train, CGANConfig(generator="style", progressive={"fade_steps": 1, "stable_steps": 1},
                                         **tiny), device="cpu")
    result = Trainer(short, tmp_path / "run", 4, progress=False, sample_every=2).fit()
    assert read_model_config(result.model_dir)["train"]["progressive"]["start"] == 7
