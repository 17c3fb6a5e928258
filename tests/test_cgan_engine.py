"""The training engine through the cGAN recipe: logging, resume equivalence, NaN rollback, model files."""

import contextlib
import json
import math
import os
import pickle

import numpy as np
import pytest
import torch

from synthaug.data import from_arrays
from synthaug.io import read_model_config
from synthaug.models import GeneratorModel, TranslatorModel, load_model
from synthaug.train import CGANConfig, CGANRecipe, Trainer, TrainingDivergedError, read_metrics

TINY_G = {"base_channels": 8, "max_channels": 16, "z_dim": 8, "embed_dim": 4}
TINY_D = {"base_channels": 8, "max_channels": 16}


def toy_data(n=48, size=16, channels=1):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    imgs = rng.uniform(0.0, 0.4, size=(n, size, size, channels)).astype(np.float32)
    imgs[labels == 1] += 0.5
    return from_arrays(imgs, labels, class_names=["dark", "bright"])


def make_recipe(seed=0, **kw):
    cfg = CGANConfig(g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), batch_size=8, **kw)
    return CGANRecipe(toy_data(), cfg, device="cpu", seed=seed)


def run(tmp_path, name, steps, seed=0, **trainer_kw):
    kw = dict(log_every=1, sample_every=1000, ckpt_every=4, progress=False)
    kw.update(trainer_kw)
    return Trainer(make_recipe(seed), tmp_path / name, steps, **kw)


def test_training_writes_log_grid_checkpoint_and_model(tmp_path):
    result = run(tmp_path, "r", 6, sample_every=3).fit()
    assert result.step == 6 and not result.interrupted
    rows = read_metrics(result.metrics_path)
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)
    assert (tmp_path / "r/samples/step_0000003.png").is_file()
    assert (tmp_path / "r/samples/step_0000006.png").is_file()
    assert json.loads((tmp_path / "r/checkpoints/latest.json").read_text())["step"] == 6
    assert len(list((tmp_path / "r/checkpoints").glob("ckpt-*.pt"))) <= 2
    cfg = read_model_config(result.model_dir)
    assert cfg["kind"] == "cgan" and cfg["num_classes"] == 2 and cfg["class_names"] == ["dark", "bright"]


def test_same_seed_same_losses_and_different_seed_differs(tmp_path, strip):
    a = read_metrics(run(tmp_path, "a", 3, seed=1).fit().metrics_path)
    b = read_metrics(run(tmp_path, "b", 3, seed=1).fit().metrics_path)
    c = read_metrics(run(tmp_path, "c", 3, seed=2).fit().metrics_path)
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_killed_run_resumes_to_identical_losses(tmp_path, strip, kill_at):
    full = read_metrics(run(tmp_path, "full", 10).fit().metrics_path)
    kill_at(run(tmp_path, "killed", 10), 6)  # killed in its 7th step
    resumed = run(tmp_path, "killed", 10).fit()  # fresh process state: new recipe, new trainer
    assert resumed.step == 10
    got = read_metrics(resumed.metrics_path)
    assert strip(got) == strip(full)  # bit-exact on CPU, including steps replayed after the checkpoint at 4


def test_nan_loss_rolls_back_once_then_stops(tmp_path):
    trainer = run(tmp_path, "nan", 8)
    original = trainer.recipe.train_step
    calls = {"n": 0}

    def nan_once(step):
        out = original(step)
        if step == 5 and calls["n"] == 0:
            calls["n"] += 1
            out["d_loss"] = float("nan")
        return out

    trainer.recipe.train_step = nan_once
    lr_before = trainer.recipe.optimizers["G"].param_groups[0]["lr"]
    result = trainer.fit()
    assert result.step == 8 and result.rollbacks == 1
    assert trainer.recipe.optimizers["G"].param_groups[0]["lr"] == pytest.approx(lr_before * 0.1)
    assert all(math.isfinite(r["d_loss"]) for r in read_metrics(result.metrics_path))

    trainer = run(tmp_path, "nan2", 8)
    original2 = trainer.recipe.train_step

    def always_nan_after_5(step):
        out = original2(step)
        if step >= 5:
            out["g_loss"] = float("inf")
        return out

    trainer.recipe.train_step = always_nan_after_5
    with pytest.raises(TrainingDivergedError, match="non-finite loss"):
        trainer.fit()
    latest = trainer.latest_checkpoint()
    assert latest.name == "ckpt-0000004.pt"  # the last good one, nothing half-written after it
    Trainer(make_recipe(), tmp_path / "nan2", 8, progress=False).load_checkpoint(latest)


