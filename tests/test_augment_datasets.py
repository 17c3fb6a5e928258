"""SyntheticDataset, shards and MixedDataset on tiny untrained generators (CPU, a few seconds)."""

import json
import pickle
import subprocess
import sys

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from synthaug.augment import MixedDataset, SyntheticDataset, merge_manifests, to_model_range, write_shards
from synthaug.data import ImageDataset
from synthaug.models import GeneratorModel
from synthaug.nets import create_net
from synthaug.utils import seed_worker


def make_generator(path, image_size=28, channels=1, num_classes=2, seed=0):
    kw = dict(num_classes=num_classes, image_size=image_size, channels=channels, z_dim=16, base_channels=8,
              max_channels=16)
    torch.manual_seed(seed)
    cfg = {"format": "synthaug", "kind": "cgan", "image_size": image_size, "channels": channels,
           "num_classes": num_classes, "class_names": ["a", "b", "c"][:num_classes],
           "nets": {"generator": {"arch": "dcgan", "kwargs": kw}}}
    GeneratorModel(create_net("dcgan", **kw), cfg, device="cpu").save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def gen_dir(tmp_path_factory):
    return make_generator(tmp_path_factory.mktemp("models") / "g")


@pytest.fixture(scope="module")
def real():
    g = torch.Generator().manual_seed(1)
    images = torch.rand(40, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.tensor([0] * 30 + [1] * 10)
    return ImageDataset(images, labels, ["a", "b"])


def stack(items):
    return torch.stack([it[0] for it in items]), torch.stack([it[1] for it in items])


# ----------------------------------------------------------------------------- package
def test_import_does_not_load_albumentations_or_monai():
    code = ("import sys, synthaug.augment as a; a.SyntheticDataset; a.MixedDataset; "
            "print('albumentations' in sys.modules, 'monai' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_shard_format_module_does_not_import_the_datasets():
    code = "import sys, synthaug.augment.shards; print('synthaug.augment.datasets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"]


# ----------------------------------------------------------------------------- SyntheticDataset
def test_memory_items_types_and_balance(gen_dir):
    ds = SyntheticDataset(gen_dir, n=11, seed=3)
    img, y = ds[0]
    assert img.dtype == torch.float32 and img.shape == (1, 28, 28) and y.dtype == torch.int64 and y.ndim == 0
    assert -1 <= float(ds.images.min()) and float(ds.images.max()) <= 1
    assert ds.class_counts() == {"a": 6, "b": 5} and len(ds) == 11
    assert ds.image_size == (28, 28) and ds.channels == 1 and ds.num_classes == 2


def test_per_class_counts_by_name_and_index(gen_dir):
    assert SyntheticDataset(gen_dir, per_class={"b": 3}, mode="on_the_fly").class_counts() == {"a": 0, "b": 3}
    assert SyntheticDataset(gen_dir, per_class={0: 2, 1: 1}, mode="on_the_fly").class_counts() == {"a": 2, "b": 1}
    assert SyntheticDataset(gen_dir, per_class=4, mode="on_the_fly").class_counts() == {"a": 4, "b": 4}
    with pytest.raises(ValueError, match="per_class.*class names"):
        SyntheticDataset(gen_dir, per_class={"zebra": 3})
    with pytest.raises(ValueError, match="n / per_class"):
        SyntheticDataset(gen_dir, n=3, per_class=2)
    with pytest.raises(ValueError, match="mode"):
        SyntheticDataset(gen_dir, n=3, mode="lazy")
    with pytest.raises(TypeError, match="generator"):
        SyntheticDataset(torch.nn.Linear(2, 2), n=3)


def test_on_the_fly_same_index_same_image(gen_dir):
    mem = SyntheticDataset(gen_dir, n=20, seed=5, batch_size=8)
    fly = SyntheticDataset(gen_dir, n=20, seed=5, batch_size=8, mode="on_the_fly")
    one = torch.stack([fly[i][0] for i in range(20)])
    order = [17, 3, 9, 0, 12, 8]
    batch, labels = stack(fly.__getitems__(order))
    assert torch.allclose(batch, one[order], atol=1e-6, rtol=0)  # same latents; rounding may differ
    assert torch.equal(labels, mem.labels[order])
    assert torch.allclose(one, mem.images, atol=1e-6, rtol=0)
    again = SyntheticDataset(gen_dir, n=20, seed=5, batch_size=8, mode="on_the_fly")
    assert torch.equal(stack(again.__getitems__(order))[0], batch)  # same request, bitwise
    other = SyntheticDataset(gen_dir, n=20, seed=6, batch_size=8, mode="on_the_fly")
    assert not torch.allclose(stack(other.__getitems__(order))[0], batch)
    # an index keeps its image when the set grows (latents are drawn per whole block)
    bigger = SyntheticDataset(gen_dir, n=37, seed=5, batch_size=8, mode="on_the_fly")
    assert torch.allclose(stack(bigger.__getitems__(range(20)))[0], one, atol=1e-6, rtol=0)
    # with a block cache whole blocks are generated: bitwise equal to memory mode
    cached = SyntheticDataset(gen_dir, n=20, seed=5, batch_size=8, mode="on_the_fly", cache_blocks=1)
    assert torch.equal(stack(cached.__getitems__([19, 2, 11, 4]))[0], mem.images[[19, 2, 11, 4]])


def test_on_the_fly_same_across_workers(gen_dir):
    fly = SyntheticDataset(gen_dir, n=24, seed=2, batch_size=8, mode="on_the_fly")
    direct = stack(fly.__getitems__(range(24)))[0]
    for bs in (5, 7):
        loader = DataLoader(fly, batch_size=bs, num_workers=2, worker_init_fn=seed_worker)
        got = torch.cat([x for x, _ in loader])
        assert torch.allclose(got, direct, atol=1e-6, rtol=0)
    loader = DataLoader(fly, batch_size=24, num_workers=2)
    assert torch.equal(next(iter(loader))[0], direct)  # identical request in a worker: bitwise


def test_path_model_is_loaded_lazily_and_pickles_without_weights(gen_dir):
    fly = SyntheticDataset(gen_dir, n=8, mode="on_the_fly")
    assert fly._handle._cpu is None and fly._handle._model is None
    fly[0]
    blob = pickle.dumps(fly)
    assert len(blob) < 20_000  # weights are not pickled
    clone = pickle.loads(blob)
    assert clone._handle._cpu is None
    assert torch.equal(clone[3][0], fly[3][0])


def test_transform_and_reseed(gen_dir):
    calls = []

    class Seeded:
        def __call__(self, x):
            return -x

        def set_random_seed(self, seed):
            calls.append(seed)

    ds = SyntheticDataset(gen_dir, n=4, transform=Seeded())
    assert torch.equal(ds[1][0], -ds.images[1])
    ds.reseed(7)
    assert calls == [7]


# ----------------------------------------------------------------------------- shards
def test_shards_round_trip(gen_dir, tmp_path):
    ds = SyntheticDataset(gen_dir, n=10, seed=4, batch_size=4)
    manifest_path = ds.save_shards(tmp_path / "s", shard_size=4)
    m = json.loads(manifest_path.read_text())
    assert m["count"] == 10 and [s["count"] for s in m["shards"]] == [4, 4, 2]
    assert m["class_names"] == ["a", "b"] and m["image_size"] == [28, 28] and m["channels"] == 1
    assert m["seed"] == 4 and m["source_model"]["kind"] == "cgan" and len(m["shards"][0]["sha256"]) == 64
    back = SyntheticDataset.from_shards(tmp_path / "s")
    assert torch.equal(back.labels, ds.labels) and len(back) == 10
    assert (back.images - ds.images).abs().max() <= 1 / 127.5 + 1e-6  # uint8 quantisation only
    # on the fly writes the very same files
    fly = SyntheticDataset(gen_dir, n=10, seed=4, batch_size=4, mode="on_the_fly")
    m2 = json.loads(fly.save_shards(tmp_path / "f", shard_size=4).read_text())
    assert [s["sha256"] for s in m2["shards"]] == [s["sha256"] for s in m["shards"]]
    # tampering and missing files are caught
    shard = tmp_path / "s" / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        SyntheticDataset.from_shards(tmp_path / "s")
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="shard-00001"):
        SyntheticDataset.from_shards(tmp_path / "s")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        SyntheticDataset.from_shards(tmp_path / "nothing")


