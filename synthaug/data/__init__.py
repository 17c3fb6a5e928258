"""Real data in, tensors out: in-memory datasets (float32 NCHW in [-1, 1], int64 labels) and their loaders.

* :mod:`.dataset` -- :class:`ImageDataset`, :func:`from_arrays`, :func:`stratified_indices`
* :mod:`.npz` -- MedMNIST npz files, the shipped BreastMNIST copy, MNIST / USPS digits
* :mod:`.folders` -- image files, labelled class folders, flat folders, unpaired and paired domains
* :mod:`.loading` -- data named by a spec as the command line takes it (``breastmnist``, an ``.npz``, a folder)
"""

from .dataset import ImageDataset, from_arrays, resize_square, stratified_indices, validate_images
from .folders import (
    IMAGE_EXTENSIONS,
    PairedDataset,
    class_folder_files,
    load_image_dir,
    load_image_folder,
    load_paired,
    load_unpaired,
    read_image,
    save_image_folder,
)
from .loading import load_domain, load_labelled_and_rest, load_training_data, load_unlabelled
from .npz import (
    breastmnist_path,
    load_breastmnist,
    load_digits,
    load_medmnist,
    load_npz,
    shared_data_dir,
)

__all__ = [
    "ImageDataset",
    "from_arrays",
    "resize_square",
    "stratified_indices",
    "validate_images",
    "load_medmnist",
    "load_breastmnist",
    "breastmnist_path",
    "load_digits",
    "load_npz",
    "shared_data_dir",
    "read_image",
    "load_image_folder",
    "save_image_folder",
    "class_folder_files",
    "load_image_dir",
    "load_unpaired",
    "load_paired",
    "PairedDataset",
    "IMAGE_EXTENSIONS",
    "load_training_data",
    "load_labelled_and_rest",
    "load_unlabelled",
    "load_domain",
]