def test_resume_refuses_other_config_and_other_recipe(tmp_path):
    run(tmp_path, "r", 4).fit()
    other = CGANRecipe(toy_data(), CGANConfig(g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), batch_size=8,
                                              loss="lsgan"), device="cpu")
    with pytest.raises(ValueError, match="different configuration.*loss"):
        Trainer(other, tmp_path / "r", 8, progress=False).fit()
    recipe = make_recipe()
    recipe.name = "cyclegan"
    with pytest.raises(ValueError, match="expected a 'cyclegan' checkpoint, found one of recipe 'cgan'"):
        Trainer(recipe, tmp_path / "r", 8, progress=False).fit()


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "lsgan", "wgan"])
def test_every_loss_and_stabiliser_trains(tmp_path, loss):
    kw = {"loss": loss, "n_critic": 2, "grad_clip": 1.0, "lr_d": 4e-4, "lr_g": 1e-4, "ada": True}
    if loss in ("minimax", "nonsaturating"):
        kw["label_smoothing"] = 0.1
    if loss == "lsgan":
        kw["r1_gamma"] = 1.0
    cfg = CGANConfig(g_kwargs=dict(TINY_G), d_kwargs={**TINY_D, "ac_head": True}, batch_size=8, ac_weight=0.5, **kw)
    recipe = CGANRecipe(toy_data(), cfg, device="cpu")
    result = Trainer(recipe, tmp_path / loss, 3, log_every=1, progress=False).fit()
    assert all(math.isfinite(v) for r in read_metrics(result.metrics_path) for v in r.values())


def test_style_generator_trains_and_samples(tmp_path):
    g = {"base_channels": 8, "max_channels": 16, "z_dim": 8, "w_dim": 16, "mapping_layers": 2, "embed_dim": 4}
    cfg = CGANConfig(generator="style", g_kwargs=g, d_kwargs=dict(TINY_D), batch_size=8)
    result = Trainer(CGANRecipe(toy_data(), cfg, device="cpu"), tmp_path / "s", 3, progress=False).fit()
    model = GeneratorModel.from_pretrained(result.model_dir)
    imgs, labels = model.sample(6, truncation=0.5, seed=0)
    assert imgs.shape == (6, 1, 16, 16)
    torch.manual_seed(123)  # the global RNG must not matter: same seed, same images (noise is fixed)
    again, _ = model.sample(6, truncation=0.5, seed=0)
    assert torch.equal(imgs, again)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    Trainer(make_recipe(), out / "run", 3, progress=False).fit()
    return out / "run" / "model"


def test_sample_shapes_ranges_labels_and_determinism(trained_model):
    model = GeneratorModel.from_pretrained(trained_model)
    model.check_compatible(image_size=16, channels=1, num_classes=2)
    imgs, labels = model.sample(5, seed=3)
    assert imgs.shape == (5, 1, 16, 16) and imgs.dtype == torch.float32
    assert imgs.min() >= -1 and imgs.max() <= 1
    assert labels.tolist() == [0, 1, 0, 1, 0]
    again, _ = model.sample(5, seed=3)
    assert torch.equal(imgs, again)
    other, _ = model.sample(5, seed=4)
    assert not torch.equal(imgs, other)
    u8, _ = model.sample(4, labels=1, seed=0, output="uint8")
    assert u8.dtype == np.uint8 and u8.shape == (4, 16, 16, 1)
    with pytest.raises(ValueError, match=r"class indices in \[0, 1\], found range \[0, 2\]"):
        model.sample(2, labels=[0, 2])
    with pytest.raises(ValueError, match="expected 3 labels"):
        model.sample(3, labels=[0, 1])