def test_two_ranks_equal_one_process(gen_dir, tmp_path):
    single = SyntheticDataset(gen_dir, per_class={"a": 7, "b": 4}, seed=9, batch_size=4, mode="on_the_fly")
    m1 = json.loads(single.save_shards(tmp_path / "one", shard_size=4).read_text())
    for rank in (1, 0):
        write_shards(gen_dir, tmp_path / "two", per_class={"a": 7, "b": 4}, seed=9, shard_size=4, rank=rank,
                     world_size=2, batch_size=4)
    assert sorted(p.name for p in (tmp_path / "two").glob("shard-*")) == [
        "shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors"]
    m2 = json.loads(merge_manifests(tmp_path / "two").read_text())
    assert m2["shards"] == m1["shards"] and m2["class_counts"] == m1["class_counts"] == [7, 4]
    a, b = SyntheticDataset.from_shards(tmp_path / "one"), SyntheticDataset.from_shards(tmp_path / "two")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    (tmp_path / "two" / "manifest-rank-00001-of-00002.json").unlink()
    with pytest.raises(ValueError, match="missing \\[1\\]"):
        merge_manifests(tmp_path / "two")
    with pytest.raises(ValueError, match="rank"):
        write_shards(gen_dir, tmp_path / "x", n=4, rank=2, world_size=2)


