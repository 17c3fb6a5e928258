"""A translator's label-checked translations of a labelled set as a dataset: :func:`translated_dataset`.

Translation itself gives tensors (:meth:`synthaug.models.TranslatorModel.translate_labelled`); wrapping them as a
:class:`~synthaug.augment.SyntheticDataset`, ready for ``MixedDataset(real, pool, ..., allow_short=True)``, is the
augmentation layer's job.
"""

from __future__ import annotations

from .datasets import SyntheticDataset

__all__ = ["translated_dataset"]


def translated_dataset(model, data, direction: str = "A2B", classifier="task", min_confidence: float | None = None,
                       batch_size: int = 16, size_policy: str | None = None, *,
                       progress: bool = True) -> SyntheticDataset:
    """A :class:`~synthaug.augment.SyntheticDataset` of the label-checked translations of ``data`` (an
    ``ImageDataset``: ``.images``, ``.labels``, ``.class_names``) by ``model`` (a
    :class:`~synthaug.models.TranslatorModel`), ready for ``MixedDataset(real, pool, ..., allow_short=True)``.
    Arguments as in :meth:`~synthaug.models.TranslatorModel.translate_labelled` (``progress``, on by default: a bar
    over the translated images with the time left); its per-class counts are the dataset's ``filter_report`` and the
    whole report is ``model_config["label_check"]``."""
    for attr in ("images", "labels", "class_names"):
        if not hasattr(data, attr):
            raise TypeError(f"data: expected a labelled ImageDataset (.images, .labels, .class_names), found "
                            f"{type(data).__name__} without .{attr}")
    x, y, report = model.translate_labelled(data.images, data.labels, direction, classifier=classifier,
                                            min_confidence=min_confidence, class_names=data.class_names,
                                            batch_size=batch_size, size_policy=size_policy, value_range=(-1, 1),
                                            progress=progress)
    if len(y) == 0:
        raise ValueError(f"data: the label check kept none of the {len(data.labels)} translations ({report})")
    ds = SyntheticDataset.from_tensors(x, y, data.class_names, source={
        "source": "translator", "kind": model.kind, "direction": direction, "label_check": report})
    ds.filter_report = report["per_class"]
    return ds
