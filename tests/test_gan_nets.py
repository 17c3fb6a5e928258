"""Conditional generators, the projection discriminator and their building blocks."""

import json

import pytest
import torch

from synthaug.losses import GANLoss
from synthaug.nets import create_net, list_nets
from synthaug.nets.dcgan import CondDCGANGenerator
from synthaug.nets.discriminators import ProjectionDiscriminator
from synthaug.nets.layers import SUPPORTED_SIZES, ConditionalBatchNorm2d, MinibatchStdDev
from synthaug.nets.style import StyleGenerator

TINY_G = {"dcgan": dict(base_channels=4, max_channels=16, z_dim=8),
          "style": dict(base_channels=4, max_channels=16, z_dim=8, w_dim=16, mapping_layers=2)}
GENS = {"dcgan": CondDCGANGenerator, "style": StyleGenerator}


def make_g(arch, **kw):
    return create_net(arch, **{**TINY_G[arch], **kw})


def make_d(**kw):
    return ProjectionDiscriminator(**{"base_channels": 4, "max_channels": 16, **kw})


def test_registered_names():
    assert {"dcgan", "style", "projection"} <= set(list_nets())
    assert CondDCGANGenerator.arch_name == "dcgan" and ProjectionDiscriminator.arch_name == "projection"


@pytest.mark.parametrize("arch", ["dcgan", "style"])
@pytest.mark.parametrize("size", SUPPORTED_SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_shapes_and_range(arch, size, channels):
    torch.manual_seed(0)
    g = make_g(arch, num_classes=3, image_size=size, channels=channels)
    assert (g.num_classes, g.image_size, g.channels, g.z_dim) == (3, size, channels, 8)
    z = torch.randn(5, g.z_dim) * 3
    out = g(z, torch.tensor([0, 1, 2, 0, 1]))
    assert out.shape == (5, channels, size, size) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    g.eval()
    assert g(z, torch.tensor([0, 1, 2, 0, 1]), truncation=0.5).shape == out.shape


@pytest.mark.parametrize("arch", ["dcgan", "style"])
def test_generator_input_errors(arch):
    g = make_g(arch, num_classes=2, image_size=16)
    z = torch.randn(3, 8)
    with pytest.raises(ValueError, match=r"y: expected class indices in \[0, 1\].*found values in \[0, 2\]"):
        g(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y: expected class indices .*\[-1, 1\]"):
        g(z, torch.tensor([0, 1, -1]))
    with pytest.raises(ValueError, match=r"z: expected shape \(N, 8\), found \(3, 7\)"):
        g(torch.randn(3, 7), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"z: expected shape"):
        g(torch.randn(3, 8, 1, 1), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r"y: expected shape \(3,\), found \(2,\)"):
        g(z, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="y: expected an integer"):
        g(z, torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="truncation"):
        g(z, torch.tensor([0, 1, 1]), truncation=-0.5)


@pytest.mark.parametrize("arch", ["dcgan", "style", "projection"])
def test_bad_constructor_arguments(arch):
    with pytest.raises(ValueError, match=r"image_size: expected one of \[16, 28, 32, 64, 128\], found 48"):
        create_net(arch, num_classes=2, image_size=48)
    with pytest.raises(ValueError, match="num_classes: expected an int >= 1, found 0"):
        create_net(arch, num_classes=0, image_size=28)
    with pytest.raises(ValueError, match="channels"):
        create_net(arch, num_classes=2, image_size=28, channels=0)


def test_dcgan_cond_choice_and_concat_mode():
    with pytest.raises(ValueError, match=r"cond: expected one of \['cbn', 'concat'\], found 'film'"):
        CondDCGANGenerator(2, 28, cond="film")
    g = make_g("dcgan", num_classes=2, image_size=28, cond="concat", upsample="nearest")
    assert g(torch.randn(4, 8), torch.tensor([0, 1, 0, 1])).shape == (4, 1, 28, 28)


@pytest.mark.parametrize("arch", ["dcgan", "style"])
def test_generator_deterministic_under_seed(arch):
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        g = make_g(arch, num_classes=2, image_size=16)
        z = torch.randn(4, g.z_dim)
        outs.append(g(z, torch.tensor([0, 1, 0, 1])))  # train mode: style mixing + random noise
    assert torch.equal(outs[0], outs[1])


def test_dcgan_truncation_scales_z():
    g = make_g("dcgan", num_classes=2, image_size=16).eval()
    z, y = torch.randn(3, 8), torch.tensor([0, 1, 1])
    assert torch.allclose(g(z, y, truncation=0.5), g(z * 0.5, y))
    same = g(torch.randn(3, 8), torch.tensor([1, 1, 1]), truncation=0.0)
    assert torch.allclose(same[0], same[1]) and torch.allclose(same[1], same[2])


def test_style_mixing_only_in_train_mode():
    torch.manual_seed(0)
    g = make_g("style", num_classes=2, image_size=32)
    assert g.num_ws == 4 and g.mixing_prob == 0.9
    seen = []
    real_synthesis = g.synthesis
    g.synthesis = lambda ws: seen.append(ws.detach().clone()) or real_synthesis(ws)
    z, y = torch.randn(64, 8), torch.randint(0, 2, (64,))

    def n_mixed():
        ws = seen[-1]
        return int((~torch.isclose(ws, ws[:, :1]).all(dim=2).all(dim=1)).sum())

    g.train()
    g(z, y)
    assert 30 < n_mixed() < 64  # about 90% of the samples mix
    g.mixing_prob = 0.0
    g(z, y)
    assert n_mixed() == 0
    g.mixing_prob = 1.0
    g.eval()
    g(z, y)
    assert n_mixed() == 0


def test_style_w_avg_and_truncation():
    torch.manual_seed(0)
    g = make_g("style", num_classes=3, image_size=28)
    assert g.w_avg.shape == (3, 16) and torch.all(g.w_avg == 0)
    y = torch.tensor([0, 0, 1, 1])
    g.train()
    g(torch.randn(4, 8), y)
    assert torch.all(g.w_avg[:2] != 0) and torch.all(g.w_avg[2] == 0)  # only classes in the batch move
    g.eval()
    before = g.w_avg.clone()
    g(torch.randn(4, 8), y)
    assert torch.equal(g.w_avg, before)  # no update in eval mode
    g.noise_mode = "const"
    out = g(torch.randn(3, 8), torch.tensor([2, 2, 2]), truncation=0.0)
    assert torch.allclose(out[0], out[1], atol=1e-6) and torch.allclose(out[0], out[2], atol=1e-6)
    other = g(torch.randn(1, 8), torch.tensor([0]), truncation=0.0)
    assert not torch.allclose(out[0], other[0])  # the class is kept under full truncation
    w = g.mapping(torch.randn(3, 8), torch.tensor([0, 1, 2]), truncation=0.0)
    assert torch.allclose(w, g.w_avg)


def test_style_noise_modes_and_synthesis_api():
    torch.manual_seed(0)
    g = make_g("style", num_classes=2, image_size=16).eval()
    for layer in g.layers:
        torch.nn.init.ones_(layer.noise_strength)
    z, y = torch.randn(2, 8), torch.tensor([0, 1])
    assert not torch.equal(g(z, y), g(z, y))  # random noise
    for mode in ("const", "none"):
        g.noise_mode = mode
        assert torch.equal(g(z, y), g(z, y))
    ws = g.mapping(z, y).unsqueeze(1).repeat(1, g.num_ws, 1)
    assert torch.equal(g.synthesis(ws), g(z, y))
    with pytest.raises(ValueError, match=r"ws: expected shape \(N, 3, 16\)"):
        g.synthesis(ws[:, :2])
    g.noise_mode = "off"
    with pytest.raises(ValueError, match="noise_mode"):
        g(z, y)


@pytest.mark.parametrize("size", SUPPORTED_SIZES)
@pytest.mark.parametrize("sn,mbstd,ac", [(True, True, False), (False, False, True), (True, False, True)])
def test_discriminator_shapes(size, sn, mbstd, ac):
    torch.manual_seed(0)
    d = make_d(num_classes=3, image_size=size, channels=3, spectral_norm=sn, mbstd=mbstd, ac_head=ac)
    x, y = torch.randn(6, 3, size, size), torch.tensor([0, 1, 2, 0, 1, 2])
    out = d(x, y)
    assert out.shape == (6,) and torch.isfinite(out).all()
    adv, cls = d.forward_with_class(x, y)
    assert adv.shape == (6,)
    assert (cls.shape == (6, 3)) if ac else cls is None
    (adv.sum() + (cls.sum() if ac else 0)).backward()
    assert all(p.grad is not None for p in d.parameters() if p.requires_grad and p.ndim > 1)


def test_discriminator_input_errors():
    d = make_d(num_classes=2, image_size=28)
    with pytest.raises(ValueError, match=r"x: expected 1 channel\(s\).*found 3"):
        d(torch.randn(2, 3, 28, 28), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"x: expected spatial size 28x28.*found 32x32"):
        d(torch.randn(2, 1, 32, 32), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"y: expected class indices in \[0, 1\]"):
        d(torch.randn(2, 1, 28, 28), torch.tensor([0, 5]))
    with pytest.raises(TypeError, match="spectral_norm: expected a bool"):
        ProjectionDiscriminator(2, 28, spectral_norm="yes")


def test_projection_term_uses_the_label():
    torch.manual_seed(0)
    d = make_d(num_classes=2, image_size=16, mbstd=False).eval()
    x = torch.randn(2, 1, 16, 16)
    assert not torch.allclose(d(x, torch.tensor([0, 0])), d(x, torch.tensor([1, 1])))


@pytest.mark.parametrize("arch,kw", [("dcgan", TINY_G["dcgan"]), ("style", TINY_G["style"]),
                                     ("projection", dict(base_channels=4, ac_head=True))])
def test_create_net_json_round_trip(arch, kw):
    kwargs = json.loads(json.dumps({"num_classes": 2, "image_size": 28, "channels": 1, **kw}))
    torch.manual_seed(0)
    a = create_net(arch, **kwargs)
    b = create_net(arch, **kwargs)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    y = torch.tensor([0, 1])
    if arch == "projection":
        x = torch.randn(2, 1, 28, 28)
        assert torch.equal(a(x, y), b(x, y))
    else:
        if arch == "style":
            a.noise_mode = b.noise_mode = "const"
        z = torch.randn(2, a.z_dim)
        assert torch.equal(a(z, y), b(z, y))


def test_minibatch_stddev():
    layer = MinibatchStdDev(4)
    x = torch.randn(8, 3, 5, 5)
    out = layer(x)
    assert out.shape == (8, 4, 5, 5) and torch.equal(out[:, :3], x)
    # groups are samples {0, 2, 4, 6} and {1, 3, 5, 7}
    g0 = x[0::2].var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    assert torch.allclose(out[0, 3], g0.expand(5, 5)) and torch.allclose(out[6, 3], g0.expand(5, 5))
    assert layer(torch.randn(6, 3, 2, 2)).shape == (6, 4, 2, 2)  # group shrinks to a divisor of 6
    assert torch.all(layer(torch.randn(1, 3, 2, 2))[:, 3] == 0)
    assert torch.all(layer(x[:1].expand(4, -1, -1, -1))[:, 3] < 1e-3)  # identical samples: ~0 spread


def test_conditional_batchnorm():
    cbn = ConditionalBatchNorm2d(3, num_classes=2)
    with torch.no_grad():
        cbn.gain.weight[1] = 2.0
        cbn.bias.weight[1] = 5.0
    x = torch.randn(8, 3, 4, 4)
    y = torch.tensor([0, 1] * 4)
    out = cbn(x, y)
    ref = torch.nn.functional.batch_norm(x, None, None, training=True)
    assert torch.allclose(out[0::2], ref[0::2], atol=1e-5)
    assert torch.allclose(out[1::2], ref[1::2] * 2 + 5, atol=1e-5)


def test_tiny_conditional_gan_learns_class_brightness():
    """A tiny DCGAN + projection D with hinge loss separates a dark and a bright class."""
    torch.manual_seed(0)
    n = 256
    y_data = torch.arange(n) % 2
    x_data = torch.full((n, 1, 16, 16), -1.0)
    for i in range(n):  # an 8..12 px square at a random place on black: class 0 dark grey, class 1 white
        s = int(torch.randint(8, 13, ()))
        r, c = torch.randint(0, 16 - s + 1, (2,)).tolist()
        x_data[i, 0, r:r + s, c:c + s] = -0.6 if y_data[i] == 0 else 1.0
    g = CondDCGANGenerator(2, 16, z_dim=16, base_channels=8, max_channels=32)
    d = ProjectionDiscriminator(2, 16, base_channels=8, max_channels=32)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-3, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.0, 0.99))
    loss = GANLoss("hinge")
    for _ in range(150):
        idx = torch.randint(0, n, (32,))
        x, y = x_data[idx], y_data[idx]
        with torch.no_grad():
            fake = g(torch.randn(32, 16), y)
        d_loss = loss.d_loss(d(x, y), d(fake, y))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = loss.g_loss(d(g(torch.randn(32, 16), y), y))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    g.eval()
    with torch.no_grad():
        y = torch.tensor([0] * 64 + [1] * 64)
        imgs = g(torch.randn(128, 16), y)
    dark, bright = imgs[:64].mean().item(), imgs[64:].mean().item()
    assert bright > dark + 0.2, (dark, bright)  # real data: ~0.6 apart
