"""Paired, interleaved timing of a classifier's training step in channels_last against NCHW: steps per CPU-second
on one thread, batch 64, 6 alternating rounds (AdamW, cross-entropy; random data of the given shape).

    .venv/bin/python tests/scripts/paired_channels_last.py small_cnn 1 28
    .venv/bin/python tests/scripts/paired_channels_last.py lenet 3 32
    .venv/bin/python tests/scripts/paired_channels_last.py resnet18_small 1 28 4      # 4 steps a round
    .venv/bin/python tests/scripts/paired_channels_last.py cgan                      # the default cGAN step
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python ...            # AVX2 only, same machine
"""

import sys
import time

import numpy as np
import torch

from synthaug.eval import mean_ci
from synthaug.nets.classifiers import build_classifier


def cgan(n: int = 12) -> None:
    """The default cGAN step on BreastMNIST with its nets channels_last (as CGANRecipe makes them on CPU) or NCHW."""
    from synthaug.data import load_breastmnist
    from synthaug.train import CGANConfig, CGANRecipe

    torch.set_num_threads(1)
    recipes, steps = {}, {False: 0, True: 0}
    for cl in (False, True):
        r = CGANRecipe(load_breastmnist("train"), CGANConfig(), device="cpu", seed=0, progress=False)
        for net in (r.G, r.D, r.ema):
            net.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        recipes[cl] = r

    def rate(cl: bool, k: int) -> float:
        c0 = time.process_time()
        for _ in range(k):
            recipes[cl].train_step(steps[cl])
            steps[cl] += 1
        return k / (time.process_time() - c0)

    for cl in recipes:
        rate(cl, 3)
    rates = {False: [], True: []}
    for rnd in range(6):
        for cl in (False, True) if rnd % 2 == 0 else (True, False):
            rates[cl].append(rate(cl, n))
    print(f"cgan: NCHW {np.mean(rates[False]):.2f}, channels_last {np.mean(rates[True]):.2f} steps per CPU-second; "
          f"ratio {mean_ci(np.array(rates[True]) / np.array(rates[False]))}")


def main(arch: str, channels: int, size: int, n: int = 15) -> None:
    torch.set_num_threads(1)
    x, y = torch.randn(64, channels, size, size), torch.randint(0, 10, (64,))

    def make(cl: bool):
        torch.manual_seed(0)
        m = build_classifier(arch, channels, 10, size, width=32)
        m = m.to(memory_format=torch.channels_last) if cl else m
        return m, torch.optim.AdamW(m.parameters(), 1e-3)

    def rate(m, opt, cl: bool, steps: int) -> float:
        xx = x.contiguous(memory_format=torch.channels_last) if cl else x
        c0 = time.process_time()
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(xx), y).backward()
            opt.step()
        return steps / (time.process_time() - c0)

    nets = {cl: make(cl) for cl in (False, True)}
    for cl, (m, opt) in nets.items():
        rate(m, opt, cl, 3)  # warm-up
    rates = {False: [], True: []}
    for rnd in range(6):
        for cl in (False, True) if rnd % 2 == 0 else (True, False):
            rates[cl].append(rate(*nets[cl], cl, n))
    print(f"{arch}: NCHW {np.mean(rates[False]):.2f}, channels_last {np.mean(rates[True]):.2f} steps per CPU-second; "
          f"ratio {mean_ci(np.array(rates[True]) / np.array(rates[False]))}")


if __name__ == "__main__":
    if sys.argv[1] == "cgan":
        cgan()
    else:
        main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *(int(a) for a in sys.argv[4:5]))
