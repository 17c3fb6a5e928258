"""Train a tiny deterministic cGAN; run plainly or under torchrun (used by tests/test_distributed.py).

Noise-free, BatchNorm-free setup (style generator with constant noise and no style mixing, no minibatch
stddev, no DiffAugment) so a 2-process run with global batch B must follow the single-process run.
"""

import os
import sys
import time

import numpy as np
import torch

from synthaug.data import from_arrays
from synthaug.train import CGANConfig, CGANRecipe, Trainer
from synthaug.train.distributed import init_distributed

out, steps = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
init_distributed("cpu")
rng = np.random.default_rng(0)
labels = np.arange(32) % 2
images = rng.uniform(0.0, 0.4, size=(32, 16, 16, 1)).astype(np.float32)
images[labels == 1] += 0.5
data = from_arrays(images, labels, class_names=["dark", "bright"])
g = {"base_channels": 8, "max_channels": 16, "z_dim": 8, "w_dim": 16, "mapping_layers": 2, "embed_dim": 4,
     "mixing_prob": 0.0}
cfg = CGANConfig(generator="style", g_kwargs=g, d_kwargs={"base_channels": 8, "max_channels": 16, "mbstd": False},
                 diffaug="", batch_size=8, ema_decay=0.5)
recipe = CGANRecipe(data, cfg, device="cpu", seed=0)
recipe.G.noise_mode = "const"
recipe.ema.module.noise_mode = "const"
if os.environ.get("RANK") == "1":
    time.sleep(2)  # rank 0 writes the step-0 checkpoint first: rank 1 must not resume from it (it used to hang)
Trainer(recipe, out, steps, log_every=1, ckpt_every=2, progress=False).fit()
