"""Translator transforms inside real torchvision v2, albumentations and MONAI pipelines (tiny untrained nets)."""

import os
import pickle

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no online version check in tests

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from synthaug.augment import (  # noqa: E402
    AlbumentationsOnTensors,
    GANTransform,
    GANTranslate,
    MixedDataset,
    RandGANTranslate,
    RandGANTranslated,
    SyntheticDataset,
)
from synthaug.data import ImageDataset  # noqa: E402
from synthaug.models import GeneratorModel, TranslatorModel  # noqa: E402
from synthaug.nets import create_net  # noqa: E402
from synthaug.utils import seed_worker  # noqa: E402


def make_translator(path, channels=1, image_size=28, kind="cyclegan"):
    """A tiny untrained translator directory: both directions for ``kind="cyclegan"``, else one-sided (A2B)."""
    torch.manual_seed(0)
    kw = dict(in_channels=channels, out_channels=channels, ngf=8, n_blocks=2)
    names = ["G_A2B", "G_B2A"] if kind == "cyclegan" else ["G_A2B"]
    cfg = {"format": "synthaug", "kind": kind, "image_size": image_size, "channels_a": channels,
           "channels_b": channels}
    TranslatorModel({n: create_net("resnet", **kw) for n in names}, cfg, device="cpu").save_pretrained(path)
    return str(path)


def make_generator(path):
    kw = dict(num_classes=2, image_size=28, channels=1, z_dim=8, base_channels=8, max_channels=8)
    cfg = {"format": "synthaug", "kind": "cgan", "image_size": 28, "channels": 1, "num_classes": 2,
           "class_names": ["a", "b"], "nets": {"generator": {"arch": "dcgan", "kwargs": kw}}}
    return GeneratorModel(create_net("dcgan", **kw), cfg, device="cpu").save_pretrained(path)


@pytest.fixture(scope="module")
def gray(tmp_path_factory):
    return make_translator(tmp_path_factory.mktemp("t") / "gray")


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    return make_translator(tmp_path_factory.mktemp("t") / "rgb", channels=3, image_size=32)


def reference(path, x01, direction="A2B"):
    """What the translator makes of float NCHW images in [0, 1]."""
    m = TranslatorModel.from_pretrained(path, device="cpu")
    return (m.translate(x01 * 2 - 1, direction=direction) + 1) / 2


