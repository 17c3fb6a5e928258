"""The Laplacian-pyramid translator (``lptn``): pyramid, any-size forward, detail kept by construction, the recipes,
full-size translation through TranslatorModel and the translate CLI."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from synthaug.cli import _image_files, main
from synthaug.data import from_arrays
from synthaug.models import TranslatorModel, load_model
from synthaug.nets import create_net, list_translators
from synthaug.nets.lptn import LaplacianPyramid, LPTNTranslator
from synthaug.train import CUTConfig, CUTRecipe, CycleGANConfig, CycleGANRecipe, Trainer

TINY = {"n_levels": 2, "ngf": 4, "n_blocks": 1, "mask_width": 4, "mask_blocks": 0}
TINY_D = {"ndf": 4, "n_layers": 2}
SIZE = 16


def _imgs(n, c, h, w, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, c, h, w, generator=g) * 2 - 1) * scale


def _zero_(module):
    torch.nn.init.zeros_(module.weight)
    torch.nn.init.zeros_(module.bias)


def _identity_net(**kw):
    """An lptn whose output layers are zero: the low-band residual and every mask are 0."""
    net = LPTNTranslator(**kw).eval()
    _zero_(net.low.head[-1])
    _zero_(net.mask[-1])
    for r in net.refine:
        _zero_(r[-1])
    return net


# ------------------------------------------------------------------------------------------ pyramid
@pytest.mark.parametrize("hw,levels", [((16, 16), 3), ((45, 80), 3), ((9, 9), 3), ((17, 33), 4), ((450, 800), 5)])
def test_pyramid_reconstruction_is_exact(hw, levels):
    pyr = LaplacianPyramid()
    x = _imgs(2, 3, *hw)
    parts = pyr.decompose(x, levels)
    assert len(parts) == levels + 1 and parts[0].shape == x.shape
    h, w = hw
    for p in parts[1:]:  # each level halves the size, rounding up
        h, w = -(-h // 2), -(-w // 2)
        assert p.shape[-2:] == (h, w)
    assert (pyr.reconstruct(parts) - x).abs().max() < 1e-6
    flat = pyr.decompose(torch.full((1, 1, *hw), 0.3), levels)  # a constant image has no detail
    assert all(b.abs().max() < 1e-6 for b in flat[:-1]) and torch.allclose(flat[-1], torch.tensor(0.3))


# ------------------------------------------------------------------------------------------ the net
@pytest.mark.parametrize("hw,cin,cout", [((45, 80), 3, 3), ((450, 800), 3, 3), ((9, 9), 1, 1), ((31, 17), 1, 3)])
def test_output_has_the_input_size_and_range(hw, cin, cout):
    torch.manual_seed(0)
    net = LPTNTranslator(cin, cout, n_levels=3, ngf=4, n_blocks=1, mask_width=4, mask_blocks=1).eval()
    with torch.no_grad():
        y = net(_imgs(1, cin, *hw))
    assert y.shape == (1, cout, *hw) and y.min() >= -1 and y.max() <= 1 and torch.isfinite(y).all()


def test_zeroed_net_is_the_identity_and_deeper_pyramids_too():
    net = _identity_net(n_levels=3, ngf=4, n_blocks=1, mask_width=4, mask_blocks=1)
    x = _imgs(2, 3, 45, 80, scale=0.99)
    with torch.no_grad():
        assert (net(x) - x).abs().max() < 1e-5
        assert (net(x, extra_levels=1) - x).abs().max() < 1e-5


def test_edges_survive_a_changed_low_band():
    """With the masks at zero, whatever the low-band CNN does changes the image only by an expanded low band: the
    input's edges (its finest bands) are in the output unchanged."""
    torch.manual_seed(0)
    net = _identity_net(n_levels=3, ngf=4, n_blocks=1, mask_width=4, mask_blocks=0)
    with torch.no_grad():
        net.low.head[-1].bias.copy_(torch.tensor([0.4, -0.3, 0.2]))  # a strong colour shift in tanh space
        net.low.head[-1].weight.normal_(0, 0.03)                     # and one that depends on the content
    x = torch.full((1, 3, 64, 96), -0.3)
    x[..., 16:48, 20:60] = 0.3  # a box with sharp edges
    x[..., ::7, :] += 0.1       # thin stripes
    pyr = net.pyramid
    with torch.no_grad():
        y = net(x)
        edges_x, edges_y = pyr.decompose(x, 1)[0], pyr.decompose(y, 1)[0]
    assert (y - x).abs().mean() > 0.25 and y.abs().max() < 1  # the colours did change (and nothing was clipped)
    assert (edges_y - edges_x).abs().max() < 0.03 * edges_x.abs().max()
    # a default-initialised net (what the recipes train from) starts with the input's edges too: masks near 0
    fresh = LPTNTranslator(n_levels=3, ngf=8, n_blocks=2).eval()
    with torch.no_grad():
        edges_fresh = pyr.decompose(fresh(x), 1)[0]
    assert (edges_fresh - edges_x).abs().max() < 0.1 * edges_x.abs().max()


