"""A MONAI pipeline with a GAN translator: NIfTI files -> LoadImaged -> EnsureChannelFirstd -> ScaleIntensityd
-> random 2-D slice -> RandGANTranslated -> RandFlipd, through CacheDataset and a 2-worker DataLoader.

    python examples/medical/monai_pipeline.py           # ~2-5 min on 2 CPU cores (600 translator steps)
    python examples/medical/monai_pipeline.py --quick   # smoke run, well under a minute
    python examples/medical/monai_pipeline.py --model runs/my_translator/model   # reuse a 1-channel translator

The translator here is a TOY that only shows the plumbing: a small CycleGAN trained for a few hundred steps
between raw BreastMNIST slices (domain A) and gamma-brightened ones (domain B, other images: unpaired). In
practice you would train one between two real domains, e.g. two scanners. The "volumes" are also toys:
each NIfTI file, written here with nibabel, stacks BreastMNIST slices of one class.
Outputs in ``--out``: ``volumes/*.nii.gz``, ``monai_pipeline.png`` (rows: slices, the same slices translated,
then a loader batch from each of two epochs) and the translator run.
"""

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.data import CacheDataset, DataLoader
from monai.transforms import (Compose, EnsureChannelFirstd, LoadImaged, RandFlipd, RandSpatialCropd, ScaleIntensityd,
                              SqueezeDimd)

from synthaug.augment import RandGANTranslate, RandGANTranslated
from synthaug.data import load_breastmnist
from synthaug.utils import get_device, save_grid, seed_everything, seed_worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/, for _common
from _common import train_toy_translator  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny translator, few steps (smoke test)")
    ap.add_argument("--out", default="examples_out/monai_pipeline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cuda, mps or cpu, for training (default: best available)")
    ap.add_argument("--model", default=None, help="a trained 1-channel translator directory to use instead")
    args = ap.parse_args()
    out, device = Path(args.out), get_device(args.device)
    seed_everything(args.seed)
    train = load_breastmnist("train")
    # The toy translator (examples/_common.py): raw slices <-> the other half of them gamma-brightened.
    model_dir = args.model or train_toy_translator(train, out, gamma=0.5, quick=args.quick, device=device,
                                                   seed=args.seed)

    # 1. Write toy volumes: each NIfTI file stacks `depth` slices of one class, shape (28, 28, depth).
    (out / "volumes").mkdir(parents=True, exist_ok=True)
    n_cases, depth = (8, 4) if args.quick else (16, 16)
    files = []
    for case in range(n_cases):
        label = case % 2
        idx = torch.nonzero(train.labels == label).flatten()[case // 2 * depth:(case // 2 + 1) * depth]
        vol = ((train.images[idx, 0] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        path = out / "volumes" / f"case{case:03d}_{label}.nii.gz"
        nib.save(nib.Nifti1Image(vol, affine=np.eye(4)), path)
        files.append({"image": str(path), "label": label})
    print(f"wrote {n_cases} NIfTI volumes of shape {vol.shape} to {out / 'volumes'}")

    # 2. The MONAI pipeline. CacheDataset caches everything before the first random transform; MONAI's
    #    DataLoader (a torch DataLoader) collates the MetaTensor metadata per item.
    transform = Compose([
        LoadImaged(keys="image"),                        # MetaTensor (28, 28, depth), float32
        EnsureChannelFirstd(keys="image"),               # (1, 28, 28, depth)
        ScaleIntensityd(keys="image"),                   # [0, 1]: what RandGANTranslated expects
        RandSpatialCropd(keys="image", roi_size=(-1, -1, 1)),  # one random slice: (1, 28, 28, 1)
        SqueezeDimd(keys="image", dim=-1),               # (1, 28, 28)
        RandGANTranslated(keys="image", model_path=model_dir, prob=0.5),
        RandFlipd(keys="image", prob=0.5, spatial_axis=1),
    ])
    transform.set_random_state(seed=args.seed)
    ds = CacheDataset(files, transform, cache_rate=1.0, num_workers=0, progress=False)
    loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=2, worker_init_fn=seed_worker,
                        generator=torch.Generator().manual_seed(args.seed))
    batches = [next(iter(loader)) for epoch in range(2)]  # the first batch of two epochs
    img = batches[0]["image"]
    print(f"batch: {type(img).__name__} {tuple(img.shape)}, range [{img.min():.2f}, {img.max():.2f}], "
          f"labels {batches[0]['label'].tolist()}, source {Path(img.meta['filename_or_obj'][0]).name}")

    # 3. What the translator does (array form, prob=1), then the loader's augmented batches.
    x01 = (train.images[:8] + 1) / 2
    translate = RandGANTranslate(model_dir, prob=1.0)
    translated = torch.stack([translate(x) for x in x01])
    rows = [x01, translated] + [b["image"].as_tensor()[:8] for b in batches]
    grid = save_grid(torch.cat(rows) * 2 - 1, out / "monai_pipeline.png", nrow=8,
                     row_labels=["slices", "translated", "epoch 1", "epoch 2"])
    print(f"wrote {grid}; translator: {model_dir}")


if __name__ == "__main__":
    main()
