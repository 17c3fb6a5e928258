"""Tests of synthaug.data: in-memory datasets, npz loaders, image files and folders."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from synthaug.data import (
    ImageDataset,
    PairedDataset,
    breastmnist_path,
    from_arrays,
    load_breastmnist,
    load_digits,
    load_image_dir,
    load_image_folder,
    load_medmnist,
    load_npz,
    load_paired,
    load_unpaired,
    read_image,
    shared_data_dir,
    stratified_indices,
)
from synthaug.data import npz as npz_module

STEP = 1.0 / 127.5  # one uint8 level in [-1, 1] units


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path, format="PNG")
    return path


def _rgb(h: int, w: int, value=(10, 200, 30)) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def _class_folder(root: Path, layout: dict[str, int], size=(12, 16)) -> Path:
    for k, (cls, n) in enumerate(layout.items()):
        for i in range(n):
            _png(root / cls / f"{i}.png", _rgb(*size, value=(20 * k, 10 * i, 100)))
    return root


def _tiny(n: int = 6, classes: int = 2) -> ImageDataset:
    x = torch.linspace(-1, 1, n * 3 * 4 * 4).reshape(n, 3, 4, 4)
    return ImageDataset(x, torch.arange(n) % classes)


# --- shipped BreastMNIST -----------------------------------------------------------------------------
@pytest.mark.parametrize("split,n", [("train", 546), ("val", 78), ("test", 156)])
def test_breastmnist_shipped_splits(split, n):
    ds = load_breastmnist(split)
    assert len(ds) == n
    assert ds.class_names == ["malignant", "normal/benign"] and ds.num_classes == 2
    assert ds.images.shape == (n, 1, 28, 28) and ds.channels == 1 and ds.image_size == (28, 28)
    assert ds.images.dtype == torch.float32 and ds.labels.dtype == torch.int64
    assert float(ds.images.min()) >= -1.0 and float(ds.images.max()) <= 1.0
    assert set(ds.labels.tolist()) == {0, 1}


def test_breastmnist_pixels_match_file():
    raw = np.load(breastmnist_path())
    ds = load_breastmnist("val")
    expected = torch.from_numpy(raw["val_images"]).float() / 127.5 - 1.0
    assert torch.equal(ds.images[:, 0], expected)
    assert ds.labels.tolist() == raw["val_labels"][:, 0].tolist()


def test_breastmnist_path_is_inside_package():
    p = breastmnist_path()
    assert p.name == "breastmnist.npz" and p.parent.name == "assets" and p.is_file()
    assert (p.parent / "NOTICE").read_text().count("CC BY 4.0") >= 1


def test_sha256_tamper_detected(tmp_path, monkeypatch):
    copy = tmp_path / "breastmnist.npz"
    shutil.copyfile(breastmnist_path(), copy)
    assert npz_module._check_sha256(copy, npz_module.BREASTMNIST_SHA256) == copy
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"expected sha256 3a22d2a4.*found [0-9a-f]{64}"):
        npz_module._check_sha256(copy, npz_module.BREASTMNIST_SHA256)
    monkeypatch.setattr(npz_module, "breastmnist_path", lambda: copy)
    with pytest.raises(ValueError, match="sha256"):
        load_breastmnist()


# --- stratified subsampling ---------------------------------------------------------------------------
def test_subsample_fraction_keeps_proportions_and_pairs():
    ds = load_breastmnist()
    sub = ds.subsample(fraction=0.2, seed=3)
    assert sub.class_counts() == {"malignant": round(0.2 * 147), "normal/benign": round(0.2 * 399)}
    idx = stratified_indices(ds.labels, fraction=0.2, seed=3)
    assert np.all(np.diff(idx) > 0)
    assert torch.equal(sub.images, ds.images[idx]) and torch.equal(sub.labels, ds.labels[idx])
    assert sub.class_names == ds.class_names


def test_subsample_deterministic_under_seed_and_differs_across_seeds():
    ds = load_breastmnist()
    a = stratified_indices(ds.labels, fraction=0.3, seed=7)
    b = stratified_indices(ds.labels, fraction=0.3, seed=7)
    c = stratified_indices(ds.labels, fraction=0.3, seed=8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and len(a) == len(c)
    assert torch.equal(ds.subsample(fraction=0.3, seed=7).images, ds.subsample(fraction=0.3, seed=7).images)


def test_subsample_n_per_class_and_tiny_fraction():
    ds = load_breastmnist()
    assert ds.subsample(n_per_class=10, seed=1).class_counts() == {"malignant": 10, "normal/benign": 10}
    assert ds.subsample(fraction=0.001).class_counts() == {"malignant": 1, "normal/benign": 1}
    assert len(ds.subsample(fraction=1.0)) == len(ds)
    loaded = load_breastmnist("train", n_per_class=5, seed=2)
    assert loaded.class_counts() == {"malignant": 5, "normal/benign": 5}


@pytest.mark.parametrize("fraction", [0, 0.0, 1.5, -0.1])
def test_subsample_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"fraction: expected a float in \(0, 1\], found"):
        _tiny().subsample(fraction=fraction)


def test_subsample_n_per_class_too_large_names_class():
    ds = load_breastmnist()
    with pytest.raises(ValueError, match=r"n_per_class: expected at most 147 for class 'malignant'.*found "
                                         r"n_per_class=200"):
        ds.subsample(n_per_class=200)


def test_subsample_n_per_class_empty_class():
    ds = ImageDataset(torch.zeros(4, 1, 2, 2), [0, 0, 2, 2], ["a", "b", "c"])
    assert ds.class_counts() == {"a": 2, "b": 0, "c": 2}
    with pytest.raises(ValueError, match="class 'b'"):
        ds.subsample(n_per_class=1)


def test_subsample_needs_exactly_one_size():
    with pytest.raises(ValueError, match="exactly one"):
        _tiny().subsample()
    with pytest.raises(ValueError, match="exactly one"):
        _tiny().subsample(fraction=0.5, n_per_class=1)


# --- ImageDataset ---------------------------------------------------------------------------------------
def test_image_dataset_protocol_and_helpers():
    ds = _tiny(6, 3)
    x, y = ds[1]
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32 and y.dtype == torch.int64 and y.ndim == 0
    assert int(y) == 1 and torch.equal(ds[-1][0], ds.images[5])
    items = ds.__getitems__([0, 4])
    assert len(items) == 2 and torch.equal(items[1][0], ds.images[4]) and int(items[1][1]) == 1
    xb, yb = next(iter(DataLoader(ds, batch_size=4)))
    assert xb.shape == (4, 3, 4, 4) and yb.tolist() == [0, 1, 2, 0]
    assert ds.class_names == ["0", "1", "2"] and ds.class_counts() == {"0": 2, "1": 2, "2": 2}
    sub = ds.subset([5, 0])
    assert len(sub) == 2 and sub.labels.tolist() == [2, 0]
    with pytest.raises(IndexError):
        ds[6]


def test_summary_lists_name_shape_and_counts():
    text = load_breastmnist("test").summary()
    assert "breastmnist/test" in text and "156" in text and "(1, 28, 28)" in text
    assert "channels: 1" in text and "malignant" in text and "normal/benign" in text
    assert len(text.splitlines()) >= 5


def test_labels_out_of_range():
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 2\).*found maximum 2"):
        ImageDataset(torch.zeros(3, 1, 2, 2), [0, 1, 2], ["a", "b"])


def test_negative_labels():
    with pytest.raises(ValueError, match="labels: expected class indices >= 0, found minimum -1"):
        ImageDataset(torch.zeros(2, 1, 2, 2), [0, -1])


def test_float_labels_rejected():
    with pytest.raises(TypeError, match="labels: expected integer class indices, found dtype torch.float32"):
        ImageDataset(torch.zeros(2, 1, 2, 2), torch.tensor([0.0, 1.0]))


def test_nan_pixels():
    x = torch.zeros(2, 1, 3, 3)
    x[1, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="images: expected finite pixel values, found 1 NaN"):
        ImageDataset(x, [0, 1])


def test_check_images_finds_every_non_finite_value_and_no_false_one():
    from synthaug.utils import check_images

    x = torch.zeros(3, 1, 4, 4)
    x[0, 0, 0, 0], x[2, 0, 3, 3] = float("inf"), float("-inf")  # their sum is NaN, each alone is Inf
    with pytest.raises(ValueError, match="found 2 NaN/Inf"):
        check_images(x)
    # finite values whose sum overflows (float32, float16) are not mistaken for Inf
    for big in (torch.full((4, 1, 8, 8), 3e38), torch.full((4, 1, 64, 64), 6e4, dtype=torch.float16)):
        assert check_images(big) is big


def test_pixels_out_of_range():
    with pytest.raises(ValueError, match=r"images: expected pixel values in \[-1, 1\], found range \[0, 2\]"):
        ImageDataset(torch.tensor([0.0, 2.0]).reshape(1, 1, 1, 2), [0])


def test_mismatched_lengths():
    with pytest.raises(ValueError, match=r"labels: expected one label per image \(3\), found 2 labels"):
        ImageDataset(torch.zeros(3, 1, 2, 2), [0, 1])


def test_uint8_tensor_rejected_with_hint():
    with pytest.raises(TypeError, match="images: expected a float tensor.*from_arrays.*uint8"):
        ImageDataset(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), [0])


def test_wrong_ndim_and_empty():
    with pytest.raises(ValueError, match=r"images: expected a 4-D batch \(N, C, H, W\), found shape \(2, 2\)"):
        ImageDataset(torch.zeros(2, 2), [0, 0])
    with pytest.raises(ValueError, match="images: expected at least one non-empty image"):
        ImageDataset(torch.zeros(0, 1, 2, 2), [])


# --- from_arrays ----------------------------------------------------------------------------------------
def test_from_arrays_nhwc_uint8():
    arr = np.zeros((5, 6, 7, 3), dtype=np.uint8)
    arr[:, 0, 0, 1] = 255
    ds = from_arrays(arr, labels=np.array([0, 1, 1, 0, 1]), class_names=["a", "b"])
    assert ds.images.shape == (5, 3, 6, 7)
    assert float(ds.images[0, 1, 0, 0]) == 1.0 and float(ds.images[0, 0, 0, 0]) == -1.0
    assert ds.class_counts() == {"a": 2, "b": 3}


def test_from_arrays_hw_gray_single_image_one_class():
    ds = from_arrays(np.full((8, 9), 51, dtype=np.uint8))
    assert ds.images.shape == (1, 1, 8, 9) and ds.class_names == ["0"] and ds.labels.tolist() == [0]
    assert torch.allclose(ds.images, torch.tensor(51 / 127.5 - 1))


def test_from_arrays_float_unit_range_and_column_labels():
    arr = np.linspace(0, 1, 4 * 5 * 5, dtype=np.float32).reshape(4, 5, 5)  # NHW
    ds = from_arrays(arr, labels=np.array([[0], [1], [0], [1]]))
    assert ds.images.shape == (4, 1, 5, 5) and ds.labels.tolist() == [0, 1, 0, 1]
    assert float(ds.images.min()) == -1.0 and float(ds.images.max()) == 1.0


def test_from_arrays_torch_nchw():
    t8 = torch.randint(0, 256, (3, 3, 4, 4), dtype=torch.uint8)
    ds = from_arrays(t8, labels=torch.tensor([0, 1, 2]))
    assert ds.images.shape == (3, 3, 4, 4) and torch.allclose(ds.images, t8.float() / 127.5 - 1)
    tf = torch.rand(2, 1, 4, 4) * 2 - 1
    same = from_arrays(tf, value_range=(-1, 1))
    assert torch.equal(same.images, tf)


def test_from_arrays_signed_float_needs_value_range():
    with pytest.raises(ValueError, match=r"images: expected float pixels in \[0, 1\].*value_range=\(-1, 1\)"):
        from_arrays(torch.rand(2, 1, 4, 4) * 2 - 1)


def test_from_arrays_bad_value_range():
    with pytest.raises(ValueError, match=r"value_range: expected \(0, 1\) or \(-1, 1\), found \(0, 255\)"):
        from_arrays(np.zeros((2, 2), np.uint8), value_range=(0, 255))


def test_from_arrays_nan():
    arr = np.zeros((2, 4, 4), np.float32)
    arr[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        from_arrays(arr)


def test_from_arrays_mismatched_lengths():
    with pytest.raises(ValueError, match=r"labels: expected one label per image \(4\), found 3"):
        from_arrays(np.zeros((4, 5, 5), np.uint8), labels=[0, 1, 0])


# --- npz loaders: errors ---------------------------------------------------------------------------------
def _medmnist_like(path: Path, **override) -> Path:
    arrays = {f"{s}_images": np.zeros((n, 8, 8), np.uint8) for s, n in (("train", 6), ("val", 2), ("test", 3))}
    arrays.update({f"{s}_labels": (np.arange(n) % 3)[:, None].astype(np.uint8)
                   for s, n in (("train", 6), ("val", 2), ("test", 3))})
    arrays.update(override)
    np.savez(path, **arrays)
    return path


def test_medmnist_generic_file_and_rgb(tmp_path):
    ds = load_medmnist(_medmnist_like(tmp_path / "dermamnist.npz"), split="val")
    assert len(ds) == 2 and ds.class_names == ["0", "1", "2"] and ds.name == "dermamnist/val"
    rgb = _medmnist_like(tmp_path / "x.npz", train_images=np.full((6, 8, 8, 3), 255, np.uint8))
    ds = load_medmnist(rgb)
    assert ds.images.shape == (6, 3, 8, 8) and float(ds.images.min()) == 1.0


def test_npz_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: expected an existing .npz file"):
        load_medmnist(tmp_path / "nope.npz")


def test_npz_missing_keys(tmp_path):
    np.savez(tmp_path / "m.npz", train_images=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"expected keys \['train_images', 'train_labels'\].*found keys "
                                         r"\['train_images'\].*missing \['train_labels'\]"):
        load_medmnist(tmp_path / "m.npz")


def test_npz_wrong_dtype(tmp_path):
    path = _medmnist_like(tmp_path / "m.npz", train_images=np.zeros((6, 8, 8), np.float32))
    with pytest.raises(ValueError, match="train_images: expected dtype uint8, found float32"):
        load_medmnist(path)


def test_npz_wrong_shape(tmp_path):
    path = _medmnist_like(tmp_path / "m.npz", train_images=np.zeros((6, 8, 8, 2), np.uint8))
    with pytest.raises(ValueError, match=r"train_images: expected shape \(N, H, W\) or \(N, H, W, 3\), "
                                         r"found \(6, 8, 8, 2\)"):
        load_medmnist(path)


def test_npz_multilabel_rejected(tmp_path):
    path = _medmnist_like(tmp_path / "m.npz", train_labels=np.zeros((6, 14), np.uint8))
    with pytest.raises(ValueError, match=r"train_labels: expected labels of shape \(N,\) or \(N, 1\), "
                                         r"found \(6, 14\)"):
        load_medmnist(path)


def test_npz_label_count_mismatch(tmp_path):
    path = _medmnist_like(tmp_path / "m.npz", train_labels=np.zeros((5, 1), np.uint8))
    with pytest.raises(ValueError, match=r"train_labels: expected 6 labels \(one per image\), found 5"):
        load_medmnist(path)


def test_npz_bad_split():
    with pytest.raises(ValueError, match=r"split: expected one of \['train', 'val', 'test'\], found 'valid'"):
        load_breastmnist("valid")


def test_npz_not_a_zip(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="bad.npz"):
        load_medmnist(tmp_path / "bad.npz")


def test_load_npz_unknown_keys(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match=r"MedMNIST keys.*digits keys.*found \['x'\]"):
        load_npz(tmp_path / "other.npz")


def test_digits_synthetic_and_label_range(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 10, 10), np.uint8), labels=np.array([0, 9, 3, 3]))
    ds = load_digits(tmp_path / "d.npz", size=5)
    assert ds.images.shape == (4, 1, 5, 5) and ds.num_classes == 10
    np.savez(tmp_path / "e.npz", images=np.zeros((2, 10, 10), np.uint8), labels=np.array([0, 10]))
    with pytest.raises(ValueError, match=r"labels: expected digit labels in \[0, 9\], found range \[0, 10\]"):
        load_digits(tmp_path / "e.npz")


# --- real npz sets (../shared/data) -----------------------------------------------------------------------
def test_pneumoniamnist(shared_data):
    path = shared_data / "medmnist" / "pneumoniamnist.npz"
    for split, n in (("train", 4708), ("val", 524), ("test", 624)):
        ds = load_medmnist(path, split=split)
        assert len(ds) == n and ds.images.shape[1:] == (1, 28, 28)
    assert ds.class_names == ["normal", "pneumonia"]
    via_dispatch = load_npz(path, split="val", fraction=0.1, seed=0)
    assert via_dispatch.class_names == ["normal", "pneumonia"] and 45 <= len(via_dispatch) <= 60


def test_mnist_and_usps_meet_at_16_and_28(shared_data):
    mnist_path, usps_path = shared_data / "digits" / "mnist_t10k.npz", shared_data / "digits" / "usps.npz"
    mnist = load_digits(mnist_path)
    assert len(mnist) == 10000 and mnist.image_size == (28, 28) and mnist.class_names == [str(i) for i in range(10)]
    assert len(load_digits(mnist_path, split="test")) == 10000
    usps = load_digits(usps_path)
    assert len(usps) == 7291 and usps.image_size == (16, 16) and usps.channels == 1
    assert len(load_digits(usps_path, split="test")) == 2007
    assert len(load_digits(usps_path, split="all", n_per_class=20)) == 200
    m16 = load_digits(mnist_path, size=16, n_per_class=30)
    u28 = load_npz(usps_path, split="test", size=28)
    assert m16.images.shape == (300, 1, 16, 16) and u28.images.shape == (2007, 1, 28, 28)
    for ds in (m16, u28):
        assert -1.0 <= float(ds.images.min()) and float(ds.images.max()) <= 1.0


def test_shared_data_dir(shared_data, monkeypatch, tmp_path):
    monkeypatch.delenv("SYNTHAUG_DATA", raising=False)
    assert shared_data_dir() == shared_data
    monkeypatch.setenv("SYNTHAUG_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path.resolve()


# --- read_image: conversion rule and size policy -------------------------------------------------------
def test_read_16bit_png(tmp_path):
    arr = np.array([[0, 1000, 32768], [40000, 65535, 7]], dtype=np.uint16)
    path = _png(tmp_path / "deep.png", arr)
    assert Image.open(path).mode.startswith("I")
    x = read_image(path, channels=1)
    assert x.shape == (1, 2, 3) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.from_numpy(arr / 65535.0 * 2 - 1).float(), atol=1e-6)
    x3 = read_image(path, channels=3)
    assert x3.shape == (3, 2, 3) and torch.equal(x3[0], x3[2]) and torch.equal(x3[0], x[0])


def test_read_32bit_int_tiff_in_and_out_of_range(tmp_path):
    ok = np.array([[0, 65535], [300, 20000]], dtype=np.int32)
    Image.fromarray(ok, mode="I").save(tmp_path / "ok.tif")
    x = read_image(tmp_path / "ok.tif", channels=1)
    assert torch.allclose(x[0], torch.from_numpy(ok / 65535.0 * 2 - 1).float(), atol=1e-6)
    bad = np.array([[0, 70000]], dtype=np.int32)
    Image.fromarray(bad, mode="I").save(tmp_path / "bad.tif")
    with pytest.raises(ValueError, match=r"bad.tif.*16-bit range \[0, 65535\], found range \[0, 70000\]"):
        read_image(tmp_path / "bad.tif")


def test_read_rgba_composited_on_white(tmp_path):
    arr = np.zeros((2, 2, 4), np.uint8)
    arr[...] = (255, 0, 0, 128)  # half-transparent red
    arr[1, 1] = (0, 0, 255, 0)  # fully transparent blue -> white
    path = _png(tmp_path / "rgba.png", arr)
    x = read_image(path, channels=3)
    a = 128 / 255
    expected_rgb = np.array([255, 255 * (1 - a), 255 * (1 - a)])
    assert np.allclose((x[:, 0, 0].numpy() + 1) * 127.5, expected_rgb, atol=1.0)
    assert torch.allclose(x[:, 1, 1], torch.ones(3))
    gray = read_image(path, channels=1)
    luma = expected_rgb @ np.array([0.299, 0.587, 0.114])
    assert abs((float(gray[0, 0, 0]) + 1) * 127.5 - luma) <= 1.5
    assert float(gray[0, 1, 1]) == 1.0


def test_read_la_composited_on_white(tmp_path):
    arr = np.zeros((1, 2, 2), np.uint8)
    arr[0, 0] = (0, 0)  # transparent black -> white
    arr[0, 1] = (50, 255)  # opaque gray
    path = tmp_path / "la.png"
    Image.fromarray(arr, mode="LA").save(path)
    x = read_image(path, channels=1)
    assert float(x[0, 0, 0]) == 1.0 and abs(float(x[0, 0, 1]) - (50 / 127.5 - 1)) < 1e-6


def test_read_palette_with_and_without_transparency(tmp_path):
    idx = np.array([[0, 1], [1, 0]], np.uint8)
    palette = [0, 0, 255, 0, 255, 0] + [0] * (256 * 3 - 6)  # 0 = blue, 1 = green
    img = Image.fromarray(idx, mode="P")
    img.putpalette(palette)
    img.save(tmp_path / "opaque.png")
    img.save(tmp_path / "trans.png", transparency=0)
    opaque = read_image(tmp_path / "opaque.png")
    assert opaque[:, 0, 0].tolist() == [-1.0, -1.0, 1.0] and opaque[:, 0, 1].tolist() == [-1.0, 1.0, -1.0]
    trans = read_image(tmp_path / "trans.png")
    assert trans[:, 0, 0].tolist() == [1.0, 1.0, 1.0] and trans[:, 0, 1].tolist() == [-1.0, 1.0, -1.0]
    gray = read_image(tmp_path / "opaque.png", channels=1)  # luma of pure green: 255*587/1000 -> 150
    assert abs((float(gray[0, 0, 1]) + 1) * 127.5 - 0.587 * 255) <= 1.0


def test_read_png_named_jpg_and_gray_to_rgb(tmp_path):
    path = _png(tmp_path / "fake.jpg", np.full((5, 4), 200, np.uint8))
    x = read_image(path, channels=3)
    assert x.shape == (3, 5, 4) and torch.allclose(x, torch.tensor(200 / 127.5 - 1))


def test_read_applies_exif_orientation(tmp_path):
    img = Image.fromarray(_rgb(40, 80))  # stored 80 wide, 40 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert read_image(tmp_path / "rot.jpg").shape == (3, 80, 40)
    assert read_image(tmp_path / "rot.jpg", size=(20, 5)).shape == (3, 20, 5)


def test_read_size_policy_shorter_side_then_center_crop(tmp_path):
    arr = np.zeros((20, 60, 3), np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:40] = (0, 255, 0)
    arr[:, 40:] = (0, 0, 255)
    path = _png(tmp_path / "stripes.png", arr)
    x = read_image(path, size=20)
    assert x.shape == (3, 20, 20)
    assert torch.equal(x, torch.tensor([-1.0, 1.0, -1.0])[:, None, None].expand(3, 20, 20))
    assert read_image(path, size=10).shape == (3, 10, 10)
    assert read_image(path, size=(10, 30)).shape == (3, 10, 30)
    assert read_image(path).shape == (3, 20, 60)


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="path: expected an existing image file, found nothing at .*nope.png"):
        read_image(tmp_path / "nope.png")


def test_read_corrupt_file_names_it(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="could not read image file .*broken.png"):
        read_image(tmp_path / "broken.png")


def test_read_truncated_jpeg_names_it(tmp_path):
    full = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
    (tmp_path / "cut.jpg").write_bytes(full.read_bytes()[:400])
    with pytest.raises(ValueError, match="cut.jpg"):
        read_image(tmp_path / "cut.jpg")


def test_read_bad_size_and_channels(tmp_path):
    path = _png(tmp_path / "a.png", _rgb(4, 4))
    with pytest.raises(ValueError, match=r"size: expected None, an int or an \(h, w\) pair of ints, found 'big'"):
        read_image(path, size="big")
    with pytest.raises(ValueError, match="size: expected positive sizes, found 0"):
        read_image(path, size=0)
    with pytest.raises(ValueError, match=r"channels: expected 1 \(gray\) or 3 \(RGB\), found 4"):
        read_image(path, channels=4)


# --- folders -----------------------------------------------------------------------------------------------
def test_image_folder_synthetic(tmp_path):
    root = _class_folder(tmp_path / "set", {"zebra": 2, "ant": 3})
    (root / "ant" / "notes.txt").write_text("not an image")
    ds = load_image_folder(root, size=8)
    assert ds.class_names == ["ant", "zebra"] and ds.class_counts() == {"ant": 3, "zebra": 2}
    assert ds.images.shape == (5, 3, 8, 8) and ds.labels.tolist() == [0, 0, 0, 1, 1]
    picked = load_image_folder(root, size=8, channels=1, class_names=["zebra"])
    assert picked.class_names == ["zebra"] and picked.images.shape == (2, 1, 8, 8)


def test_image_folder_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="root: expected an existing folder, found nothing at"):
        load_image_folder(tmp_path / "absent", size=8)


def test_image_folder_empty_class(tmp_path):
    root = _class_folder(tmp_path / "set", {"a": 2})
    (root / "empty").mkdir()
    with pytest.raises(ValueError, match=r"in class folder '.*empty', found none"):
        load_image_folder(root, size=8)


def test_image_folder_without_class_folders(tmp_path):
    _png(tmp_path / "flat" / "x.png", _rgb(4, 4))
    with pytest.raises(ValueError, match=r"root: expected class sub-folders in .*flat.*found none"):
        load_image_folder(tmp_path / "flat", size=8)


def test_image_folder_unknown_class_name(tmp_path):
    root = _class_folder(tmp_path / "set", {"a": 1})
    with pytest.raises(ValueError, match=r"class_names: .*no folder for \['b'\].*present: \['a'\]"):
        load_image_folder(root, size=8, class_names=["a", "b"])


def test_image_folder_corrupt_raise_and_skip(tmp_path):
    root = _class_folder(tmp_path / "set", {"a": 2, "b": 2})
    (root / "b" / "zz_corrupt.png").write_bytes(b"definitely not a png")
    with pytest.raises(ValueError, match="zz_corrupt.png"):
        load_image_folder(root, size=8)
    with pytest.warns(UserWarning, match="skipping unreadable image .*zz_corrupt.png"):
        ds = load_image_folder(root, size=8, on_error="skip")
    assert ds.class_counts() == {"a": 2, "b": 2}


def test_image_folder_bad_on_error(tmp_path):
    root = _class_folder(tmp_path / "set", {"a": 1})
    with pytest.raises(ValueError, match="on_error: expected 'raise' or 'skip', found 'ignore'"):
        load_image_folder(root, size=8, on_error="ignore")


def test_image_folder_mixed_sizes_need_size(tmp_path):
    root = tmp_path / "set"
    _png(root / "a" / "1.png", _rgb(4, 4))
    _png(root / "a" / "2.png", _rgb(5, 4))
    with pytest.raises(ValueError, match="size: expected one image size .*pass size="):
        load_image_folder(root, size=None)
    assert load_image_folder(root, size=4).images.shape == (2, 3, 4, 4)


def test_image_dir_files_and_errors(tmp_path):
    folder = tmp_path / "shots"
    for i in range(3):
        _png(folder / f"s{i}.png", _rgb(6, 6, (i, i, i)))
    ds = load_image_dir(folder, size=4)
    assert len(ds) == 3 and ds.class_names == ["shots"] and ds.labels.tolist() == [0, 0, 0]
    assert len(load_image_dir(folder, size=4, files=["s2.png", "s0.png"])) == 2
    with pytest.raises(FileNotFoundError, match=r"files: .*1 missing: \['s9.png'\]"):
        load_image_dir(folder, size=4, files=["s0.png", "s9.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="path: expected image files .* in .*empty.*found none"):
        load_image_dir(tmp_path / "empty", size=4)
    with pytest.raises(FileNotFoundError, match="path: expected an existing folder"):
        load_image_dir(tmp_path / "missing", size=4)


def test_paired_ok(tmp_path):
    root = tmp_path / "pairs"
    (root / "B").mkdir(parents=True)
    for i in range(3):
        _png(root / "A" / f"p{i}.png", _rgb(8, 8, (i * 50, 0, 0)))
        Image.fromarray(_rgb(8, 8, (0, i * 50, 0))).save(root / "B" / f"p{i}.jpg", quality=95)  # stem match
    ds = load_paired(root, size=4, channels=3, channels_b=1)
    assert isinstance(ds, PairedDataset) and len(ds) == 3 and ds.names == ["p0", "p1", "p2"]
    a, b = ds[1]
    assert a.shape == (3, 4, 4) and b.shape == (1, 4, 4)
    assert torch.allclose(a[0], torch.tensor(50 / 127.5 - 1))
    xa, xb = next(iter(DataLoader(ds, batch_size=3)))
    assert xa.shape == (3, 3, 4, 4) and xb.shape == (3, 1, 4, 4)


def test_paired_mismatched_names(tmp_path):
    root = tmp_path / "pairs"
    for name in ("x", "y", "only_a"):
        _png(root / "A" / f"{name}.png", _rgb(4, 4))
    for name in ("x", "y", "only_b"):
        _png(root / "B" / f"{name}.png", _rgb(4, 4))
    with pytest.raises(ValueError, match=r"1 only in A: \['only_a'\] and 1 only in B: \['only_b'\]"):
        load_paired(root, size=4)


def test_paired_missing_side(tmp_path):
    _png(tmp_path / "pairs" / "A" / "x.png", _rgb(4, 4))
    with pytest.raises(ValueError, match=r"root: expected sub-folders A/ and B/ .*found \['A'\]"):
        load_paired(tmp_path / "pairs", size=4)


def test_paired_dataset_validates():
    with pytest.raises(ValueError, match=r"b: expected as many images as a \(2\), found 3"):
        PairedDataset(torch.zeros(2, 3, 4, 4), torch.zeros(3, 1, 4, 4))


def test_unpaired_root_and_two_folders(tmp_path):
    root = tmp_path / "dom"
    for i in range(3):
        _png(root / "A" / f"a{i}.png", _rgb(10, 12))
    for i in range(2):
        _png(root / "B" / "sub" / f"b{i}.png", _rgb(7, 9))  # class folders are flattened
    a, b = load_unpaired(root, size=6)
    assert (len(a), len(b)) == (3, 2) and a.class_names == ["A"] and b.class_names == ["B"]
    assert a.images.shape[1:] == b.images.shape[1:] == (3, 6, 6)
    a2, b2 = load_unpaired(root / "A", root / "B", size=(6, 8), channels=1)
    assert a2.images.shape == (3, 1, 6, 8) and len(b2) == 2


def test_unpaired_errors(tmp_path):
    _png(tmp_path / "dom" / "A" / "x.png", _rgb(4, 4))
    with pytest.raises(ValueError, match=r"a: expected sub-folders A/ and B/"):
        load_unpaired(tmp_path / "dom", size=4)
    with pytest.raises(FileNotFoundError, match="b: expected an existing folder"):
        load_unpaired(tmp_path / "dom" / "A", tmp_path / "nope", size=4)


# --- real image folders (../shared/data) ---------------------------------------------------------------
def test_weather_folder_32px(shared_data):
    root = shared_data / "weather" / "mwd" / "train"
    ds = load_image_folder(root, size=32)
    assert ds.class_names == ["cloudy", "rain", "shine", "sunrise"]
    assert ds.class_counts() == {"cloudy": 280, "rain": 198, "shine": 232, "sunrise": 334}
    assert ds.images.shape == (1044, 3, 32, 32) and ds.images.dtype == torch.float32
    assert -1.0 <= float(ds.images.min()) and float(ds.images.max()) <= 1.0
    # the odd files: RGBA PNG, L JPEG, PNG named .jpg
    for rel in ("shine/shine127.jpg", "cloudy/cloudy71.jpg", "sunrise/sunrise184.jpg"):
        assert read_image(root / rel, size=32).shape == (3, 32, 32)
        assert read_image(root / rel, size=32, channels=1).shape == (1, 32, 32)


def test_driving_flat_folders_32px(shared_data):
    clear = load_image_dir(shared_data / "driving" / "clear_nuscenes" / "images", size=32)
    assert clear.images.shape == (199, 3, 32, 32) and clear.num_classes == 1
    fog_root = shared_data / "driving" / "fog_dawn"
    lines = (fog_root / "unique_images.txt").read_text().split()
    names = [Path(line).name for line in lines]  # entries are original paths; the files lie flat in images/
    fog = load_image_dir(fog_root / "images", size=32, files=names)
    assert len(names) == 283 and fog.images.shape == (283, 3, 32, 32)
    assert -1.0 <= float(fog.images.min()) and float(fog.images.max()) <= 1.0
    assert not torch.isnan(fog.images).any()


def test_no_warnings_on_clean_real_folder(shared_data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_image_folder(shared_data / "weather" / "mwd" / "test", size=16, channels=1)
    assert ds.images.shape == (75, 1, 16, 16)


def test_rgb_digits_and_gray_digits_as_rgb(shared_data, tmp_path):
    mnistm = load_digits(shared_data / "digits" / "mnistm_25k.npz", split="test")
    assert mnistm.images.shape == (5000, 3, 32, 32) and mnistm.class_names == [str(i) for i in range(10)]
    assert mnistm.images.min() >= -1 and mnistm.images.max() <= 1 and mnistm.images.std() > 0.2
    gray = np.random.default_rng(0).integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "g.npz", images=gray, labels=np.arange(6) % 10)
    one = load_digits(tmp_path / "g.npz")
    three = load_digits(tmp_path / "g.npz", size=32, channels=3)
    assert one.images.shape == (6, 1, 28, 28) and three.images.shape == (6, 3, 32, 32)
    assert torch.equal(three.images[:, 0], three.images[:, 2])  # grey repeated, not recoloured
    assert torch.equal(load_digits(tmp_path / "g.npz", channels=1).images, one.images)
    with pytest.raises(ValueError, match="channels: expected 3 or None for the RGB digits"):
        load_digits(shared_data / "digits" / "mnistm_25k.npz", split="test", channels=1)
    with pytest.raises(ValueError, match="channels: expected 1, 3 or None"):
        load_digits(tmp_path / "g.npz", channels=2)
