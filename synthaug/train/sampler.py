"""Resumable batch sampling over in-memory tensors."""

from __future__ import annotations

import torch

from ..checks import check_int


class BatchSampler:
    """Endless shuffled epochs over ``n`` items, driven by its own ``torch.Generator``.

    The whole position (generator state, current permutation, offset) is in :meth:`state_dict`, so a
    resumed run draws exactly the batches an uninterrupted one would.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0):
        if n <= 0:
            raise ValueError(f"data: expected at least one training image, found {n}")
        self.n, self.batch_size = int(n), check_int("batch_size", batch_size)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.perm = torch.randperm(self.n, generator=self.generator)
        self.pos = 0
        self.epoch = 0

    def next(self) -> torch.Tensor:
        """Indices (int64, length ``batch_size``) of the next batch; epochs roll over seamlessly."""
        out = []
        need = self.batch_size
        while need > 0:
            if self.pos >= self.n:
                self.perm = torch.randperm(self.n, generator=self.generator)
                self.pos = 0
                self.epoch += 1
            take = self.perm[self.pos:self.pos + need]
            out.append(take)
            self.pos += len(take)
            need -= len(take)
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {"rng": self.generator.get_state(), "perm": self.perm.clone(), "pos": self.pos,
                "epoch": self.epoch, "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        if int(state["n"]) != self.n:
            raise ValueError(f"checkpoint: expected a sampler over {self.n} images, found one over {state['n']} "
                             "(was the training data changed?)")
        self.generator.set_state(state["rng"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])
        self.epoch = int(state["epoch"])