# ----------------------------------------------------------------------------- MixedDataset
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 0.75])
def test_ratio_gives_the_stated_share(gen_dir, real, ratio):
    mix = MixedDataset(real, gen_dir, ratio=ratio, seed=1)
    n_syn = int(mix.source.sum())
    target = ratio * len(mix)
    assert abs(n_syn - target) <= 1 and len(mix) == len(real) + n_syn
    assert mix.counts()["real"] == {"a": 30, "b": 10}
    # drawn from a generator, the synthetic part keeps the real 3:1 class mix
    expected = {0.0: {"a": 0, "b": 0}, 0.3: {"a": 13, "b": 4}, 0.5: {"a": 30, "b": 10}, 0.75: {"a": 90, "b": 30}}
    assert mix.counts()["synthetic"] == expected[ratio]


def test_ratio_draws_from_a_synthetic_dataset(gen_dir, real):
    syn = SyntheticDataset(gen_dir, per_class={"a": 35, "b": 25}, seed=2)
    mix = MixedDataset(real, syn, ratio=0.5, seed=3)  # real class mix 30:10 -> 30 a + 10 b from the pool
    assert len(mix) == 80 and len(set(mix.synthetic_index.tolist())) == 40
    assert mix.counts()["synthetic"] == {"a": 30, "b": 10}
    again = MixedDataset(real, syn, ratio=0.5, seed=3)
    assert torch.equal(mix.synthetic_index, again.synthetic_index)
    img, y = mix[45]
    j = int(mix.synthetic_index[5])
    assert torch.equal(img, syn.images[j]) and int(y) == int(syn.labels[j])
    even = MixedDataset(real, syn, ratio=0.5, seed=3, class_mix="balanced")
    assert even.counts()["synthetic"] == {"a": 20, "b": 20}
    with pytest.raises(ValueError, match="expected at least 70 samples of class 'a'"):
        MixedDataset(real, syn, ratio=0.7)


def test_balance_classes_and_flags(gen_dir, real):
    mix = MixedDataset(real, gen_dir, balance_classes=True, return_source=True)
    c = mix.counts()
    assert c["synthetic"] == {"a": 0, "b": 20} and c["total"] == {"a": 30, "b": 30}
    assert len(mix) == 60 and mix.source.tolist() == [False] * 40 + [True] * 20
    assert not mix.is_synthetic(0) and mix.is_synthetic(59)
    img, y, s = mix[50]
    assert bool(s) and int(y) == 1 and img.shape == (1, 28, 28)
    img, y, s = mix[3]
    assert not bool(s) and torch.equal(img, real.images[3])
    # from a SyntheticDataset with enough of each class
    syn = SyntheticDataset(gen_dir, per_class={"b": 25})
    assert MixedDataset(real, syn, balance_classes=True).counts()["synthetic"] == {"a": 0, "b": 20}
    with pytest.raises(ValueError, match="class 'b'"):
        MixedDataset(real, SyntheticDataset(gen_dir, per_class={"b": 5}), balance_classes=True)


