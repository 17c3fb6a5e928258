"""Shine -> rain with a CycleGAN on real outdoor photos, used as an albumentations transform with probability p,
compared side by side with albumentations' RandomRain.

    python examples/driving/rain_translation.py            # 64 px, 1500 steps: ~8-15 min on 2 CPU cores
    python examples/driving/rain_translation.py --quick    # 32 px, a few steps: a smoke run, not a result
    python examples/driving/rain_translation.py --model runs/showcase/weather/model   # reuse a trained translator

Data (shared data folder, ``$SYNTHAUG_DATA`` or ../shared/data): the Multi-class Weather Dataset,
``weather/mwd/train/shine`` (232 photos) as domain A and ``weather/mwd/train/rain`` (198) as domain B, resized
and centre-cropped to squares. The comparison translates held-out ``test/shine`` photos. In the pipeline,
``GANTranslate`` is an ordinary albumentations transform: it takes the model directory, so the pipeline
pickles cheaply to DataLoader workers and serialises with ``A.to_dict``. albumentations does not reseed per
worker: the dataset's ``reseed`` method, called by ``worker_init_fn=synthaug.utils.seed_worker``, does.
Outputs in ``--out``: ``rain_comparison.png`` (rows: shine | GAN rain | RandomRain | real rain) and
``pipeline_batch.png`` (a batch from the training pipeline), plus the translator run.
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no online version check at import

import albumentations as A  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from synthaug.augment import GANTranslate, reseed_transform  # noqa: E402
from synthaug.data import load_image_dir, shared_data_dir  # noqa: E402
from synthaug.models import TranslatorModel  # noqa: E402
from synthaug.train import CycleGANConfig, CycleGANRecipe, Trainer  # noqa: E402
from synthaug.utils import (get_device, save_grid, seed_everything, seed_worker, to_tensor_images,  # noqa: E402
                            to_uint8_images)


class Photos(Dataset):
    """uint8 HWC photos through an albumentations pipeline -> float32 CHW in [0, 1]."""

    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.transform(image=self.images[i])["image"]).permute(2, 0, 1)

    def reseed(self, seed):  # called by synthaug.utils.seed_worker once in every worker
        reseed_transform(self.transform, seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="32 px, tiny nets, a few steps (smoke test)")
    ap.add_argument("--out", default="examples_out/rain_translation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    ap.add_argument("--model", default=None, help="a trained shine -> rain translator directory (skips training)")
    ap.add_argument("--steps", type=int, default=None, help="CycleGAN steps (default 1500, --quick 10)")
    ap.add_argument("--p", type=float, default=0.5, help="probability that the pipeline makes a photo rainy")
    args = ap.parse_args()
    data = shared_data_dir()
    mwd = data / "weather" / "mwd" if data else None
    if mwd is None or not (mwd / "train" / "shine").is_dir():
        sys.exit("weather data not found: set SYNTHAUG_DATA to the shared data folder (weather/mwd/{train,test})")
    out, device, size = Path(args.out), get_device(args.device), 32 if args.quick else 64
    seed_everything(args.seed)

    shine, rain = (load_image_dir(mwd / "train" / c, size=size) for c in ("shine", "rain"))
    test_shine, test_rain = (load_image_dir(mwd / "test" / c, size=size) for c in ("shine", "rain"))
    print(f"train: {len(shine)} shine, {len(rain)} rain; test: {len(test_shine)} shine; {size} px")

    model_dir = args.model
    if model_dir is None:
        nets = (dict(ngf=8, n_blocks=2), dict(ndf=8, n_layers=2)) if args.quick else \
               (dict(ngf=16, n_blocks=6), dict(ndf=32, n_layers=3))
        cfg = CycleGANConfig(steps=args.steps or (10 if args.quick else 1500), g_kwargs=nets[0], d_kwargs=nets[1])
        recipe = CycleGANRecipe(shine, rain, cfg, device=device, seed=args.seed, names=("shine", "rain"))
        run = Trainer(recipe, out / f"cyclegan_{size}px", steps=cfg.steps, progress=not args.quick).fit()
        model_dir = run.model_dir
        print(f"CycleGAN: {run.step} steps -> {model_dir}")

    # Comparison on held-out test photos: the GAN's rain vs albumentations' RandomRain.
    held_out = test_shine.images[:8]
    gan_rain = TranslatorModel.from_pretrained(model_dir).translate(held_out, direction="A2B")
    random_rain = A.RandomRain(drop_length=size // 8, blur_value=3, brightness_coefficient=0.8, p=1.0)
    random_rain.set_random_seed(args.seed)
    albu = to_tensor_images(np.stack([random_rain(image=img)["image"] for img in to_uint8_images(held_out)]))
    grid = save_grid(torch.cat([held_out, gan_rain, albu, test_rain.images[:8]]), out / "rain_comparison.png",
                     nrow=8, row_labels=["shine", "GAN rain", "RandomRain", "real rain"])

    # A training pipeline: flip and crop, then rain with probability p, then float [0, 1].
    pipeline = A.Compose([A.HorizontalFlip(p=0.5), A.RandomResizedCrop(size=(size, size), scale=(0.7, 1.0)),
                          GANTranslate(str(model_dir), direction="A2B", p=args.p), A.ToFloat(max_value=255)],
                         seed=args.seed)
    photos = Photos(to_uint8_images(shine.images), pipeline)
    loader = DataLoader(photos, batch_size=16, shuffle=True, num_workers=2, worker_init_fn=seed_worker,
                        generator=torch.Generator().manual_seed(args.seed))
    t0 = time.perf_counter()
    batches = list(loader)
    print(f"one epoch through the pipeline: {len(photos)} photos in {time.perf_counter() - t0:.1f} s, "
          f"batches {tuple(batches[0].shape)} {batches[0].dtype}")
    batch = save_grid(batches[0] * 2 - 1, out / "pipeline_batch.png", nrow=8)
    print(f"wrote {grid} and {batch}")


if __name__ == "__main__":
    main()
