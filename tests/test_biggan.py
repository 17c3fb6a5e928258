"""The BigGAN-style generator, orthogonal regularisation, and truncated-normal sampling."""

import json
import math

import numpy as np
import pytest
import torch

from synthaug.augment import SyntheticDataset
from synthaug.data import from_arrays
from synthaug.io import read_model_config
from synthaug.losses import orthogonal_regularisation
from synthaug.models import GeneratorModel
from synthaug.nets import create_net, list_generators
from synthaug.nets.biggan import BigGANGenerator, SelfAttention, attention_resolutions
from synthaug.nets.layers import SUPPORTED_SIZES, truncated_normal
from synthaug.train import CGANConfig, CGANRecipe, Trainer, read_metrics

TINY = dict(base_channels=4, max_channels=16, z_dim=12, shared_dim=8)
TINY_D = {"base_channels": 8, "max_channels": 16}


def make_g(**kw):
    return create_net("biggan", **{"num_classes": 3, "image_size": 28, **TINY, **kw})


def toy_data(n=48, size=16):
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    imgs = rng.uniform(0.0, 0.4, size=(n, size, size, 1)).astype(np.float32)
    imgs[labels == 1] += 0.5
    return from_arrays(imgs, labels, class_names=["dark", "bright"])


def make_recipe(seed=0, g_kwargs=None, **kw):
    cfg = CGANConfig(generator="biggan", g_kwargs={**TINY, **(g_kwargs or {})}, d_kwargs=dict(TINY_D),
                     batch_size=8, **kw)
    return CGANRecipe(toy_data(), cfg, device="cpu", seed=seed)


# ------------------------------------------------------------------------------------------------ the net
def test_registered_as_a_generator():
    assert "biggan" in list_generators() and BigGANGenerator.arch_name == "biggan"
    g = make_g()
    assert g.spec["arch"] == "biggan" and g.spec["kwargs"]["attn_res"] == "auto"