def test_mixed_errors(gen_dir, real, tmp_path):
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"ratio: expected a float in \[0, 1\)"):
            MixedDataset(real, gen_dir, ratio=bad)
    with pytest.raises(ValueError, match="exactly one"):
        MixedDataset(real, gen_dir, ratio=0.5, balance_classes=True)
    with pytest.raises(ValueError, match="exactly one"):
        MixedDataset(real, gen_dir)
    cases = {"image_size": dict(image_size=32), "channels": dict(channels=3), "num_classes": dict(num_classes=3)}
    for key, kw in cases.items():
        bad = make_generator(tmp_path / key, **kw)
        with pytest.raises(ValueError, match=f"generator does not match the real data: expected {key}") as e:
            MixedDataset(real, bad, ratio=0.5)
        assert "in the generator" in str(e.value)
        MixedDataset(real, SyntheticDataset(bad, n=40), ratio=0.25, check=False, class_mix="balanced")  # check off
    renamed = ImageDataset(real.images, real.labels, ["b", "a"])
    with pytest.raises(ValueError, match="class_names"):
        MixedDataset(renamed, gen_dir, ratio=0.5)
    shards = SyntheticDataset(make_generator(tmp_path / "g32", image_size=32), n=8).save_shards(tmp_path / "s32")
    with pytest.raises(ValueError, match="image_size"):
        MixedDataset(real, SyntheticDataset.from_shards(shards.parent), ratio=0.1)


class PILDigits(Dataset):
    """torchvision-style: PIL images, int labels, ``classes``."""

    classes = ["a", "b"]

    def __init__(self, n=12):
        g = torch.Generator().manual_seed(0)
        self.x = (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8).numpy()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return Image.fromarray(self.x[i], mode="L"), i % 2


class UnitFloat(PILDigits):
    def __getitem__(self, i):
        return torch.from_numpy(self.x[i]).float()[None] / 255.0, i % 2


class Dicts(PILDigits):
    def __getitem__(self, i):
        return {"img": self.x[i][None].astype("float32") / 127.5 - 1, "lab": i % 2}


def test_real_datasets_of_other_shapes(gen_dir):
    pil = MixedDataset(PILDigits(), gen_dir, ratio=0.5)
    img, y = pil[0]
    assert img.dtype == torch.float32 and -1 <= img.min() and img.max() <= 1 and y.dtype == torch.int64
    expected = torch.from_numpy(PILDigits().x[0]).float()[None] / 127.5 - 1
    assert torch.allclose(img, expected)
    unit = MixedDataset(UnitFloat(), gen_dir, ratio=0.5, real_transform=to_model_range)
    assert torch.allclose(unit[0][0], expected, atol=1e-6)
    d = MixedDataset(Dicts(), gen_dir, ratio=0.25, image_key="img", label_key="lab")
    assert torch.allclose(d[1][0], torch.from_numpy(Dicts().x[1]).float()[None] / 127.5 - 1)
    assert d.counts()["real"] == {"a": 6, "b": 6}
    with pytest.raises(KeyError, match="image_key"):
        MixedDataset(Dicts(), gen_dir, ratio=0.25)