def test_registration_contract_and_create_net():
    assert "lptn" in list_translators()
    net = create_net("lptn", in_channels=1, out_channels=1, **TINY)
    assert isinstance(net, LPTNTranslator) and net.full_resolution and net.min_size == 5
    assert net.spec == {"arch": "lptn", "kwargs": {"in_channels": 1, "out_channels": 1, **TINY, "norm": "instance"}}
    again = create_net(net.spec["arch"], **net.spec["kwargs"])
    again.load_state_dict(net.state_dict())
    assert "kernel" not in "".join(net.state_dict())  # the fixed pyramid is not a weight
    x = _imgs(2, 1, 20, 28)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), again.eval()(x))
    assert net.feature_layers == ["low", "stem", "block1"]
    maps = net.features(x, ["block1", "low"])
    assert [tuple(m.shape) for m in maps] == [(2, 4, 5, 7), (2, 1, 5, 7)]
    with pytest.raises(ValueError, match=r"expected names among \['low', 'stem', 'block1'\], found \['down1'\]"):
        net.features(x, ["down1"])


def test_extra_levels_for_a_frame():
    net = LPTNTranslator(n_levels=3)
    assert net.extra_levels_for(450, 800, 64) == 3      # 450 / 64 = 7: 2**3, low band 1/64 of the frame
    assert net.extra_levels_for(450, 800, 128) == 2
    assert net.extra_levels_for(64, 64, 64) == 0 and net.extra_levels_for(20, 20, 64) == 0
    assert net.extra_levels_for(20, 4000, 2) == 1       # as deep as the short side allows: 2**4 < 20


def test_bad_inputs_and_arguments():
    net = LPTNTranslator(3, 3, **TINY)
    with pytest.raises(ValueError, match=r"x: expected 3 channel\(s\), found 1"):
        net(_imgs(1, 1, 20, 20))
    with pytest.raises(ValueError, match="x: expected a 4-D batch"):
        net(_imgs(1, 3, 20, 20)[0])
    with pytest.raises(ValueError, match=r"image too small for the pyramid depth: expected at least 5x5 px for 2 "
                                         r"levels \(n_levels=2, extra_levels=0\), found 4x30"):
        net(_imgs(1, 3, 4, 30))
    with pytest.raises(ValueError, match=r"expected at least 17x17 px for 4 levels"):
        net(_imgs(1, 3, 16, 30), extra_levels=2)
    with pytest.raises(ValueError, match="extra_levels: expected an int >= 0, found -1"):
        net(_imgs(1, 3, 16, 30), extra_levels=-1)
    with pytest.raises(ValueError, match="n_levels: expected an int >= 1, found 0"):
        LPTNTranslator(n_levels=0)
    with pytest.raises(ValueError, match=r"n_levels: expected an int in \[1, 8\], found 9"):
        LPTNTranslator(n_levels=9)
    with pytest.raises(TypeError, match="n_levels: expected an int >= 1, found str"):
        LPTNTranslator(n_levels="3")
    with pytest.raises(ValueError, match=r"out_channels: expected 3 \(= in_channels"):
        LPTNTranslator(3, 1)
    with pytest.raises(ValueError, match="norm: expected one of"):
        LPTNTranslator(norm="batch")


# ------------------------------------------------------------------------------------------ recipes and model
def _domains(n=6, c=3):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.0, 0.3, size=(n, SIZE, SIZE, c)).astype(np.float32)
    a[:, 4:12, 4:12] = 0.9
    return from_arrays(a, name="dark"), from_arrays((1.0 - a)[::-1].copy(), name="light")


@pytest.fixture(scope="module")
def lptn_model(tmp_path_factory):
    """A CycleGAN with generator="lptn", trained 3 steps on 16 px RGB images and exported."""
    a, b = _domains()
    cfg = CycleGANConfig(steps=3, generator="lptn", g_kwargs=dict(TINY), d_kwargs=dict(TINY_D), pool_size=2)
    out = tmp_path_factory.mktemp("lptn") / "run"
    result = Trainer(CycleGANRecipe(a, b, cfg, device="cpu", names=("dark", "light")), out, log_every=1,
                     progress=False).fit()
    return result.model_dir