@pytest.mark.parametrize("size", SUPPORTED_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_range(size, channels):
    torch.manual_seed(0)
    g = make_g(image_size=size, channels=channels)
    assert (g.num_classes, g.image_size, g.channels, g.z_dim) == (3, size, channels, 12)
    z, y = torch.randn(5, 12) * 3, torch.tensor([0, 1, 2, 0, 1])
    out = g(z, y)
    assert out.shape == (5, channels, size, size) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1 and torch.isfinite(out).all()
    g.eval()
    assert g(z, y, truncation=0.5).shape == out.shape
    # hierarchical latent: one chunk for the input, one per up-block
    assert len(g.chunks) == len(g.blocks) + 1 and sum(g.chunks) == 12 and g.linear.in_features == g.chunks[0]


def test_self_attention_sits_at_its_resolution():
    assert attention_resolutions(28) == [14, 28] and attention_resolutions(64) == [8, 16, 32, 64]
    for size, auto in [(16, 8), (28, 14), (32, 16), (64, 16), (128, 32)]:
        assert make_g(image_size=size).attn_res == auto
    seen = []
    g = make_g(image_size=64, attn_res=32)
    (attn,) = g.attention.values()
    attn.register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    g(torch.randn(2, 12), torch.tensor([0, 1]))
    assert seen == [(2, 8, 32, 32)]  # width 8 at 32 px: base 4 doubled once
    assert len(make_g(attn_res=None).attention) == 0


def test_self_attention_is_global_and_starts_as_identity():
    torch.manual_seed(0)
    att = SelfAttention(16, sn=False)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(att(x), x)  # gamma starts at 0
    with torch.no_grad():
        att.gamma.fill_(1.0)
    x2 = x.clone()
    x2[:, :, 7, 7] += 5.0  # one far corner changes ...
    assert not torch.allclose(att(x)[:, :, 0, 0], att(x2)[:, :, 0, 0])  # ... the opposite corner's output


def test_class_and_every_latent_chunk_condition_the_output():
    torch.manual_seed(0)
    g = make_g().eval()
    z = torch.randn(1, 12).repeat(3, 1)
    out = g(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(out[0], out[1], atol=1e-4) and not torch.allclose(out[1], out[2], atol=1e-4)
    start = 0
    for size in g.chunks:  # each chunk (input layer or one block's BatchNorm) changes the image
        z2 = z[:1].clone()
        z2[:, start:start + size] += 1.0
        assert not torch.allclose(g(z2, torch.tensor([0])), out[:1], atol=1e-4)
        start += size
    flat = make_g(hier=False).eval()
    assert flat.chunks == [12] and flat.linear.in_features == 12


def test_spectral_norm_on_every_conv_and_linear():
    torch.manual_seed(0)
    g = make_g()
    layers = [m for m in g.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(hasattr(m, "parametrizations") for m in layers)
    for _ in range(30):  # power iterations run in training mode
        g(torch.randn(8, 12), torch.randint(0, 3, (8,)))
    sigma = torch.linalg.matrix_norm(g.blocks[0].conv1.weight.detach().flatten(1), ord=2)
    assert sigma == pytest.approx(1.0, abs=0.05)
    plain = make_g(spectral_norm=False)
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


def test_json_round_trip_and_determinism():
    kwargs = json.loads(json.dumps(make_g().spec["kwargs"]))
    torch.manual_seed(7)
    a = create_net("biggan", **kwargs)
    torch.manual_seed(7)
    b = create_net("biggan", **kwargs)
    z, y = torch.randn(4, 12), torch.tensor([0, 1, 2, 0])
    assert torch.equal(a(z, y), b(z, y))  # same seed, same init, same training-mode output
    c = create_net("biggan", **kwargs)
    c.load_state_dict(a.state_dict())
    a.eval(), c.eval()
    assert torch.equal(a(z, y), c(z, y))


def test_bad_arguments_name_expected_and_found():
    with pytest.raises(ValueError, match=r"attn_res: expected one of \[14, 28\] .*image_size 28.*found 20"):
        make_g(attn_res=20)
    with pytest.raises(ValueError, match=r"attn_res: expected one of \[8, 16, 32\].*found '16'"):
        make_g(image_size=32, attn_res="16")
    with pytest.raises(ValueError, match=r"z_dim: expected at least 6 .*image_size 128\), found 4"):
        make_g(image_size=128, z_dim=4)
    with pytest.raises(ValueError, match=r"image_size: expected one of \[16, 28, 32, 64, 128\], found 48"):
        make_g(image_size=48)
    with pytest.raises(TypeError, match="hier: expected a bool"):
        make_g(hier=1)
    g = make_g()
    with pytest.raises(ValueError, match=r"z: expected shape \(N, 12\), found \(2, 8\)"):
        g(torch.randn(2, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"y: expected class indices in \[0, 2\].*found values in \[0, 3\]"):
        g(torch.randn(2, 12), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="truncation: expected a finite float >= 0, found -0.5"):
        g(torch.randn(2, 12), torch.tensor([0, 1]), truncation=-0.5)


# ------------------------------------------------------------------------------ orthogonal regularisation
def _brute_force(w):
    w = w.reshape(w.shape[0], -1)
    gram = w @ w.T
    return (gram * (1 - torch.eye(len(gram)))).pow(2).sum()


def test_orthogonal_regularisation_value():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 6)
    torch.nn.init.orthogonal_(lin.weight)
    with torch.no_grad():
        lin.weight.mul_(torch.arange(1.0, 7.0).unsqueeze(1))  # orthogonal rows of different norms: still zero
    assert orthogonal_regularisation(lin).item() == pytest.approx(0.0, abs=1e-5)
    torch.nn.init.normal_(lin.weight)
    assert orthogonal_regularisation(lin).item() == pytest.approx(_brute_force(lin.weight).item(), rel=1e-5)
    assert orthogonal_regularisation(lin).item() > 1.0
    # more filters than fan-in (the identity path) and a conv; embeddings and biases are left out
    net = torch.nn.Sequential(torch.nn.Linear(3, 10), torch.nn.Conv2d(2, 4, 3), torch.nn.Embedding(5, 7))
    want = _brute_force(net[0].weight) + _brute_force(net[1].weight)
    assert orthogonal_regularisation(net).item() == pytest.approx(want.item(), rel=1e-5)
    # a spectral-norm layer is regularised through the weight the optimiser updates
    g = make_g()
    conv = g.blocks[0].conv1
    assert orthogonal_regularisation(conv).item() == pytest.approx(
        _brute_force(conv.parametrizations.weight.original).item(), rel=1e-5)
    with pytest.raises(ValueError, match="expected a net with conv or linear layers"):
        orthogonal_regularisation(torch.nn.Embedding(3, 3))


def test_ortho_reg_config_defaults_validation_and_config_dict():
    assert make_recipe().ortho_reg == BigGANGenerator.default_ortho_reg == 1e-4
    dc = CGANRecipe(toy_data(), CGANConfig(g_kwargs={"base_channels": 4, "max_channels": 8, "z_dim": 8},
                                           d_kwargs=dict(TINY_D), batch_size=8), device="cpu")
    assert dc.ortho_reg == 0.0
    assert "ortho_reg" not in dc.config_dict()  # existing configs (and their cache hashes) are unchanged
    assert "ortho_reg" not in make_recipe().config_dict()
    assert make_recipe(ortho_reg=1e-3).config_dict()["ortho_reg"] == 1e-3
    with pytest.raises(ValueError, match=r"ortho_reg: expected None or a weight >= 0, found -1"):
        CGANConfig(ortho_reg=-1).validate()
    with pytest.raises(TypeError, match=r"ortho_reg: expected None or a weight >= 0, found str"):
        CGANConfig(ortho_reg="1e-4").validate()


def test_ortho_reg_is_applied_in_the_generator_update():
    on, off = make_recipe(ortho_reg=1.0), make_recipe(ortho_reg=0.0)
    want = orthogonal_regularisation(on.G).item()  # on the weights before the update
    m_on, m_off = on.train_step(0), off.train_step(0)
    assert m_on["g_ortho"] == pytest.approx(want, rel=1e-6) and "g_ortho" not in m_off
    assert m_on["d_loss"] == m_off["d_loss"]  # the discriminator step comes first and is untouched
    assert m_on["g_loss"] == pytest.approx(m_off["g_loss"] + want, rel=1e-5)
    w_on = on.G.blocks[0].conv1.parametrizations.weight.original
    w_off = off.G.blocks[0].conv1.parametrizations.weight.original
    assert not torch.equal(w_on, w_off)
    before = make_recipe(ortho_reg=1.0).G
    assert orthogonal_regularisation(on.G) < orthogonal_regularisation(before)  # a strong weight lowers it


def test_ema_keeps_spectral_norm_vectors_unit_length():
    recipe = make_recipe()

    def vectors():
        return [getattr(p, k) for m in recipe.ema.module.modules() if hasattr(m, "parametrizations")
                for p in m.parametrizations.weight for k in ("_u", "_v")]

    recipe.train_step(0)
    with torch.no_grad():  # an average of unit vectors is shorter: exaggerate it, the next update must undo it
        for v in vectors():
            v.mul_(0.5)
    recipe.train_step(1)
    assert vectors() and all(abs(float(v.norm()) - 1.0) < 1e-5 for v in vectors())


# --------------------------------------------------------------------------------------- truncated normal
def test_truncated_normal_bounds_keeps_inliers_and_is_deterministic():
    plain = torch.randn(200, 16, generator=torch.Generator().manual_seed(3))
    z = truncated_normal((200, 16), 1.0, generator=torch.Generator().manual_seed(3))
    assert z.abs().max() <= 1.0
    inside = plain.abs() <= 1.0
    assert torch.equal(z[inside], plain[inside]) and (~inside).sum() > 100  # only the outliers were redrawn
    assert torch.equal(z, truncated_normal((200, 16), 1.0, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(truncated_normal((4, 3), None, generator=torch.Generator().manual_seed(3)),
                       torch.randn(4, 3, generator=torch.Generator().manual_seed(3)))
    tiny = truncated_normal((64, 64), 1e-3, generator=torch.Generator().manual_seed(0))  # inverse-CDF fallback
    assert tiny.abs().max() <= 1e-3 and tiny.std() > 3e-4
    for bad, err, msg in [(0.0, ValueError, "found 0.0"), (-1, ValueError, "found -1"),
                          (math.inf, ValueError, "found inf"), ("1", TypeError, "found str '1'")]:
        with pytest.raises(err, match=r"z_threshold: expected None or a (finite )?float > 0.*" + msg):
            truncated_normal((2, 2), bad)
    assert truncated_normal((3, 3), np.float32(0.5)).abs().max() <= 0.5  # numpy scalars are numbers too


# ------------------------------------------------------------------------------ training, model, sampling
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("biggan") / "run"
    result = Trainer(make_recipe(), out, 4, log_every=1, progress=False).fit()
    return result


def test_trains_saves_and_samples(trained):
    rows = read_metrics(trained.metrics_path)
    assert len(rows) == 4 and all(math.isfinite(r["g_loss"]) and r["g_ortho"] > 0 for r in rows)
    cfg = read_model_config(trained.model_dir)
    assert cfg["nets"]["generator"]["arch"] == "biggan" and "ortho_reg" not in cfg["train"]
    model = GeneratorModel.from_pretrained(trained.model_dir)
    imgs, labels = model.sample(6, seed=0)
    assert imgs.shape == (6, 1, 16, 16) and labels.tolist() == [0, 1, 0, 1, 0, 1]
    assert imgs.min() >= -1 and imgs.max() <= 1


def test_z_threshold_lowers_variance_and_is_deterministic(trained):
    model = GeneratorModel.from_pretrained(trained.model_dir)
    free, _ = model.sample(64, labels=0, seed=5)
    tight, _ = model.sample(64, labels=0, seed=5, z_threshold=0.25)
    torch.manual_seed(99)  # the global RNG does not matter
    again, _ = model.sample(64, labels=0, seed=5, z_threshold=0.25)
    assert torch.equal(tight, again)
    assert tight.var(dim=0).mean() < 0.8 * free.var(dim=0).mean()
    both, _ = model.sample(64, labels=0, seed=5, z_threshold=0.25, truncation=0.5)
    assert both.var(dim=0).mean() < tight.var(dim=0).mean()
    with pytest.raises(ValueError, match=r"z_threshold: expected None or a float > 0, found 0"):
        model.sample(2, z_threshold=0)
    with pytest.raises(ValueError, match=r"truncation: expected a float in \[0, 1\], found 1.5"):
        model.sample(2, truncation=1.5)


def test_killed_run_resumes_to_identical_losses(tmp_path, strip, kill_at, weights_hash):
    def trainer(name):
        return Trainer(make_recipe(), tmp_path / name, 8, log_every=1, sample_every=1000, ckpt_every=3,
                       progress=False)

    full = trainer("full")
    full.fit()
    kill_at(trainer("killed"), 5)
    resumed = trainer("killed")
    resumed.fit()
    assert strip(read_metrics(resumed.metrics_path)) == strip(read_metrics(full.metrics_path))
    assert weights_hash(resumed.recipe.nets) == weights_hash(full.recipe.nets)


def test_cli_trains_biggan_and_samples_with_a_threshold(tmp_path):
    from synthaug.cli import main

    out = tmp_path / "cli"
    assert main(["train", "cgan", "--data", "breastmnist", "--n-per-class", "4", "--out", str(out), "--steps", "2",
                 "--batch-size", "4", "--no-progress", "--arch", "biggan", "--ortho-reg", "1e-3",
                 "--g-kwargs", json.dumps(TINY), "--d-kwargs", json.dumps(TINY_D)]) == 0
    assert read_model_config(out / "model")["train"]["ortho_reg"] == 1e-3
    assert main(["sample", str(out / "model"), "--n", "3", "--out", str(tmp_path / "s"), "--z-threshold", "0.5"]) == 0
    assert len(list((tmp_path / "s").rglob("*.png"))) == 3
    assert main(["sample", str(out / "model"), "--n", "3", "--out", str(tmp_path / "t"), "--z-threshold", "0.5",
                 "--shards"]) == 0
    shards = SyntheticDataset.from_shards(tmp_path / "t")
    assert len(shards) == 3 and shards.z_threshold == 0.5


def test_synthetic_dataset_z_threshold_matches_on_the_fly_and_shards(trained, tmp_path):

    mem = SyntheticDataset(trained.model_dir, n=40, seed=3, batch_size=16, z_threshold=0.25)
    fly = SyntheticDataset(trained.model_dir, n=40, seed=3, batch_size=16, z_threshold=0.25, mode="on_the_fly",
                           cache_blocks=4)
    free = SyntheticDataset(trained.model_dir, n=40, seed=3, batch_size=16)
    assert torch.allclose(mem.image_range(0, 40), fly.image_range(0, 40), atol=1e-6)
    def within_class(ds):  # the spread of class 0's samples
        return ds.images[ds.labels == 0].var(dim=0).mean()

    assert within_class(mem) < 0.8 * within_class(free)
    mem.save_shards(tmp_path / "sh", shard_size=16)
    back = SyntheticDataset.from_shards(tmp_path / "sh")
    assert back.z_threshold == 0.25 and len(back) == 40
    free.save_shards(tmp_path / "free", shard_size=16)
    assert "z_threshold" not in json.loads((tmp_path / "free" / "manifest.json").read_text())
    with pytest.raises(ValueError, match=r"z_threshold: expected None or a float > 0, found -1"):
        SyntheticDataset(trained.model_dir, n=2, z_threshold=-1)