def test_real_data_in_the_other_range_is_refused_or_converted_explicitly(gen_dir):
    # a ToTensor-style [0, 1] dataset is not silently mixed with [-1, 1] synthetic images
    with pytest.raises(ValueError, match=r"real \(first 12 items\): values look like \[0, 1\] data .*"
                                         r"real_transform=synthaug.augment.to_model_range.*value_range=\(0, 1\)"):
        MixedDataset(UnitFloat(), gen_dir, ratio=0.5)
    unit = MixedDataset(UnitFloat(), gen_dir, ratio=0.5, value_range=(0, 1), return_source=True)
    assert torch.equal(unit[0][0], UnitFloat()[0][0])  # real items as they are
    syn = torch.stack([img for img, _, s in unit if s])
    assert len(syn) and 0 <= float(syn.min()) and float(syn.max()) <= 1 and float(syn.min()) < 0.5
    plain = MixedDataset(PILDigits(), gen_dir, ratio=0.5)
    assert torch.allclose(plain[len(plain) - 1][0], unit[len(unit) - 1][0] * 2 - 1, atol=1e-6)  # same samples
    pil = MixedDataset(PILDigits(), gen_dir, ratio=0.5, value_range=(0, 1))  # PIL / uint8 scaled to [0, 1]
    assert torch.allclose(pil[0][0], torch.from_numpy(PILDigits().x[0]).float()[None] / 255.0)
    with pytest.raises(ValueError, match=r"expected float pixels in \[0, 1\], found range \[-1"):
        MixedDataset(Dicts(), gen_dir, ratio=0.25, image_key="img", label_key="lab", value_range=(0, 1))
    with pytest.raises(ValueError, match=r"value_range: expected \(0, 1\) or \(-1, 1\), found \(0, 255\)"):
        MixedDataset(UnitFloat(), gen_dir, ratio=0.5, value_range=(0, 255))
    bright = [(torch.full((1, 28, 28), 0.5), i % 2) for i in range(4)]  # [-1, 1] data without a dark pixel
    with pytest.raises(ValueError, match="look like"):
        MixedDataset(bright, gen_dir, ratio=0.5)
    assert len(MixedDataset(bright, gen_dir, ratio=0.5, value_range=(-1, 1))) == 8  # stated: bounds only


def test_synthetic_entry_points_refuse_other_ranges(gen_dir):
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(ValueError, match=r"reference: values look like \[0, 1\] data.*x \* 2 - 1"):
        SyntheticDataset(gen_dir, n=2, drop_near_copies=0.3, reference=x)
    with pytest.raises(ValueError, match=r"images: expected float pixels in \[-1, 1\], found range \[2, 2\]; convert"):
        SyntheticDataset.from_tensors(torch.full((2, 1, 28, 28), 2.0), [0, 1], ["a", "b"])


def test_mixed_under_dataloader_with_two_workers(gen_dir, real):
    syn = SyntheticDataset(gen_dir, n=40, seed=1, mode="on_the_fly")
    mix = MixedDataset(real, syn, ratio=0.5, return_source=True, transform=v2.RandomHorizontalFlip(p=1.0),
                       class_mix="balanced")
    loader = DataLoader(mix, batch_size=16, shuffle=True, num_workers=2, worker_init_fn=seed_worker,
                        generator=torch.Generator().manual_seed(0))
    seen, n_syn = 0, 0
    for x, y, s in loader:
        assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert s.dtype == torch.bool and float(x.abs().max()) <= 1
        seen, n_syn = seen + len(x), n_syn + int(s.sum())
    assert seen == 80 and n_syn == 40
    plain = MixedDataset(real, syn, ratio=0.5, class_mix="balanced")
    batch = next(iter(DataLoader(mix, batch_size=80, num_workers=2)))
    want = torch.stack([plain[i][0].flip(-1) for i in range(80)])
    assert torch.allclose(batch[0], want, atol=1e-6, rtol=0)


