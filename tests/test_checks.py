"""The shared argument checks (synthaug.checks) and the value-range rule (synthaug.utils.check_value_range)."""

import numpy as np
import pytest
import torch

from synthaug.checks import (check_bool, check_choice, check_config_fields, check_int, check_number, check_options,
                             check_probability)
from synthaug.utils import check_value_range


def test_check_int():
    assert check_int("n", 3) == 3 and check_int("n", np.int64(0), 0) == 0 and type(check_int("n", np.int64(2))) is int
    with pytest.raises(ValueError, match="n: expected an int >= 1, found 0"):
        check_int("n", 0)
    for bad in (1.0, True, "2", None):
        with pytest.raises(TypeError, match=r"n: expected an int >= 0, found"):
            check_int("n", bad, 0)


def test_check_number_and_probability():
    assert check_number("x", 2, 0.0) == 2.0 and check_number("x", None, optional=True) is None
    assert check_probability("p", 0) == 0.0 and check_probability("p", np.float32(1.0)) == 1.0
    with pytest.raises(ValueError, match=r"p: expected a probability in \[0, 1\], found 1.5"):
        check_probability("p", 1.5)
    with pytest.raises(ValueError, match=r"t: expected None or a probability in \(0, 1\], found 0"):
        check_probability("t", 0, zero=False, optional=True)
    with pytest.raises(TypeError, match=r"p: expected a probability in \[0, 1\], found str '0.5'"):
        check_probability("p", "0.5")
    with pytest.raises(ValueError, match=r"r: expected a float in \[0, 1\), found 1.0"):
        check_number("r", 1.0, 0.0, 1.0, high_open=True)
    with pytest.raises(ValueError, match=r"speed: expected a float > 0, found 0"):
        check_number("speed", 0, 0.0, low_open=True)
    with pytest.raises(ValueError, match=r"w: expected a weight >= 0, found -1"):
        check_number("w", -1, 0.0, what="a weight")


def test_check_choice_bool_options():
    assert check_choice("norm", "batch", ("instance", "batch")) == "batch"
    with pytest.raises(ValueError, match=r"norm: expected one of \['instance', 'batch'\], found 'group'"):
        check_choice("norm", "group", ("instance", "batch"))
    with pytest.raises(TypeError, match="flag: expected a bool, found int 1"):
        check_bool("flag", 1)
    defaults = {"arch": "small_cnn", "val_fraction": 0.2}
    assert check_options("opts", None, defaults) is None and check_options("opts", {"arch": "x"}, defaults)
    with pytest.raises(ValueError, match=r"opts: expected keys among \['arch', 'val_fraction'\], found unknown"):
        check_options("opts", {"depth": 3}, defaults)
    with pytest.raises(ValueError, match=r"opts: expected val_fraction in \[0, 1\)"):
        check_options("opts", {"val_fraction": 1}, defaults)
    with pytest.raises(TypeError, match="opts: expected None or a dict of classifier settings, found list"):
        check_options("opts", [1], defaults)


def test_check_config_fields(tmp_path):
    good = {"image_size": 28, "channels": 1, "num_classes": 2, "class_names": ["a", "b"]}
    assert check_config_fields(good, tmp_path, ("image_size", "channels"), names="class_names") is good
    with pytest.raises(ValueError, match=r"config\.json': channels: expected a positive int, found 'x'"):
        check_config_fields({**good, "channels": "x"}, tmp_path, ("channels",))
    with pytest.raises(ValueError, match=r"class_names: expected 2 names \(num_classes\), found 1"):
        check_config_fields({**good, "class_names": ["a"]}, tmp_path, names="class_names")


def test_value_range_rule():
    assert check_value_range(torch.tensor([-1.0, 0.5])) == (-1.0, 1.0)
    assert check_value_range(torch.tensor([0.2, 0.5]), value_range=(-1, 1)) == (-1.0, 1.0)  # stated: bounds only
    assert check_value_range(torch.tensor([0.0, 1.0]), value_range=(0, 1)) == (0.0, 1.0)
    assert check_value_range(torch.zeros(3)) == (-1.0, 1.0)  # all zero: no evidence of either range
    with pytest.raises(ValueError, match=r"x: values look like \[0, 1\] data \(min 0.000, max 1.000\).*; do this"):
        check_value_range(torch.tensor([0.0, 1.0]), "x", fix="do this")
    with pytest.raises(ValueError, match=r"x: expected float pixels in \[-1, 1\], found range \[0, 255\]"):
        check_value_range(torch.tensor([0.0, 255.0]), "x")
    with pytest.raises(ValueError, match=r"value_range: expected \(0, 1\) or \(-1, 1\), found \(0, 255\)"):
        check_value_range(torch.zeros(1), value_range=(0, 255))
