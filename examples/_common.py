"""Glue that more than one example needs and that is not the point of any of them; not an example itself.

Examples are run by path (``python examples/medical/monai_pipeline.py``), so Python puts the script's own folder on
``sys.path``, not this one: an example that uses this module adds ``examples/`` first::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # examples/, for _common
    from _common import train_toy_translator
"""

from pathlib import Path

import torch

from synthaug.data import ImageDataset
from synthaug.train import CycleGANConfig, CycleGANRecipe, Trainer


def train_toy_translator(train: ImageDataset, out: Path, *, gamma: float, quick: bool, device: torch.device,
                         seed: int) -> Path:
    """Train a TOY 1-channel CycleGAN that only shows the plumbing; return its model directory.

    Domain A is the first half of ``train`` as it is, domain B the other half with a gamma curve applied
    (``gamma`` > 1 darkens, < 1 brightens): other images, so the pair is unpaired. A small ResNet translator,
    600 steps at batch 4, or 15 steps at batch 1 of a smaller one when ``quick``. The run goes to
    ``out / "translator"`` (``out / "translator_quick"`` when ``quick``); resumable: the same call continues it.
    """
    half = len(train) // 2
    raw = train.subset(range(half))
    name = f"gamma{gamma:g}"
    shifted = ImageDataset(((train.images[half:] + 1) / 2) ** gamma * 2 - 1, train.labels[half:], train.class_names,
                           name=name)
    size = dict(ngf=8, n_blocks=2) if quick else dict(ngf=16, n_blocks=3)
    cfg = CycleGANConfig(steps=15 if quick else 600, batch_size=1 if quick else 4, g_kwargs=size,
                         d_kwargs={"ndf": size["ngf"], "n_layers": 2})
    recipe = CycleGANRecipe(raw, shifted, cfg, device=device, seed=seed, names=("raw", name))
    run_dir = Path(out) / ("translator_quick" if quick else "translator")
    return Trainer(recipe, run_dir, steps=cfg.steps, progress=not quick).fit().model_dir
