"""Translator nets (ResNet / U-Net generators, PatchGAN discriminators), init_weights and ImagePool."""

import io
import json

import pytest
import torch
import torch.nn as nn

from synthaug.image_pool import ImagePool
from synthaug.nets.registry import create_net
from synthaug.nets.translators import (
    MultiScaleDiscriminator,
    PatchDiscriminator,
    ResnetGenerator,
    UNetGenerator,
    init_weights,
    min_input_size,
    receptive_field,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _imgs(n, c, s):
    return torch.rand(n, c, s, s) * 2 - 1


# ----------------------------------------------------------------------------- ResNet generator
@pytest.mark.parametrize("size,n_blocks,cin,cout", [
    (16, 6, 3, 3), (16, 9, 1, 1), (32, 6, 1, 3), (32, 9, 3, 1), (64, 6, 3, 3), (64, 9, 1, 1),
])
def test_resnet_shapes(size, n_blocks, cin, cout):
    g = ResnetGenerator(cin, cout, ngf=8, n_blocks=n_blocks, n_downsampling=2)
    y = g(_imgs(2, cin, size))
    assert y.shape == (2, cout, size, size)
    assert y.dtype == torch.float32


def test_resnet_output_in_range_and_minimum_size():
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    y = g(torch.randn(2, 1, 16, 16) * 50)
    assert y.abs().max() <= 1.0
    assert g.min_size == 8
    assert g(_imgs(1, 1, 8)).shape == (1, 1, 8, 8)  # the real minimum for n_downsampling=2 works
    assert ResnetGenerator(1, 1, ngf=4, n_blocks=1, n_downsampling=0)(_imgs(1, 1, 4)).shape == (1, 1, 4, 4)


def test_resnet_bad_inputs():
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=1, n_downsampling=2)
    with pytest.raises(ValueError, match=r"image too small for the network depth: expected at least 8x8.*found 4x4"):
        g(_imgs(1, 3, 4))
    with pytest.raises(ValueError, match=r"divisible by 2\*\*n_downsampling = 4, found 18x18"):
        g(_imgs(1, 3, 18))
    with pytest.raises(ValueError, match=r"x: expected 3 channel\(s\), found 1"):
        g(_imgs(1, 1, 16))
    with pytest.raises(ValueError, match="4-D"):
        g(torch.zeros(3, 16, 16))
    deep = ResnetGenerator(3, 3, ngf=4, n_blocks=1, n_downsampling=3)
    with pytest.raises(ValueError, match=r"expected at least 16x16"):
        deep(_imgs(1, 3, 8))
    with pytest.raises(ValueError, match="n_blocks: expected an int >= 1, found 0"):
        ResnetGenerator(n_blocks=0)
    with pytest.raises(ValueError, match=r"norm: expected one of \['instance', 'batch', 'none'\], found 'group'"):
        ResnetGenerator(norm="group")


# ----------------------------------------------------------------------------- U-Net generator
@pytest.mark.parametrize("size,cin,cout", [(16, 1, 1), (32, 3, 1), (64, 3, 3)])
def test_unet_shapes(size, cin, cout):
    g = UNetGenerator(cin, cout, ngf=8, image_size=size)
    assert g.num_downs == size.bit_length() - 1
    y = g(_imgs(2, cin, size))
    assert y.shape == (2, cout, size, size)
    assert y.abs().max() <= 1.0


