"""CycleGAN and Pix2Pix recipes on the shared engine, the TranslatorModel API and the translate CLI."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.data import PairedDataset, from_arrays
from synthaug.models import GeneratorModel, TranslatorModel, load_model
from synthaug.train import (CycleGANConfig, CycleGANRecipe, Pix2PixConfig, Pix2PixRecipe, Trainer,
                            read_metrics)

TINY_G = {"ngf": 8, "n_blocks": 2}
TINY_D = {"ndf": 8, "n_layers": 2}


def domains(n=12, size=16, channels=1):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.0, 0.3, size=(n, size, size, channels)).astype(np.float32)
    a[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 0.9  # bright square on dark
    b = 1.0 - a  # the inverted domain
    return from_arrays(a, name="dark"), from_arrays(b[::-1].copy(), name="light")


def cyclegan(steps=6, seed=0, **kw):
    a, b = domains()
    cfg = CycleGANConfig(steps=steps, g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), pool_size=4, **kw)
    return CycleGANRecipe(a, b, cfg, device="cpu", seed=seed, names=("dark", "light"))


def test_cyclegan_cycle_loss_decreases_and_exports(tmp_path):
    result = Trainer(cyclegan(steps=60, lr=1e-3), tmp_path / "cg", 60, log_every=1, sample_every=30,
                     progress=False).fit()
    rows = read_metrics(result.metrics_path)
    first = np.mean([r["cycle"] for r in rows[:5]])
    last = np.mean([r["cycle"] for r in rows[-5:]])
    assert last < 0.6 * first
    assert rows[-1]["lr"] < rows[0]["lr"]  # linear decay in the second half
    assert (tmp_path / "cg/samples/step_0000030.png").is_file()
    model = load_model(result.model_dir)
    assert isinstance(model, TranslatorModel) and model.directions() == ["A2B", "B2A"]
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert model.translate(x).shape == (3, 1, 16, 16)
    big = torch.rand(2, 1, 40, 40) * 2 - 1  # resize policy: back to the input size
    out = model.translate(big, direction="B2A")
    assert out.shape == (2, 1, 40, 40) and out.min() >= -1 and out.max() <= 1
    assert model.translate(big, size_policy="native").shape == (2, 1, 40, 40)
    with pytest.raises(ValueError, match="expected 1 channel"):
        model.translate(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="direction: expected one of"):
        model.translate(x, direction="A2C")
    with pytest.raises(ValueError, match=r"images: expected float pixels in \[-1, 1\], found range \[255, 255\]"):
        model.translate(torch.full((1, 1, 16, 16), 255.0))
    with pytest.raises(ValueError, match="expected a generator"):
        GeneratorModel.from_pretrained(result.model_dir)
    model.check_compatible(image_size=16, channels_a=1, channels_b=1)
    with pytest.raises(ValueError, match=r"translator does not match the data: expected channels_a=3 \(from the "
                                         r"data\), found channels_a=1 in the translator"):
        model.check_compatible(channels_a=3)


def test_cyclegan_resume_is_bit_exact(tmp_path, strip, kill_at):
    full = Trainer(cyclegan(), tmp_path / "full", 6, log_every=1, ckpt_every=3, progress=False).fit()
    kill_at(Trainer(cyclegan(), tmp_path / "cut", 6, log_every=1, ckpt_every=3, progress=False), 4)
    resumed = Trainer(cyclegan(), tmp_path / "cut", 6, log_every=1, ckpt_every=3, progress=False).fit()
    assert strip(read_metrics(resumed.metrics_path)) == strip(read_metrics(full.metrics_path))


def test_pix2pix_l1_decreases(tmp_path):
    a, b = domains()
    pairs = PairedDataset(a.images, -a.images, names=[str(i) for i in range(len(a))])
    cfg = Pix2PixConfig(steps=40, g_kwargs={"ngf": 8}, d_kwargs=dict(TINY_D), lr=1e-3)
    result = Trainer(Pix2PixRecipe(pairs, cfg, device="cpu"), tmp_path / "p2p", 40, log_every=1,
                     progress=False).fit()
    rows = read_metrics(result.metrics_path)
    assert np.mean([r["l1"] for r in rows[-5:]]) < 0.7 * np.mean([r["l1"] for r in rows[:5]])
    model = TranslatorModel.from_pretrained(result.model_dir)
    assert model.directions() == ["A2B"]
    assert model.translate(a.images[:2]).shape == (2, 1, 16, 16)


def test_translation_bad_input(tmp_path):
    a, b = domains()
    cfg = CycleGANConfig(g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D))
    with pytest.raises(ValueError, match="same channel count in A and B.*A=1 and B=3"):
        CycleGANRecipe(a, from_arrays(np.zeros((4, 16, 16, 3), np.float32)), cfg, device="cpu")
    with pytest.raises(ValueError, match="one size"):
        CycleGANRecipe(a, from_arrays(np.zeros((4, 32, 32, 1), np.float32)), cfg, device="cpu")
    tiny_a = from_arrays(np.zeros((4, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="too small"):
        CycleGANRecipe(tiny_a, tiny_a, cfg, device="cpu")
    with pytest.raises(TypeError, match="expected an ImageDataset"):
        CycleGANRecipe([], a, cfg, device="cpu")
    Trainer(cyclegan(steps=2), tmp_path / "cg", 2, progress=False).fit()
    pairs = PairedDataset(a.images, a.images, names=[str(i) for i in range(len(a))])
    p2p = Pix2PixRecipe(pairs, Pix2PixConfig(steps=2, g_kwargs={"ngf": 8}, d_kwargs=dict(TINY_D)), device="cpu")
    with pytest.raises(ValueError, match="expected a 'pix2pix' checkpoint, found one of recipe 'cyclegan'"):
        Trainer(p2p, tmp_path / "cg", 2, progress=False).fit()


def _write_folder(folder, arrays):
    folder.mkdir(parents=True)
    for i, arr in enumerate(arrays):
        Image.fromarray((arr[..., 0] * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


def test_cli_cyclegan_train_and_translate(tmp_path):
    from synthaug.cli import main

    rng = np.random.default_rng(1)
    _write_folder(tmp_path / "A", rng.uniform(0, 0.4, (6, 16, 16, 1)))
    _write_folder(tmp_path / "B", rng.uniform(0.6, 1, (6, 16, 16, 1)))
    out = tmp_path / "run"
    rc = main(["train", "cyclegan", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--size", "16",
               "--channels", "1", "--steps", "2", "--out", str(out), "--no-progress",
               "--g-kwargs", json.dumps(TINY_G), "--d-kwargs", json.dumps(TINY_D)])
    assert rc == 0
    rc = main(["translate", str(out / "model"), "--in", str(tmp_path / "A"), "--out", str(tmp_path / "AB")])
    assert rc == 0
    outs = sorted((tmp_path / "AB").glob("*.png"))
    assert len(outs) == 6 and Image.open(outs[0]).size == (16, 16)
    assert main(["translate", str(out / "model"), "--in", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2
    # another --arch starts from its own defaults, not the ResNet's (the U-Net takes no n_blocks)
    rc = main(["train", "cyclegan", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--size", "16",
               "--channels", "1", "--steps", "1", "--out", str(tmp_path / "unet"), "--no-progress", "--arch", "unet",
               "--g-kwargs", '{"ngf": 4}', "--d-kwargs", json.dumps(TINY_D)])
    assert rc == 0
    cfg = json.loads((tmp_path / "unet" / "model" / "config.json").read_text())
    assert cfg["train"]["g_kwargs"] == {"ngf": 4}
