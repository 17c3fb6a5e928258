"""Clear -> fog with a CycleGAN on real road frames, used as a torchvision v2 transform with probability p,
compared side by side with albumentations' RandomFog.

    python examples/driving/fog_translation.py            # 64 px, 1500 steps: ~8-15 min on 2 CPU cores
    python examples/driving/fog_translation.py --quick    # 32 px, a few steps: a smoke run, not a result
    python examples/driving/fog_translation.py --model runs/showcase/driving/model   # reuse a trained translator

Data (shared data folder, ``$SYNTHAUG_DATA`` or ../shared/data): domain A = 199 nuScenes front-camera frames
(``driving/clear_nuscenes/images``), domain B = the 283 unique DAWN fog photos listed in
``driving/fog_dawn/unique_images.txt`` (one path per line from the original DAWN archive; the file name is the
one in ``fog_dawn/images``). Images are resized and centre-cropped to squares. Eight clear frames spread over
the drives are held out of training and used for the comparison. The two sources differ in more than weather
(camera, city, framing), so the translator learns some of that too: look at the grid before you train on it.
Outputs in ``--out``: ``fog_comparison.png`` (rows: clear | GAN fog | RandomFog | real fog) and
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
from torchvision import tv_tensors  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from synthaug.augment import GANTransform  # noqa: E402
from synthaug.data import load_image_dir, shared_data_dir  # noqa: E402
from synthaug.models import TranslatorModel  # noqa: E402
from synthaug.train import CycleGANConfig, CycleGANRecipe, Trainer  # noqa: E402
from synthaug.utils import (get_device, save_grid, seed_everything, seed_worker, to_tensor_images,  # noqa: E402
                            to_uint8_images)


class Frames(Dataset):
    """uint8 CHW frames through a torchvision v2 pipeline (random draws from torch's RNG: reseeded per worker)."""

    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(tv_tensors.Image(self.images[i]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="32 px, tiny nets, a few steps (smoke test)")
    ap.add_argument("--out", default="examples_out/fog_translation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    ap.add_argument("--model", default=None, help="a trained clear -> fog translator directory (skips training)")
    ap.add_argument("--steps", type=int, default=None, help="CycleGAN steps (default 1500, --quick 10)")
    ap.add_argument("--p", type=float, default=0.5, help="probability that the pipeline fogs a frame")
    args = ap.parse_args()
    data = shared_data_dir()
    if data is None or not (data / "driving" / "fog_dawn" / "unique_images.txt").is_file():
        sys.exit("driving data not found: set SYNTHAUG_DATA to the shared data folder (driving/clear_nuscenes, "
                 "driving/fog_dawn)")
    out, device, size = Path(args.out), get_device(args.device), 32 if args.quick else 64
    seed_everything(args.seed)

    fog_dir = data / "driving" / "fog_dawn"
    fog_files = [Path(line.split()[0]).name for line in (fog_dir / "unique_images.txt").read_text().splitlines()
                 if line.strip()]
    clear = load_image_dir(data / "driving" / "clear_nuscenes" / "images", size=size)
    fog = load_image_dir(fog_dir / "images", size=size, files=fog_files)
    held = list(range(0, len(clear), 25))[:8]  # 8 frames spread over the drives, kept out of training
    train_clear = clear.subset([i for i in range(len(clear)) if i not in held])
    held_out = clear.images[held]
    print(f"clear: {len(train_clear)} training + {len(held)} held-out frames; fog: {len(fog)} photos; {size} px")

    if args.model:
        model = TranslatorModel.from_pretrained(args.model, device=device)
        model.check_compatible(channels_a=3, what="clear frames")
    else:
        nets = (dict(ngf=8, n_blocks=2), dict(ndf=8, n_layers=2)) if args.quick else \
               (dict(ngf=16, n_blocks=6), dict(ndf=32, n_layers=3))
        cfg = CycleGANConfig(steps=args.steps or (10 if args.quick else 1500), g_kwargs=nets[0], d_kwargs=nets[1])
        recipe = CycleGANRecipe(train_clear, fog, cfg, device=device, seed=args.seed, names=("clear", "fog"))
        run = Trainer(recipe, out / f"cyclegan_{size}px", steps=cfg.steps, progress=not args.quick).fit()
        model = TranslatorModel.from_pretrained(run.model_dir, device=device)
        print(f"CycleGAN: {run.step} steps -> {run.model_dir}")

    # Comparison on held-out frames: the GAN's fog vs albumentations' RandomFog (uint8 HWC at the boundary).
    gan_fog = model.translate(held_out, direction="A2B")
    random_fog = A.RandomFog(fog_coef_range=(0.3, 0.6), alpha_coef=0.1, p=1.0)
    random_fog.set_random_seed(args.seed)
    albu = to_tensor_images(np.stack([random_fog(image=img)["image"] for img in to_uint8_images(held_out)]))
    grid = save_grid(torch.cat([held_out, gan_fog, albu, fog.images[:8]]), out / "fog_comparison.png", nrow=8,
                     row_labels=["clear", "GAN fog", "RandomFog", "real fog"])

    # A training pipeline: flips and crops, then fog with probability p (torchvision v2, uint8 in and out).
    pipeline = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomResizedCrop(size, scale=(0.7, 1.0)),
                           GANTransform(model, direction="A2B", p=args.p), v2.ToDtype(torch.float32, scale=True)])
    frames = Frames(torch.from_numpy(to_uint8_images(train_clear.images, channels_last=False)), pipeline)
    loader = DataLoader(frames, batch_size=16, shuffle=True, num_workers=2, worker_init_fn=seed_worker,
                        generator=torch.Generator().manual_seed(args.seed))
    t0 = time.perf_counter()
    batches = list(loader)
    print(f"one epoch through the pipeline: {len(frames)} frames in {time.perf_counter() - t0:.1f} s, "
          f"batches {tuple(batches[0].shape)} {batches[0].dtype}")
    batch = save_grid(batches[0] * 2 - 1, out / "pipeline_batch.png", nrow=8)
    print(f"wrote {grid} and {batch}")


if __name__ == "__main__":
    main()