def test_unet_depth_and_errors():
    assert UNetGenerator(ngf=4, image_size=256).num_downs == 8
    # pix2pix's layout at 256 px: dropout in the three decoder stages after the innermost one
    assert sum(isinstance(m, nn.Dropout) for m in UNetGenerator(ngf=4, image_size=256).modules()) == 3
    assert sum(isinstance(m, nn.Dropout) for m in UNetGenerator(ngf=4, image_size=16).modules()) == 2
    assert not any(isinstance(m, nn.Dropout) for m in UNetGenerator(ngf=4, image_size=16, dropout=False).modules())
    with pytest.raises(ValueError, match=r"image_size: expected a power of two.*found 28.*image_size=32"):
        UNetGenerator(image_size=28)
    with pytest.raises(ValueError, match="num_downs: expected an int >= 1, or image_size"):
        UNetGenerator()
    g = UNetGenerator(1, 1, num_downs=2, ngf=8)  # 28 px works with a shallower net
    assert g(_imgs(1, 1, 28)).shape == (1, 1, 28, 28)
    g5 = UNetGenerator(1, 1, ngf=8, image_size=32)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*num_downs = 32, found 28x28; pad or resize to 32x32"):
        g5(_imgs(1, 1, 28))
    with pytest.raises(ValueError, match=r"x: expected 1 channel\(s\), found 3"):
        g5(_imgs(1, 3, 32))


# ----------------------------------------------------------------------------- PatchGAN
def test_patchgan_shapes_and_minimum():
    assert PatchDiscriminator(3, ndf=8, n_layers=3)(_imgs(2, 3, 64)).shape == (2, 1, 6, 6)
    assert PatchDiscriminator(1, ndf=8, n_layers=2)(_imgs(2, 1, 16)).shape == (2, 1, 2, 2)
    assert min_input_size(2) == 12 and min_input_size(3) == 24
    assert PatchDiscriminator.min_input_size(1) == 6
    assert PatchDiscriminator(1, ndf=8, n_layers=2)(_imgs(1, 1, 12)).shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match=r"too small for the discriminator depth: expected at least 24x24 px for "
                                         r"n_layers=3, found 16x16; n_layers=2 accepts it"):
        PatchDiscriminator(1, ndf=8, n_layers=3)(_imgs(1, 1, 16))
    with pytest.raises(ValueError, match=r"expected at least 12x12 px.*found 11x11"):
        PatchDiscriminator(1, ndf=8, n_layers=2)(_imgs(1, 1, 11))
    with pytest.raises(ValueError, match=r"x: expected 6 channel\(s\), found 3"):  # pix2pix: concat(input, output)
        PatchDiscriminator(6, ndf=8)(_imgs(1, 3, 32))


def test_patchgan_receptive_field_is_70():
    d = PatchDiscriminator(3, ndf=8, n_layers=3, norm="none")
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    rf, jump = 1, 1
    for c in convs:
        rf += (c.kernel_size[0] - 1) * jump
        jump *= c.stride[0]
    assert rf == 70 == receptive_field(3)
    assert receptive_field(2) == 34
    # empirically: the input pixels that one central logit depends on span 70 rows and columns
    init_weights(d, "kaiming")
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    d(x)[0, 0, 7, 7].backward()
    nz = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = nz.any(1).nonzero().squeeze(1), nz.any(0).nonzero().squeeze(1)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_multiscale():
    d = MultiScaleDiscriminator(3, ndf=8, n_layers=2, num_scales=3)
    outs = d(_imgs(2, 3, 64))
    assert isinstance(outs, list) and len(outs) == 3
    sizes = [o.shape[-1] for o in outs]
    assert all(o.shape[:2] == (2, 1) for o in outs) and sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    assert d.min_size == 45
    with pytest.raises(ValueError, match=r"expected at least 45x45 px for n_layers=2 at num_scales=3, found 32x32"):
        d(_imgs(1, 3, 32))


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_norm_variants_train_and_backprop(norm):
    nets = [ResnetGenerator(1, 1, ngf=8, n_blocks=2, norm=norm, dropout=True),
            UNetGenerator(1, 1, ngf=8, image_size=16, norm=norm),
            PatchDiscriminator(1, ndf=8, n_layers=2, norm=norm),
            PatchDiscriminator(1, ndf=8, n_layers=2, norm=norm, spectral_norm=True)]
    has_bn = {type(m) for n in nets for m in n.modules()} & {nn.BatchNorm2d}
    assert bool(has_bn) == (norm == "batch")
    for net in nets:
        net.train()
        out = net(_imgs(2, 1, 16))
        out.mean().backward()
        assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_init_weights():
    d = PatchDiscriminator(3, ndf=32, n_layers=3, norm="batch")
    for scheme in ("normal", "xavier", "kaiming", "orthogonal"):
        assert init_weights(d, scheme, 0.02) is d
    init_weights(d, "normal", 0.02)
    conv = d.model[2]
    assert abs(conv.weight.std().item() - 0.02) < 0.002
    bn = next(m for m in d.modules() if isinstance(m, nn.BatchNorm2d))
    assert abs(bn.weight.mean().item() - 1.0) < 0.02 and bn.bias.abs().max() == 0
    sn = PatchDiscriminator(3, ndf=8, spectral_norm=True)
    init_weights(sn, "orthogonal", 1.0)  # re-initialises the parametrisation's original weight
    with pytest.raises(ValueError, match="init: expected one of"):
        init_weights(d, "uniform")