def unit_images(n=1, c=1, size=28, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- torchvision v2
def test_tv_types_dtypes_and_ranges(gray, rgb):
    x = unit_images()
    ref = reference(gray, x)[0]
    pipe = v2.Compose([v2.RandomHorizontalFlip(p=0.0), GANTransform(gray, p=1.0)])
    out = pipe(tv_tensors.Image(x[0]))
    assert type(out) is tv_tensors.Image and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1 and torch.allclose(out, ref, atol=1e-5)
    plain = pipe(x[0])
    assert type(plain) is torch.Tensor and torch.allclose(plain, ref, atol=1e-5)
    u8 = (x[0] * 255).round().to(torch.uint8)
    out8 = pipe(tv_tensors.Image(u8))
    assert type(out8) is tv_tensors.Image and out8.dtype == torch.uint8
    ref8 = (reference(gray, u8[None].float() / 255)[0] * 255).round().to(torch.uint8)
    assert (out8.int() - ref8.int()).abs().max() <= 1
    batch = pipe(tv_tensors.Image(unit_images(4)))  # (N, C, H, W) works too
    assert batch.shape == (4, 1, 28, 28)
    pil = pipe(Image.fromarray(u8[0].numpy(), mode="L"))
    assert isinstance(pil, Image.Image) and pil.mode == "L" and pil.size == (28, 28)
    assert (torch.from_numpy(np.array(pil)).int() - ref8[0].int()).abs().max() <= 1
    rgb_img = Image.fromarray((unit_images(c=3, size=40)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    out_rgb = GANTransform(rgb, p=1.0)(rgb_img)  # 40 px in, resized to the 32 px translator and back
    assert out_rgb.mode == "RGB" and out_rgb.size == (40, 40)


def test_tv_probability_identity_and_determinism(gray):
    x = tv_tensors.Image(unit_images()[0])
    mask = tv_tensors.Mask(torch.zeros(28, 28, dtype=torch.uint8))
    assert GANTransform(gray, p=0.0)(x) is x  # p=0: the very same object
    out, m = GANTransform(gray, p=1.0)(x, mask)
    assert not torch.equal(out, x) and m is mask  # masks pass through untouched
    t = GANTransform(gray, p=0.5)

    def decisions():
        return [not torch.equal(t(x), x) for _ in range(24)]

    torch.manual_seed(123)
    first = decisions()
    torch.manual_seed(123)
    assert decisions() == first and 0 < sum(first) < 24


def test_tv_errors(gray, tmp_path):
    t = GANTransform(gray, p=1.0)
    with pytest.raises(ValueError, match=r"inpt: expected intensities in \[0, 1\]"):
        t(torch.full((1, 28, 28), 2.0))
    with pytest.raises(ValueError, match="inpt: expected 1 channel"):
        t(torch.rand(3, 28, 28))
    with pytest.raises(ValueError, match="direction"):
        GANTransform(gray, direction="A2C")
    with pytest.raises(ValueError, match="p: expected"):
        GANTransform(gray, p=1.5)
    path = make_generator(tmp_path / "g")
    with pytest.raises(TypeError, match="SyntheticDataset"):
        GANTransform(GeneratorModel.from_pretrained(path, device="cpu"))
    with pytest.raises(ValueError, match="SyntheticDataset"):
        GANTransform(path)


# ----------------------------------------------------------------------------- albumentations
def test_albu_dtypes_shapes_and_probability(gray, rgb):
    x = unit_images()[0, 0].numpy()  # HW float32
    ref = reference(gray, torch.from_numpy(x)[None, None])[0, 0].numpy()
    pipe = A.Compose([A.HorizontalFlip(p=0.0), GANTranslate(gray, p=1.0)], seed=0)
    for img in (x, x[..., None]):
        out = pipe(image=img)["image"]
        assert out.dtype == np.float32 and out.shape == img.shape
        assert 0 <= out.min() and out.max() <= 1 and np.allclose(out.reshape(28, 28), ref, atol=1e-5)
    u8 = (x * 255).round().astype(np.uint8)[..., None]
    out8 = pipe(image=u8)["image"]
    assert out8.dtype == np.uint8 and out8.shape == (28, 28, 1)
    rgb8 = (unit_images(c=3, size=32)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    out_rgb = A.Compose([GANTranslate(rgb, p=1.0)])(image=rgb8)["image"]
    assert out_rgb.dtype == np.uint8 and out_rgb.shape == (32, 32, 3) and not np.array_equal(out_rgb, rgb8)
    same = A.Compose([GANTranslate(gray, p=0.0)])(image=u8)["image"]
    assert np.array_equal(same, u8)
    batch = A.Compose([GANTranslate(gray, p=1.0)])(images=np.stack([u8, u8]))["images"]
    assert batch.shape == (2, 28, 28, 1) and np.array_equal(batch[0], out8)
    with pytest.raises(ValueError, match=r"img: expected intensities in \[0, 1\]"):
        pipe(image=x * 3)


def test_albu_seeded_decisions_serialisation_and_pickle(gray):
    u8 = (unit_images()[0, 0].numpy() * 255).astype(np.uint8)

    def decisions(pipe):
        return [not np.array_equal(pipe(image=u8)["image"], u8) for _ in range(24)]

    first = decisions(A.Compose([GANTranslate(gray, p=0.5)], seed=137))
    assert decisions(A.Compose([GANTranslate(gray, p=0.5)], seed=137)) == first and 0 < sum(first) < 24
    pipe = A.Compose([GANTranslate(gray, direction="B2A", p=1.0)], seed=1)
    d = A.to_dict(pipe)
    args = d["transform"]["transforms"][0]
    assert args["model_path"] == gray and args["direction"] == "B2A" and args["device"] == "cpu" and args["p"] == 1
    back = A.from_dict(d)
    assert isinstance(back.transforms[0], GANTranslate)
    assert np.array_equal(back(image=u8)["image"], pipe(image=u8)["image"])
    t = pipe.transforms[0]
    t(image=u8)  # loads the weights in this process
    clone = pickle.loads(pickle.dumps(t))
    assert clone._handle._cpu is None  # weights are not pickled; reloaded lazily
    assert np.array_equal(clone(image=u8)["image"], t(image=u8)["image"])


def test_seed_worker_gives_each_worker_its_own_albumentations_stream(gray, tmp_path):
    """albumentations does not reseed per worker: seed_worker + dataset.reseed fixes that."""
    real = ImageDataset(unit_images(16, seed=3) * 2 - 1, torch.arange(16) % 2, ["a", "b"])
    syn = SyntheticDataset(make_generator(tmp_path / "g"), n=16, seed=0)
    plain = MixedDataset(real, syn, ratio=0.5)
    base = torch.stack([plain[i][0] for i in range(len(plain))])

    def run(worker_init_fn, seed):
        aug = AlbumentationsOnTensors(A.Compose([GANTranslate(gray, p=0.5)], seed=137))
        mix = MixedDataset(real, syn, ratio=0.5, transform=aug)
        loader = DataLoader(mix, batch_size=8, num_workers=2, worker_init_fn=worker_init_fn,
                            generator=torch.Generator().manual_seed(seed))
        x = torch.cat([b for b, _ in loader])
        return ((x - base).abs().amax(dim=(1, 2, 3)) > 2e-2).view(4, 8)  # rows: batches 0..3

    without = run(None, 0)  # batches 0, 2 -> worker 0; 1, 3 -> worker 1: identical streams
    assert torch.equal(without[0], without[1]) and torch.equal(without[2], without[3])
    with_reseed = run(seed_worker, 0)
    assert not torch.equal(with_reseed[0], with_reseed[1])
    assert torch.equal(run(seed_worker, 0), with_reseed)  # same base seed: same decisions
    assert not torch.equal(run(seed_worker, 1), with_reseed)


# ----------------------------------------------------------------------------- all adapters
@pytest.mark.parametrize("kind", ["cut", "fastcut", "pix2pix"])
def test_one_sided_translators_refuse_b2a_as_the_model_does(kind, tmp_path):
    path = make_translator(tmp_path / kind, kind=kind)
    one_sided = (rf"direction: this '{kind}' translator is one-sided \(A2B only\), found 'B2A'; for B -> A train "
                 "one with the domains swapped")
    with pytest.raises(ValueError, match=one_sided):
        TranslatorModel.from_pretrained(path, device="cpu").translate(torch.zeros(1, 1, 28, 28), direction="B2A")
    for make in (lambda: GANTransform(path, direction="B2A"), lambda: GANTranslate(path, direction="B2A"),
                 lambda: RandGANTranslate(path, direction="B2A"),
                 lambda: RandGANTranslated("image", path, direction="B2A")):
        with pytest.raises(ValueError, match=one_sided):
            make()
    assert GANTransform(path, p=1.0)(unit_images()[0]).shape == (1, 28, 28)  # A2B works
    with pytest.raises(ValueError, match=r"direction: expected one of \['A2B'\], found 'A2C'"):
        GANTranslate(path, direction="A2C")


# ----------------------------------------------------------------------------- MONAI
def test_monai_array_transform(gray):
    from monai.data import MetaTensor

    x = unit_images()[0]
    ref = reference(gray, x[None])[0]
    meta = MetaTensor(x.clone(), affine=torch.eye(4) * 2, meta={"filename_or_obj": "scan.nii.gz"})
    t = RandGANTranslate(gray, prob=1.0)
    out = t(meta)
    assert isinstance(out, MetaTensor) and out.meta["filename_or_obj"] == "scan.nii.gz"
    assert torch.equal(out.affine, meta.affine) and out.dtype == torch.float32
    assert torch.allclose(out.as_tensor(), ref, atol=1e-5)
    arr = x.numpy().astype(np.float64)
    out_np = t(arr)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float64 and out_np.shape == (1, 28, 28)
    assert RandGANTranslate(gray, prob=0.0)(meta) is meta
    r = RandGANTranslate(gray, prob=0.5)

    def decisions():
        return [not torch.equal(r(x), x) for _ in range(24)]

    r.set_random_state(seed=5)
    first = decisions()
    r.set_random_state(seed=5)
    assert decisions() == first and 0 < sum(first) < 24
    with pytest.raises(ValueError, match=r"img: expected intensities in \[0, 1\]"):
        t(x * 255)
    with pytest.raises(TypeError, match="ScaleIntensity"):
        t((x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="channel-first 2-D"):
        t(x[None])


def test_monai_dict_transform_one_decision_for_all_keys(gray):
    x, x2 = unit_images(seed=1)[0], unit_images(seed=2)[0]
    t = RandGANTranslated(["image", "other"], gray, prob=0.5)
    t.set_random_state(seed=0)
    flips = []
    for _ in range(16):
        d = t({"image": x, "other": x2, "label": 1})
        a, b = not torch.equal(d["image"], x), not torch.equal(d["other"], x2)
        assert a == b and d["label"] == 1
        flips.append(a)
    assert 0 < sum(flips) < 16
    t.set_random_state(seed=0)
    again = [not torch.equal(t({"image": x, "other": x2})["image"], x) for _ in range(16)]
    assert again == flips
    with pytest.raises(KeyError):
        RandGANTranslated(["image", "missing"], gray, prob=1.0)({"image": x})
    assert "image" in RandGANTranslated(["image", "missing"], gray, prob=1.0, allow_missing_keys=True)({"image": x})


def test_monai_compose_cachedataset_dataloader(gray):
    from monai.data import CacheDataset, MetaTensor
    from monai.data import DataLoader as MonaiLoader
    from monai.transforms import Compose, EnsureTyped, ScaleIntensityd

    raw = [{"image": (unit_images(seed=i)[0].numpy() * 300.0 + 20.0), "label": i % 2} for i in range(6)]
    pipe = Compose([EnsureTyped(keys="image"), ScaleIntensityd(keys="image"),
                    RandGANTranslated(keys="image", model_path=gray, prob=1.0)])
    ds = CacheDataset(raw, transform=pipe, num_workers=1, progress=False)
    scaled = [Compose([EnsureTyped(keys="image"), ScaleIntensityd(keys="image")])(dict(r))["image"] for r in raw]
    for i in range(6):  # the cache holds the deterministic part only
        assert torch.allclose(torch.as_tensor(ds._cache[i]["image"]), scaled[i].as_tensor())
    ref = reference(gray, torch.stack([s.as_tensor() for s in scaled]))
    for _ in range(2):
        batches = list(MonaiLoader(ds, batch_size=3, num_workers=2))
        images = torch.cat([b["image"] for b in batches])
        assert isinstance(batches[0]["image"], MetaTensor)
        assert torch.allclose(images.as_tensor(), ref, atol=1e-5)
        assert torch.cat([b["label"] for b in batches]).tolist() == [0, 1, 0, 1, 0, 1]


def test_seed_worker_reseeds_monai_transforms_per_worker():
    from monai.data import Dataset
    from monai.transforms import RandomizableTransform

    class Draw(RandomizableTransform):
        def __call__(self, x):
            return torch.tensor(self.R.rand())

    from synthaug.utils import seed_worker

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(Dataset(list(range(4)), Draw()), batch_size=1, num_workers=2,
                                         worker_init_fn=seed_worker)
    draws = [float(b) for b in loader]
    assert draws[0] != draws[1]  # items 0 and 1 come from different workers: different random streams