def test_from_pretrained_errors(trained_model, tmp_path):
    model = GeneratorModel.from_pretrained(trained_model)
    with pytest.raises(ValueError, match=r"expected image_size=28 \(from the data\), found image_size=16"):
        model.check_compatible(image_size=28)
    with pytest.raises(ValueError, match=r"expected channels=3 \(from the data\), found channels=1"):
        model.check_compatible(channels=3)
    with pytest.raises(TypeError, match="image_size"):  # loading only loads: no argument that looks like a setting
        GeneratorModel.from_pretrained(trained_model, image_size=28)
    with pytest.raises(ValueError, match="expected a translator"):
        TranslatorModel.from_pretrained(trained_model)
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "weights.bin").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a synthaug model directory"):
        load_model(tmp_path / "notamodel")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing")

    import shutil

    broken = tmp_path / "truncated"
    shutil.copytree(trained_model, broken)
    data = (broken / "generator.safetensors").read_bytes()
    (broken / "generator.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        GeneratorModel.from_pretrained(broken)

    wrong = tmp_path / "wrongarch"
    shutil.copytree(trained_model, wrong)
    cfg = json.loads((wrong / "config.json").read_text())
    cfg["nets"]["generator"]["kwargs"]["base_channels"] = 16
    (wrong / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not fit the architecture"):
        GeneratorModel.from_pretrained(wrong)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/synthaug_pwned_marker",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # the crafted file uses protocol 4 on purpose
def test_pickle_payload_checkpoint_is_refused_and_never_runs(tmp_path):
    import os

    marker = "/tmp/synthaug_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    trainer = run(tmp_path, "p", 4)
    (tmp_path / "p" / "checkpoints").mkdir(parents=True)
    with open(tmp_path / "p" / "checkpoints" / "ckpt-0000004.pt", "wb") as f:
        pickle.dump({"format": "synthaug-checkpoint", "x": _Payload()}, f)
    (tmp_path / "p" / "checkpoints" / "latest.json").write_text('{"file": "ckpt-0000004.pt", "step": 4}')
    with pytest.raises(ValueError, match="refuses|corrupt"):
        trainer.fit()
    assert not os.path.exists(marker)


def test_cli_train_and_sample(tmp_path):
    from synthaug.cli import main

    out = tmp_path / "cli"
    rc = main(["train", "cgan", "--data", "breastmnist", "--n-per-class", "8", "--out", str(out), "--steps", "2",
               "--batch-size", "4", "--no-progress", "--g-kwargs", json.dumps(TINY_G),
               "--d-kwargs", json.dumps(TINY_D)])
    assert rc == 0
    rc = main(["sample", str(out / "model"), "--n", "4", "--out", str(tmp_path / "samples")])
    assert rc == 0
    assert len(list((tmp_path / "samples").rglob("*.png"))) == 4
    assert main(["sample", str(tmp_path), "--n", "1", "--out", str(tmp_path / "x")]) == 2


def test_python_m_synthaug_is_the_cli(trained_model, capsys):
    import subprocess
    import sys

    from synthaug.cli import main

    run = subprocess.run([sys.executable, "-m", "synthaug", "info", str(trained_model)], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert main(["info", str(trained_model)]) == 0
    assert run.stdout == capsys.readouterr().out
    bad = subprocess.run([sys.executable, "-m", "synthaug", "info", str(trained_model / "missing")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("synthaug: error:")


def test_ema_warms_up_so_short_runs_export_the_trained_generator():
    recipe = make_recipe(ema_decay=0.999)
    for step in range(30):
        recipe.train_step(step)
    g = dict(recipe.G.named_parameters())
    e = dict(recipe.ema.module.named_parameters())
    init = make_recipe(ema_decay=0.999)  # same seed: the random initialisation
    i = dict(init.G.named_parameters())
    dist_trained = sum((e[k] - g[k]).norm() for k in g)
    dist_init = sum((e[k] - i[k]).norm() for k in g)
    assert dist_trained < dist_init  # with a fixed 0.999 the EMA would still sit next to the initialisation


def test_frozen_discriminator_in_the_generator_step_changes_nothing_but_the_cost(weights_hash, monkeypatch):
    """Recipe.frozen drops the discriminator's weight gradients from the G step: the same weights, bit for bit,
    as without it; inside the block its parameters are frozen, after it (even after an error) they are not."""
    def train(frozen_on):
        if not frozen_on:
            monkeypatch.setattr(CGANRecipe, "frozen", lambda self, *names: contextlib.nullcontext())
        r = make_recipe(seed=3)
        for step in range(4):
            r.train_step(step)
        monkeypatch.undo()
        return r, weights_hash(r.nets)

    r, with_frozen = train(True)
    assert with_frozen == train(False)[1]
    with pytest.raises(RuntimeError, match="inside"), r.frozen("D"):
        assert not any(p.requires_grad for p in r.D.parameters())
        raise RuntimeError("inside")
    assert all(p.requires_grad for p in r.D.parameters()) and all(p.requires_grad for p in r.G.parameters())


def test_keep_freed_memory_applies_once_and_yields_to_the_users_allocator_settings():
    import platform
    import subprocess
    import sys

    code = "from synthaug.utils import keep_freed_memory as k; print(k(), k())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    plain = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    glibc_linux = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert plain.stdout.split() == ([str(glibc_linux)] * 2)
    users = subprocess.run([sys.executable, "-c", code], env={**env, "MALLOC_TRIM_THRESHOLD_": "131072"},
                           capture_output=True, text=True, check=True)
    assert users.stdout.split() == ["False", "False"]
