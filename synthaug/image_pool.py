"""History buffer of generated images (Shrivastava et al. 2017; used by CycleGAN's discriminator updates)."""

from __future__ import annotations

import torch

from .checks import check_int

__all__ = ["ImagePool"]


class ImagePool:
    """Keep up to ``size`` past fakes and hand the discriminator a mix of new and old ones.

    ``query(images)``: with ``size == 0`` the batch is returned as is. Otherwise, for each image in turn:
    while the pool is not full it is stored and returned; once full, with probability 0.5 a random stored
    image is returned and replaced by the new one, else the new image is returned. Results are detached.

    All randomness comes from the pool's own CPU ``torch.Generator`` (``generator``, or one seeded with
    ``seed``, or else with a seed drawn from torch's global RNG), and :meth:`state_dict` records it, so
    resumed training repeats exactly. Stored images are detached copies kept on the device they came on.
    """

    def __init__(self, size: int = 50, generator: torch.Generator | None = None, seed: int | None = None):
        check_int("size", size, 0)
        if generator is not None and seed is not None:
            raise ValueError(f"seed: expected None when a generator is passed, found {seed!r}")
        if generator is None:
            if seed is None:
                seed = int(torch.randint(0, 2**62, (1,)).item())
            elif isinstance(seed, bool) or not isinstance(seed, int):
                raise TypeError(f"seed: expected an int, found {type(seed).__name__}")
            generator = torch.Generator().manual_seed(seed)
        elif not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            found = f"a {generator.device} generator" if isinstance(generator, torch.Generator) \
                else type(generator).__name__
            raise ValueError(f"generator: expected a CPU torch.Generator, found {found}")
        self.size = size
        self.generator = generator
        self._images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self._images)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) new fakes -> (N, C, H, W) mix of new and stored fakes, detached, on ``images``' device."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images: expected a torch.Tensor, found {type(images).__name__}")
        if images.ndim != 4:
            raise ValueError(f"images: expected a 4-D batch (N, C, H, W), found shape {tuple(images.shape)}")
        images = images.detach()
        if self.size == 0:
            return images
        if self._images and images.shape[1:] != self._images[0].shape:
            raise ValueError(f"images: expected images of shape {tuple(self._images[0].shape)} like those in "
                             f"the pool, found {tuple(images.shape[1:])}")
        out = []
        for img in images:
            if len(self._images) < self.size:
                self._images.append(img.clone())  # a copy: a view would keep the whole batch alive
                out.append(img)
            elif torch.rand(1, generator=self.generator).item() < 0.5:
                idx = int(torch.randint(0, self.size, (1,), generator=self.generator).item())
                out.append(self._images[idx].to(device=img.device, dtype=img.dtype))
                self._images[idx] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        """{"images": stored images (count, C, H, W) on CPU, or an empty tensor; "count"; "rng": ByteTensor}."""
        images = torch.stack([t.cpu() for t in self._images]) if self._images else torch.empty(0)
        return {"images": images, "count": len(self._images), "rng": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; stored images come back on CPU and move to each query's device."""
        if not isinstance(state, dict) or not {"images", "count", "rng"} <= set(state):
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"state: expected a dict with keys ['count', 'images', 'rng'], found {found}")
        images, count = state["images"], int(state["count"])
        if not 0 <= count <= self.size:
            raise ValueError(f"state['count']: expected 0..{self.size} (the pool size), found {count}")
        if count and (images.ndim != 4 or images.shape[0] != count):
            raise ValueError(f"state['images']: expected shape ({count}, C, H, W), found {tuple(images.shape)}")
        self.generator.set_state(state["rng"].cpu())
        self._images = [t.detach().cpu().clone() for t in images[:count]] if count else []
