"""The structure term of unpaired translators (``lambda_structure``): blind to brightness and contrast, not shapes."""

import json

import pytest
import torch

from synthaug.losses import structure_loss
from synthaug.train import CUTRecipe, CycleGANConfig, CycleGANRecipe, FastCUTRecipe, Trainer

from test_cut import TINY_D, TINY_G, domains
from test_cut import recipe as cut_recipe


def scenes(n=4, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 1.6 - 0.8


def test_structure_loss_ignores_haze_and_contrast_but_not_moved_shapes():
    x = scenes()
    assert float(structure_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    fog = 0.3 * x + 0.6  # less contrast, brighter: what fog does to a scene
    assert float(structure_loss(x, fog)) < 1e-3
    assert float(structure_loss(x, 0.1 * x)) > 0.4  # below the contrast floor (0.25): mostly erased
    assert float(structure_loss(x, 0.1 * x, min_contrast=0.05)) < 1e-3
    moved = torch.roll(x, shifts=3, dims=3)
    inverted = -x
    assert float(structure_loss(x, moved)) > 0.5
    assert float(structure_loss(x, inverted)) > 1.5  # correlation -1: the worst case, 2
    flat = torch.zeros_like(x)  # every pattern erased
    assert float(structure_loss(x, flat)) > 0.8
    assert float(structure_loss(flat, flat)) == pytest.approx(0.0, abs=1e-4)  # flat in both: kept


def test_structure_loss_has_gradients_and_checks_shapes():
    x, y = scenes(), scenes(seed=1).requires_grad_()
    structure_loss(x, y).backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    gray = structure_loss(x[:, :1], y[:, :1].detach())
    assert gray.dim() == 0
    with pytest.raises(ValueError, match="one shape"):
        structure_loss(x, y[:, :, :20])


def cyclegan(steps=4, **kw):
    a, b = domains()
    cfg = CycleGANConfig(steps=steps, g_kwargs=dict(TINY_G), d_kwargs=dict(TINY_D), **kw)
    return CycleGANRecipe(a, b, cfg, device="cpu", seed=0, names=("dark", "light"))


@pytest.mark.parametrize("make", [cyclegan, lambda **kw: cut_recipe(**kw),
                                  lambda **kw: cut_recipe(cls=FastCUTRecipe, **kw)], ids=["cyclegan", "cut", "fastcut"])
def test_lambda_structure_adds_the_term_and_is_recorded(tmp_path, make):
    on, off = make(lambda_structure=2.0), make()
    assert "structure" in on.train_step(0) and "structure" not in off.train_step(0)
    assert on.config_dict()["lambda_structure"] == 2.0
    assert "lambda_structure" not in off.config_dict()  # off: config.json exactly as before the option existed
    res = Trainer(make(lambda_structure=2.0, steps=2), tmp_path, progress=False).fit()
    assert json.loads((res.model_dir / "config.json").read_text())["train"]["lambda_structure"] == 2.0


def test_lambda_structure_keeps_the_input_pattern():
    """A large weight makes the translation's local correlation with its input higher than without the term."""
    torch.manual_seed(0)
    scores = {}
    for w in (0.0, 20.0):
        r = cyclegan(steps=30, lambda_structure=w)
        for step in range(30):
            r.train_step(step)
        with torch.no_grad():
            r.nets["G_A2B"].eval()
            scores[w] = float(structure_loss(r.A, r.nets["G_A2B"](r.A)))
    assert scores[20.0] < scores[0.0]


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "1"])
def test_lambda_structure_must_be_a_weight(bad):
    with pytest.raises((ValueError, TypeError), match="lambda_structure"):
        cyclegan(lambda_structure=bad)
    with pytest.raises((ValueError, TypeError), match="lambda_structure"):
        cut_recipe(cls=CUTRecipe, lambda_structure=bad)
