"""A small classifier a recipe trains for itself on its labelled data (the semi-supervised cGAN's pseudo-labeller,
the translators' task classifier): a stratified held-out share picks the step, and the global RNG states are left
as they were, so training it does not shift the recipe's own random stream."""

from __future__ import annotations

import torch

from ..utils import global_rng_kept

__all__ = ["train_helper_classifier"]


def train_helper_classifier(data, options: dict, seed: int, device, progress: bool | str | None = False):
    """Train on ``data`` (an ``ImageDataset``) with ``options`` (``train_classifier`` arguments plus
    ``val_fraction`` and ``augment``), deterministically under ``seed``. ``augment``: None, or a classical kind of
    :func:`~synthaug.train.classifier.classical_augment` applied (without flips) to its training batches, e.g.
    ``"colour"`` for a task classifier that must read the digit whatever its colours and background -- the
    translations it judges have the target's appearance, not the source's. With ``val_fraction`` > 0 and every
    class present in the held-out part, that part selects the step; otherwise the last step is kept. ``progress``: as
    ``train_classifier``'s (a bar over the steps with the time left; a str labels it). Returns ``(net in eval mode,
    info, train_ds, val_ds or None)``."""
    from ..data import stratified_indices
    from .classifier import classical_augment, train_classifier

    opts = dict(options)
    val_fraction = float(opts.pop("val_fraction"))
    augment = opts.pop("augment", None)
    if augment is not None:
        opts["transform"] = classical_augment(augment, hflip=False)
    train_ds, val_ds = data, None
    if val_fraction > 0:
        keep = stratified_indices(data.labels, fraction=1 - val_fraction, seed=seed, class_names=data.class_names)
        rest = torch.ones(len(data), dtype=torch.bool)
        rest[keep] = False
        held = torch.nonzero(rest).flatten()
        if len(held) and len(torch.unique(data.labels[held])) == data.num_classes:
            train_ds, val_ds = data.subset(keep), data.subset(held)
    opts["batch_size"] = min(int(opts["batch_size"]), len(train_ds))
    with global_rng_kept():
        net, info = train_classifier(train_ds, val_ds, seed=seed, device=device, num_classes=data.num_classes,
                                     progress=progress, **opts)
    return net.eval(), info, train_ds, val_ds