@pytest.mark.parametrize("arch,kwargs,shape", [
    ("resnet", {"in_channels": 1, "out_channels": 3, "ngf": 8, "n_blocks": 2}, (2, 1, 16, 16)),
    ("unet", {"in_channels": 3, "out_channels": 1, "ngf": 8, "image_size": 32}, (2, 3, 32, 32)),
    ("patchgan", {"in_channels": 4, "ndf": 8, "n_layers": 2, "spectral_norm": True}, (2, 4, 16, 16)),
    ("multiscale_patchgan", {"in_channels": 3, "ndf": 8, "n_layers": 2, "num_scales": 2}, (2, 3, 32, 32)),
])
def test_create_net_round_trip(arch, kwargs, shape):
    a = create_net(arch, **kwargs).eval()
    assert a.arch_name == arch
    b = create_net(arch, **json.loads(json.dumps(kwargs))).eval()
    b.load_state_dict(a.state_dict())
    x = _imgs(*shape[:2], shape[2])
    ya, yb = a(x), b(x)
    for u, v in zip(ya if isinstance(ya, list) else [ya], yb if isinstance(yb, list) else [yb]):
        torch.testing.assert_close(u, v)


def test_resnet_overfits_inversion():
    torch.manual_seed(0)
    g = ResnetGenerator(1, 1, ngf=8, n_blocks=2)
    x = _imgs(8, 1, 16)
    opt = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.5, 0.999))
    losses = []
    for _ in range(100):
        loss = (g(x) - (-x)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


# ----------------------------------------------------------------------------- ImagePool
def _marked(start, n):
    """n 1x2x2 images whose pixels all equal start, start+1, ..."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()


def _ids(batch):
    return batch[:, 0, 0, 0].long().tolist()


def test_pool_size_zero_is_identity():
    x = _imgs(3, 1, 4).requires_grad_()
    out = ImagePool(0, seed=0).query(x * 1)
    assert torch.equal(out, x.detach()) and not out.requires_grad


def test_pool_fills_then_mixes():
    pool = ImagePool(4, seed=0)
    assert _ids(pool.query(_marked(0, 3))) == [0, 1, 2]
    out = pool.query(_marked(3, 3))  # one slot left: 3 is stored and returned, then 4 and 5 may be swapped
    assert out.shape == (3, 1, 2, 2) and _ids(out)[0] == 3 and len(pool) == 4
    seen, old = set(range(6)), 0
    for start in range(100, 400, 5):
        ids = _ids(pool.query(_marked(start, 5)))
        for i, new in zip(ids, range(start, start + 5)):
            assert i == new or i in seen  # a new image, or one stored earlier (in this batch too)
            old += i != new
            seen.add(new)
    assert 0.35 < old / 300 < 0.65 and len(pool) == 4


def test_pool_deterministic_under_seed():
    def run(**kw):
        pool = ImagePool(3, **kw)
        return [_ids(pool.query(_marked(s, 4))) for s in range(0, 80, 4)]

    assert run(seed=7) == run(seed=7) == run(generator=torch.Generator().manual_seed(7))
    assert run(seed=7) != run(seed=8)
    torch.manual_seed(1)
    a = run()
    torch.manual_seed(1)
    assert run() == a  # unseeded pools draw their seed from torch's global RNG


def test_pool_state_dict_round_trip():
    a = ImagePool(5, seed=3)
    for s in range(0, 40, 4):
        a.query(_marked(s, 4))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert state["count"] == 5 and state["images"].shape == (5, 1, 2, 2) and state["images"].device.type == "cpu"
    assert state["rng"].dtype == torch.uint8
    b = ImagePool(5, seed=999)
    b.load_state_dict(state)
    for s in range(100, 200, 4):
        assert _ids(a.query(_marked(s, 4))) == _ids(b.query(_marked(s, 4)))
    empty = ImagePool(5, seed=0).state_dict()
    assert empty["count"] == 0 and empty["images"].numel() == 0
    c = ImagePool(5, seed=1)
    c.load_state_dict(empty)
    assert len(c) == 0
    with pytest.raises(ValueError, match=r"state\['count'\]: expected 0..2"):
        ImagePool(2).load_state_dict(state)


def test_pool_detaches_and_validates():
    leaf = torch.ones(2, 1, 2, 2, requires_grad=True)
    pool = ImagePool(2, seed=0)
    x = leaf * 3
    out = pool.query(x)
    assert not out.requires_grad and all(not t.requires_grad for t in pool._images)
    with torch.no_grad():
        x.zero_()  # the pool keeps copies, not views of the caller's tensor
    assert pool.state_dict()["images"].eq(3).all()
    with pytest.raises(ValueError, match=r"images: expected images of shape \(1, 2, 2\)"):
        pool.query(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="size: expected an int >= 0"):
        ImagePool(-1)
    with pytest.raises(ValueError, match="seed: expected None when a generator is passed"):
        ImagePool(2, generator=torch.Generator(), seed=1)


def test_resnet_noise_inputs_make_a_stochastic_translator():
    torch.manual_seed(0)
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=2, noise_dim=4, noise_maps=2)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    assert g.stochastic and not ResnetGenerator(3, 3, ngf=8, n_blocks=2).stochastic
    a, b = g(x), g(x)
    assert a.shape == x.shape and a.abs().max() <= 1 and not torch.allclose(a, b)  # fresh noise per call
    noise = g.make_noise(3, 16, 16, torch.Generator().manual_seed(1))
    assert noise["z"].shape == (3, 4) and noise["maps"].shape == (3, 2, 16, 16)
    assert torch.equal(g(x, noise), g(x, noise))  # given noise: deterministic
    # PatchNCE's encoder maps use zero noise: deterministic too
    f1, f2 = g.features(x, ["input", "block2"]), g.features(x, ["input", "block2"])
    assert torch.equal(f1[1], f2[1]) and torch.equal(f1[0], x)
    with pytest.raises(ValueError, match="noise: expected z"):
        g(x, {"z": torch.zeros(2, 4), "maps": torch.zeros(2, 2, 16, 16)})
    with pytest.raises(ValueError, match="takes no noise"):
        ResnetGenerator(3, 3, ngf=8, n_blocks=2)(x, noise)
    with pytest.raises(ValueError, match="noise_dim"):
        ResnetGenerator(3, 3, noise_dim=-1)
    # the style vector reaches the output through every instance norm (AdaIN): only z differs here
    z2 = {"z": torch.randn(3, 4) * 3, "maps": noise["maps"]}
    with torch.no_grad():
        for p in g.style_mlp.parameters():
            p.normal_(0, 0.5)
    assert (g(x, noise) - g(x, z2)).abs().mean() > 1e-3


def test_resnet_without_noise_is_unchanged_by_the_option():
    torch.manual_seed(0)
    a = ResnetGenerator(3, 3, ngf=8, n_blocks=2)
    torch.manual_seed(0)
    b = ResnetGenerator(3, 3, ngf=8, n_blocks=2, noise_dim=0, noise_maps=0)
    assert list(a.state_dict()) == list(b.state_dict())
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
