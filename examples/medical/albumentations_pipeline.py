"""An albumentations pipeline with a GAN translator next to classical transforms, in a torch Dataset and a
2-worker DataLoader with per-worker seeding; saves a PNG grid of augmented samples.

    python examples/medical/albumentations_pipeline.py           # ~2-5 min on 2 CPU cores (600 translator steps)
    python examples/medical/albumentations_pipeline.py --quick   # smoke run, well under a minute
    python examples/medical/albumentations_pipeline.py --model runs/my_translator/model   # reuse a translator

The translator is a TOY that only shows the plumbing: a small CycleGAN trained for a few hundred steps between
raw BreastMNIST images (domain A) and gamma-darkened ones (domain B, other images: unpaired). In practice
you would train one between two real domains, e.g. two ultrasound machines.
albumentations 2.0.8 keeps its own random generators and does not reseed them in DataLoader workers: the
dataset below has a ``reseed`` method and ``worker_init_fn=synthaug.utils.seed_worker`` calls it, so each
worker (and each epoch) draws its own augmentations. The grid shows it: both workers get the same 8 images.
Outputs in ``--out``: ``albumentations_pipeline.png`` and the translator run.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no online version check at import

import albumentations as A  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from synthaug.augment import GANTranslate, reseed_transform  # noqa: E402
from synthaug.data import load_breastmnist  # noqa: E402
from synthaug.utils import get_device, save_grid, seed_everything, seed_worker, to_uint8_images  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/, for _common
from _common import train_toy_translator  # noqa: E402


class AlbumentationsDataset(Dataset):
    """uint8 HW images through an albumentations pipeline -> (float32 (1, H, W) in [-1, 1], label)."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = self.transform(image=self.images[i])["image"]
        return torch.from_numpy(img).float()[None] / 127.5 - 1.0, self.labels[i]

    def reseed(self, seed):  # called by synthaug.utils.seed_worker once in every worker
        reseed_transform(self.transform, seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny translator, few steps (smoke test)")
    ap.add_argument("--out", default="examples_out/albumentations_pipeline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu, for training (default: best available)")
    ap.add_argument("--model", default=None, help="a trained 1-channel translator directory to use instead")
    args = ap.parse_args()
    out, device = Path(args.out), get_device(args.device)
    seed_everything(args.seed)
    train = load_breastmnist("train")
    # The toy translator (examples/_common.py): raw images <-> the other half of them gamma-darkened.
    model_dir = args.model or train_toy_translator(train, out, gamma=2.0, quick=args.quick, device=device,
                                                   seed=args.seed)

    augment = A.Compose([
        GANTranslate(str(model_dir), p=0.5),   # runs on CPU in the workers; serialisable (A.to_dict)
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-15, 15), p=0.7),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
    ], seed=args.seed)
    images = to_uint8_images(train.images)[..., 0]  # (N, 28, 28) uint8, albumentations' boundary format
    ds = AlbumentationsDataset(images, train.labels, augment)
    loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=2, worker_init_fn=seed_worker,
                        generator=torch.Generator().manual_seed(args.seed))
    t0 = time.perf_counter()
    shapes = [tuple(x.shape) for x, y in loader]  # one training epoch's worth of augmented batches
    print(f"one epoch: {len(ds)} augmented images in {time.perf_counter() - t0:.1f} s, batches of {shapes[0]}")

    # The grid: the same 8 images go to worker 0 and to worker 1, for two epochs.
    idx = list(range(8)) * 2
    show = DataLoader(AlbumentationsDataset(images[idx], train.labels[idx], augment), batch_size=8,
                      num_workers=2, worker_init_fn=seed_worker)
    rows, names = [train.images[:8]], ["original"]
    for epoch in (1, 2):
        for worker, (x, _) in enumerate(show):
            rows.append(x)
            names.append(f"ep{epoch} worker{worker}")
    grid = save_grid(torch.cat(rows), out / "albumentations_pipeline.png", nrow=8, row_labels=names)
    print(f"wrote {grid}; translator: {model_dir}")


if __name__ == "__main__":
    main()