# --- filtering and weighting ------------------------------------------------------------------------------
class _ByBrightness(torch.nn.Module):
    """A 'classifier' that calls an image class 1 when its mean is above 0 (confidently)."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([-10 * m, 10 * m], dim=1)


def test_sample_filter_confidence_and_distance():
    from synthaug.augment import SampleFilter

    bright, dark = torch.full((4, 1, 8, 8), 0.5), torch.full((4, 1, 8, 8), -0.5)
    images, labels = torch.cat([bright, dark]), torch.tensor([1, 1, 1, 1, 1, 1, 0, 0])
    keep = SampleFilter(_ByBrightness(), min_confidence=0.9)(images, labels)
    assert keep.tolist() == [True] * 4 + [False, False, True, True]
    ref = (torch.cat([bright + 0.01 * torch.arange(4).view(4, 1, 1, 1), dark]), torch.tensor([1] * 4 + [0] * 4))
    f = SampleFilter(encoder=lambda x: x.flatten(1), reference=ref, quantile=1.0)
    far = torch.full((1, 1, 8, 8), 0.99)
    mask = f(torch.cat([bright[:1], far]), torch.tensor([1, 1]))
    assert mask.tolist() == [True, False] and f.last_report[1]["dropped_atypical"] == 1
    with pytest.raises(ValueError, match="classifier / encoder"):
        SampleFilter()
    with pytest.raises(ValueError, match="encoder / reference"):
        SampleFilter(encoder=lambda x: x.flatten(1))


def test_synthetic_dataset_keep_replaces_rejected_samples(gen_dir):
    calls = []

    def keep_even_pixels(x, y):  # a deterministic, content-based filter that rejects about half
        calls.append(len(y))
        return (x.flatten(1).sum(1) * 1000).long() % 2 == 0

    syn = SyntheticDataset(gen_dir, per_class={"a": 6, "b": 4}, seed=3, keep=keep_even_pixels)
    assert syn.class_counts() == {"a": 6, "b": 4} and len(calls) >= 2
    assert bool(keep_even_pixels(syn.images, syn.labels).all())
    rep = syn.filter_report
    assert rep["a"]["kept"] == 6 and rep["a"]["generated"] >= 6 and 0 < rep["a"]["kept_fraction"] <= 1
    again = SyntheticDataset(gen_dir, per_class={"a": 6, "b": 4}, seed=3, keep=keep_even_pixels)
    assert torch.equal(again.images, syn.images)
    with pytest.warns(UserWarning, match="short"):
        none = SyntheticDataset(gen_dir, per_class={"a": 3, "b": 0}, seed=3, keep=lambda x, y: torch.zeros(len(y),
                                dtype=torch.bool), max_draws=2)
    assert len(none) == 0 and none.filter_report["a"]["kept"] == 0
    with pytest.raises(ValueError, match="keep"):
        SyntheticDataset(gen_dir, n=4, mode="on_the_fly", keep=keep_even_pixels)


def test_weighted_cross_entropy_matches_a_hand_computation():
    from synthaug.augment import weighted_cross_entropy

    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    got = weighted_cross_entropy(logits, y, torch.tensor([False, True, True]), 0.5)
    assert got.item() == pytest.approx(((per[0] + 0.5 * per[1] + 0.5 * per[2]) / 2.0).item())
    assert weighted_cross_entropy(logits, y, torch.zeros(3, dtype=torch.bool), 0.5).item() == \
        pytest.approx(per.mean().item())


def test_allow_short_takes_what_a_filtered_pool_has(gen_dir, real):
    syn = SyntheticDataset(gen_dir, per_class={"a": 2, "b": 25}, seed=2)
    with pytest.raises(ValueError, match="at least 30 samples of class 'a'"):
        MixedDataset(real, syn, ratio=0.5)
    with pytest.warns(UserWarning, match="short of"):
        mix = MixedDataset(real, syn, ratio=0.5, allow_short=True)
    assert mix.counts()["synthetic"] == {"a": 2, "b": 10} and mix.shortfall == {"a": 28}


def test_per_class_tops_up_chosen_classes(gen_dir, real):
    pool = SyntheticDataset(gen_dir, per_class={"a": 0, "b": 7}, seed=1)
    mix = MixedDataset(real, pool, per_class={"b": 5}, seed=2, return_source=True)
    assert mix.counts()["synthetic"] == {"a": 0, "b": 5} and len(mix) == 45
    assert MixedDataset(real, gen_dir, per_class={1: 3}).counts()["synthetic"] == {"a": 0, "b": 3}
    with pytest.raises(ValueError, match="expected class names"):
        MixedDataset(real, pool, per_class={"c": 1})
    with pytest.raises(ValueError, match="exactly one"):
        MixedDataset(real, pool, ratio=0.2, per_class={"b": 1})
    with pytest.raises(ValueError, match="count >= 0"):
        MixedDataset(real, pool, per_class={"b": -1})