def test_cyclegan_with_lptn_exports_and_translates_full_size(lptn_model):
    cfg = json.loads((lptn_model / "config.json").read_text())
    assert cfg["nets"]["G_A2B"] == {"arch": "lptn", "kwargs": {"in_channels": 3, "out_channels": 3, **TINY,
                                                                "norm": "instance"}}
    model = TranslatorModel.from_pretrained(lptn_model, device="cpu")
    assert isinstance(load_model(lptn_model), TranslatorModel)
    assert model.full_resolution and model.resolve_size_policy() == "native"
    x = _imgs(1, 3, 60, 100, scale=0.9)
    y = model.translate(x)  # native by default, pyramid deepened by log2(60 / 16) ~ 2 levels
    assert y.shape == (1, 3, 60, 100) and y.min() >= -1 and y.max() <= 1
    net = model.nets["G_A2B"]
    assert net.extra_levels_for(60, 100, 16) == 2
    with torch.no_grad():
        assert torch.equal(y, net(x, extra_levels=2).clamp(-1, 1))
        assert torch.equal(model.translate(x, match_scale=False), net(x).clamp(-1, 1))
    assert torch.equal(model.translate(x), y)  # deterministic: the same frame gives the same output
    assert torch.equal(model.translate(x[0], direction="B2A"), model.translate(x, direction="B2A")[0])
    assert model.translate(x, size_policy="resize").shape == (1, 3, 60, 100)
    with pytest.raises(ValueError, match=r"images: expected at least 5x5 px for native-size translation with this "
                                         r"lptn translator, found 4x100; use size_policy='resize'"):
        model.translate(_imgs(1, 3, 4, 100))
    with pytest.raises(ValueError, match=r"size_policy: expected one of \['resize', 'native'\], found 'full'"):
        model.translate(x, size_policy="full")
    with pytest.raises(TypeError, match="match_scale: expected a bool"):
        model.translate(x, match_scale=1)
    from synthaug.augment import GANTransform  # the transforms translate at the image's own size too

    img = torch.randint(0, 256, (3, 30, 50), dtype=torch.uint8)
    assert GANTransform(str(lptn_model), p=1.0)(img).shape == (3, 30, 50)


def test_cut_with_lptn_uses_the_low_band_maps(tmp_path):
    a, b = _domains(c=1)
    cfg = CUTConfig(steps=2, generator="lptn", g_kwargs=dict(TINY), d_kwargs=dict(TINY_D),
                    nce_layers=("low", "stem", "block1"), num_patches=8)
    r = CUTRecipe(a, b, cfg, device="cpu")
    res = Trainer(r, tmp_path / "cut", log_every=1, progress=False).fit()
    model = TranslatorModel.from_pretrained(res.model_dir, device="cpu")
    assert model.translate(_imgs(2, 1, 45, 80)).shape == (2, 1, 45, 80)
    with pytest.raises(ValueError, match=r"nce_layers: expected names among \['low', 'stem', 'block1'\]"):
        CUTRecipe(a, b, CUTConfig(steps=2, generator="lptn", g_kwargs=dict(TINY), d_kwargs=dict(TINY_D)),
                  device="cpu")


def test_native_size_pads_the_resnet_translator():
    torch.manual_seed(0)
    net = create_net("resnet", in_channels=1, out_channels=1, ngf=4, n_blocks=1)
    model = TranslatorModel({"G_A2B": net}, {"kind": "cut", "image_size": 16, "channels_a": 1, "channels_b": 1},
                            device="cpu")
    assert not model.full_resolution and model.resolve_size_policy() == "resize"
    x = _imgs(1, 1, 45, 81)  # not multiples of 2**n_downsampling = 4
    y = model.translate(x, size_policy="native")
    assert y.shape == (1, 1, 45, 81)
    padded = torch.nn.functional.pad(x, (1, 2, 1, 2), mode="reflect")
    with torch.no_grad():
        assert torch.equal(y, net.eval()(padded)[..., 1:46, 1:82].clamp(-1, 1))
    with pytest.raises(ValueError, match="expected at least 8x8 px for native-size translation with this resnet"):
        model.translate(_imgs(1, 1, 6, 40), size_policy="native")


# ------------------------------------------------------------------------------------------ CLI
def test_cli_translates_frames_at_their_own_size_keeping_names(lptn_model, tmp_path, capsys):
    src = tmp_path / "frames"
    src.mkdir()
    rng = np.random.default_rng(0)
    sizes = {"frame_2.png": (45, 80), "frame_10.png": (60, 100)}
    for name, (h, w) in sizes.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(src / name)
    assert [p.name for p in _image_files(src)] == ["frame_2.png", "frame_10.png"]  # numeric order
    out = tmp_path / "out"
    assert main(["translate", str(lptn_model), "--in", str(src), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "at native size" in captured.out and "translate A2B" in captured.err  # the progress bar
    assert sorted(p.name for p in out.iterdir()) == sorted(sizes)
    for name, (h, w) in sizes.items():
        assert Image.open(out / name).size == (w, h)
    first = np.asarray(Image.open(out / "frame_2.png"))
    assert main(["translate", str(lptn_model), "--in", str(src), "--out", str(tmp_path / "again"),
                 "--no-progress"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again" / "frame_2.png")), first)
    assert main(["translate", str(lptn_model), "--in", str(src), "--out", str(tmp_path / "r"),
                 "--size-policy", "resize", "--no-progress"]) == 0
    assert Image.open(tmp_path / "r" / "frame_10.png").size == (100, 60)
