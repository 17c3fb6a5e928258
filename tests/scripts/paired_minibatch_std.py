"""Paired, interleaved timing of the default cGAN step with MinibatchStdDev's variance written out (new) against
aten's ``var`` over the group dim (old): steps per CPU-second on one thread, 6 alternating rounds of 15 steps.

    .venv/bin/python tests/scripts/paired_minibatch_std.py
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python tests/scripts/paired_minibatch_std.py  # AVX2 only
"""

import time

import numpy as np
import torch

from synthaug.data import load_breastmnist
from synthaug.eval import mean_ci
from synthaug.nets import layers
from synthaug.train import CGANConfig, CGANRecipe

NEW = layers.MinibatchStdDev.forward


def old(self, x):
    n, c, h, w = x.shape
    g = min(self.group_size, n)
    while n % g:
        g -= 1
    grouped = x.float().reshape(g, n // g, c, h, w)
    s = (grouped.var(dim=0, unbiased=False) + self.eps).sqrt().mean(dim=(1, 2, 3))
    std = s.to(x.dtype).repeat(g)[:, None, None, None].expand(n, 1, h, w)
    return torch.cat([x, std], dim=1)


def main() -> None:
    torch.set_num_threads(1)
    recipe = CGANRecipe(load_breastmnist("train"), CGANConfig(), device="cpu", seed=0, progress=False)
    step = 0
    for _ in range(5):  # warm-up
        recipe.train_step(step)
        step += 1
    rates = {"old": [], "new": []}
    for rnd in range(6):
        for name in ("old", "new") if rnd % 2 == 0 else ("new", "old"):
            layers.MinibatchStdDev.forward = old if name == "old" else NEW
            c0 = time.process_time()
            for _ in range(15):
                recipe.train_step(step)
                step += 1
            rates[name].append(15 / (time.process_time() - c0))
    print({k: mean_ci(v) for k, v in rates.items()})
    print("new / old, steps per CPU-second:", mean_ci(np.array(rates["new"]) / np.array(rates["old"])))


if __name__ == "__main__":
    main()
