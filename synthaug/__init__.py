"""synthaug: conditional GANs and domain translators as drop-in data augmentation.

Heavy optional libraries (albumentations, MONAI) are imported only by the modules that wrap them.
"""

__version__ = "0.1.0"

from .utils import get_device, save_grid, seed_everything, to_tensor_images, to_uint8_images  # noqa: E402

__all__ = ["__version__", "get_device", "seed_everything", "save_grid", "to_tensor_images", "to_uint8_images"]
