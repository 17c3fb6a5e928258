"""Task consistency for unpaired translation: CyCADA's semantic-consistency loss, as a helper any recipe calls.

A classifier f_S is trained on the labelled source domain (or given), then frozen: eval mode, no gradient to its
weights; gradients flow through it to the generators. It judges the translations (Hoffman et al., CyCADA, 2018):

* source -> target: ``CE(f_S(G_S2T(x_s)), y_s)`` with the source image's true label;
* target -> source: ``CE(f_S(G_T2S(x_t)), argmax f_S(x_t))``: f_S's own label of the real target image is the one
  the translation must keep.

A recipe builds one :class:`TaskConsistency` at construction and, in its generator step, adds
``task.weight * task(step, [(translated, labels), ...])``: one pair per direction it trains (a one-sided
translator such as CUT passes only the source -> target pair). The term is 0 (and nothing is computed) before
``start_step`` and whenever the classifier's accuracy (held-out part of the source domain) is below
``min_accuracy``. The helper is registered in the recipe's ``extras``, so checkpoints hold the classifier's weights
and the target pseudo-labels, and a resumed run continues with exactly the classifier it started with.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from ..checks import check_int, check_number, check_options
from . import distributed
from ..utils import progress_enabled
from .helper_classifier import train_helper_classifier
from .recipe import option

__all__ = ["TASK_CLASSIFIER", "TASK_FIELDS", "TaskLossConfig", "TaskConsistency", "check_task_settings",
           "train_task_classifier"]

# The task classifier trained on the source domain: arguments of synthaug.train.classifier.train_classifier, plus
# val_fraction (a stratified share of the source images held out to select the step and to measure the accuracy
# that min_accuracy is compared with) and augment (None, or a classical_augment kind for its training batches, e.g.
# "colour": an f_S that reads the class whatever the colours, for a target domain of another appearance).
TASK_CLASSIFIER = {"arch": "small_cnn", "width": 32, "max_steps": 500, "batch_size": 64, "lr": 1e-3, "augment": None,
                   "weight_decay": 1e-4, "patience": 5, "eval_every": None, "ema_decay": None,
                   "select_on": "loss", "val_fraction": 0.2}


@dataclass(kw_only=True)
class TaskLossConfig:
    """The task-loss fields of an unpaired translator's config (CycleGAN, CUT, FastCUT inherit them, keyword-only).

    With ``lambda_task > 0`` a classifier f_S trained on domain A's labels (settings: :data:`TASK_CLASSIFIER`,
    overridden by ``task_classifier``) must give A->B translations their source label (and, for CycleGAN, B->A
    translations its own label of the real B image). The term is on from ``task_start_step``, and only if f_S's
    held-out accuracy reaches ``task_min_accuracy`` (None: no bar). With ``lambda_task = 0`` these fields are left
    out of config.json and checkpoints (training is unchanged).
    """

    lambda_task: float = option(
        0.0, "task-consistency weight (CyCADA): > 0 reads domain A WITH its labels (class folders or a labelled "
             ".npz), trains a classifier on them and makes translations keep their label (0: off)")
    task_start_step: int = option(0, "first step of the task loss")
    task_min_accuracy: float | None = option(
        None, "the task loss is used only if the classifier's held-out accuracy reaches this")
    task_classifier: dict | None = option(
        None, "JSON dict overriding the task classifier's settings (arch, width, max_steps, val_fraction, augment, "
              "...)")


TASK_FIELDS = tuple(f.name for f in fields(TaskLossConfig))


def check_task_settings(config) -> None:
    """Validate ``lambda_task``, ``task_start_step``, ``task_min_accuracy`` and ``task_classifier`` of ``config``."""
    check_number("lambda_task", config.lambda_task, 0.0, what="a weight")
    check_int("task_start_step", config.task_start_step, 0)
    check_number("task_min_accuracy", config.task_min_accuracy, 0.0, 1.0, what="an accuracy", optional=True)
    opts = check_options("task_classifier", config.task_classifier, TASK_CLASSIFIER)
    if opts is None:
        return
    from ..nets import list_classifiers
    from .classifier import CLASSICAL_KINDS, SELECT_ON

    if opts.get("augment") is not None and opts["augment"] not in CLASSICAL_KINDS:
        raise ValueError(f"task_classifier: expected augment None or one of {list(CLASSICAL_KINDS)}, found "
                         f"{opts['augment']!r}")
    if opts.get("arch", TASK_CLASSIFIER["arch"]) not in list_classifiers():
        raise ValueError(f"task_classifier: expected arch in {list_classifiers()}, found {opts['arch']!r}")
    if opts.get("select_on", "loss") not in SELECT_ON:
        raise ValueError(f"task_classifier: expected select_on in {list(SELECT_ON)}, found {opts['select_on']!r}")


def _accuracy(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, device) -> float:
    return float((_predict(net, images, device) == labels).double().mean())


@torch.no_grad()
def _predict(net: torch.nn.Module, images: torch.Tensor, device, batch_size: int = 256) -> torch.Tensor:
    out = [net(images[i:i + batch_size].to(device)).float().argmax(1).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out).long() if out else torch.empty(0, dtype=torch.long)


def train_task_classifier(source, options: dict, seed: int, device,
                          progress: bool | None = False) -> tuple[torch.nn.Module, dict]:
    """Train f_S on the labelled source domain (deterministic under ``seed`` on CPU); returns ``(net, info)``.

    ``options`` are :data:`TASK_CLASSIFIER`'s entries. With ``val_fraction`` > 0 and every class present in the
    held-out part, that part selects the step (``select_on``) and gives ``info["accuracy"]`` (``accuracy_on``
    ``"held_out"``); otherwise f_S trains on every image and the accuracy is on its training images
    (``"train"``, an optimistic figure). Python's, numpy's and torch's global RNG states are left as they were.
    ``progress``: a bar over the steps with the time left (None: :func:`synthaug.utils.progress_default`).
    """
    label = f"task classifier f_S ({options.get('arch', 'small_cnn')})" if progress_enabled(progress) else False
    net, info, train_ds, val_ds = train_helper_classifier(source, options, seed, device, progress=label)
    scored = val_ds if val_ds is not None else train_ds
    out = {"accuracy": _accuracy(net, scored.images, scored.labels, device),
           "accuracy_on": "held_out" if val_ds is not None else "train", "n_train": len(train_ds),
           "n_held_out": len(val_ds) if val_ds is not None else 0, "best_step": int(info["best_step"]),
           "steps_run": int(info["steps_run"])}
    return net, out


class TaskConsistency:
    """The frozen source classifier f_S and the task-consistency term of a translation recipe.

    Args:
        source: the labelled source domain (an ``ImageDataset``: ``.images``, ``.labels``, ``.class_names``).
        target_images: the target domain's images (N, C, H, W); f_S labels each once, here (``target_labels``).
        weight: ``lambda_task`` (> 0).
        start_step: the first step at which the term is on.
        min_accuracy: None, or the accuracy f_S must reach (held out of the source domain when f_S is trained here;
            on all source images when it is given) for the term to be on at all; below it the term stays 0 and a
            warning says so.
        options: overrides of :data:`TASK_CLASSIFIER` for the classifier trained here.
        classifier: a trained classifier to use instead (a ``ClassifierModel`` or a net of
            :mod:`synthaug.nets.classifiers`); its weights are copied, never changed.
        seed, device: the classifier's training seed and the device the term is computed on.
        progress: a bar over f_S's training steps with the time left; None (default): on, unless a
            :func:`synthaug.utils.progress_default` block turned it off (the recipes build this helper at
            construction, where their callers have no ``progress=`` to pass; the command line's ``--no-progress``
            turns it off).
    """

    def __init__(self, source, target_images: torch.Tensor, *, weight: float, start_step: int = 0,
                 min_accuracy: float | None = None, options: dict | None = None, classifier=None, seed: int = 0,
                 device=None, progress: bool | None = None):
        from ..models import ClassifierModel, classifier_spec

        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.weight, self.start_step, self.min_accuracy = float(weight), int(start_step), min_accuracy
        labels = getattr(source, "labels", None)
        names = getattr(source, "class_names", None)
        images = getattr(source, "images", source)
        if not isinstance(labels, torch.Tensor) or names is None:
            raise TypeError(f"domain_a: expected the labelled source domain (an ImageDataset with .labels and "
                            f".class_names) for the task loss, found {type(source).__name__}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"domain_a: expected one label per source image ({len(images)}), found labels of shape "
                             f"{tuple(labels.shape)}")
        self.class_names = [str(c) for c in names]
        self.num_classes = len(self.class_names)
        if self.num_classes < 2:
            raise ValueError(f"domain_a: expected labels of at least two classes for the task loss, found "
                             f"{self.num_classes} ({self.class_names}); load the source domain with its labels "
                             "(class folders root/<class>/*.png or a labelled .npz)")
        present = torch.unique(labels)
        if len(present) < 2:
            raise ValueError(f"domain_a: expected source images of at least two classes for the task loss, found "
                             f"only class {self.class_names[int(present[0])]!r}")
        self.image_size = int(images.shape[-1])
        if classifier is not None:
            if options:
                raise ValueError("task_classifier: settings are for the classifier trained here, found them together "
                                 "with a given classifier; pass one or the other")
            given_info = {}
            if isinstance(classifier, ClassifierModel):
                given_info = dict(classifier.config.get("info", {}))
                classifier = classifier.net
            spec = classifier_spec(classifier, self.image_size)
            net = _fresh_copy(classifier, spec)
            if spec["num_classes"] != self.num_classes:
                raise ValueError(f"task_classifier: expected {self.num_classes} class outputs (the source domain's "
                                 f"classes {self.class_names}), found {spec['num_classes']}")
            if spec["in_channels"] != images.shape[1]:
                raise ValueError(f"task_classifier: expected a classifier of {images.shape[1]}-channel images like "
                                 f"the source domain, found one of {spec['in_channels']} channel(s)")
            self.net = net.to(self.device)
            self.settings = {"source": "given", **given_info}
            self.info = {"accuracy": _accuracy(self.net.eval(), images, labels, self.device),
                         "accuracy_on": "source", "n_train": None, "n_held_out": 0}
        else:
            opts = {**TASK_CLASSIFIER, **(options or {})}
            net, self.info = train_task_classifier(source, opts, seed=seed, device=self.device, progress=progress)
            spec = classifier_spec(net, self.image_size)
            self.net = net.to(self.device)
            self.settings = {"source": "trained", "seed": int(seed),
                             **{k: v for k, v in opts.items() if k != "augment" or v is not None}}
        self.spec = spec
        self.net.eval()
        self.net.requires_grad_(False)
        for p in self.net.parameters():
            p.grad = None  # training's last gradients; none are made from here on
        distributed.broadcast_module(self.net)  # every rank judges with rank 0's classifier
        self.target_labels = self._label_target(target_images)
        self.n_target = len(self.target_labels)

    def _label_target(self, images: torch.Tensor) -> torch.Tensor:
        pred = _predict(self.net, images, self.device)
        if distributed.current().enabled:  # GPU kernels need not agree bit for bit between ranks
            import torch.distributed as dist

            dev = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
            pred = pred.to(dev)
            dist.broadcast(pred, src=0)
            pred = pred.cpu()
        return pred

    # ------------------------------------------------------------------ the term
    @property
    def reliable(self) -> bool:
        """f_S is accurate enough (``min_accuracy`` None, or reached) for the term to be used at all."""
        return self.min_accuracy is None or self.info["accuracy"] >= self.min_accuracy

    def active(self, step: int) -> bool:
        return self.reliable and step >= self.start_step

    def loss(self, pairs) -> torch.Tensor:
        """Sum over ``(translated images, labels)`` pairs of the mean cross-entropy of f_S on the translations."""
        total = torch.zeros((), device=self.device)
        for images, labels in pairs:
            logits = self.net(images)
            total = total + F.cross_entropy(logits.float(), labels.to(logits.device))
        return total

    def __call__(self, step: int, pairs) -> torch.Tensor:
        """The unweighted term at ``step``: :meth:`loss`, or 0 (nothing computed) while the term is off."""
        if not self.active(step):
            return torch.zeros((), device=self.device)
        return self.loss(pairs)

    def warn_if_unreliable(self) -> None:
        if not self.reliable:
            warnings.warn(f"task loss stays off: the task classifier's accuracy {self.info['accuracy']:.3f} "
                          f"({self.info['accuracy_on']}) is below task_min_accuracy {self.min_accuracy}; train it "
                          "longer (task_classifier max_steps) or lower task_min_accuracy", stacklevel=3)

    # ----------------------------------------------------------- output and state
    def summary(self, source_domain: str = "A") -> dict:
        """The ``task_consistency`` section of config.json."""
        counts = torch.bincount(self.target_labels, minlength=self.num_classes).tolist()
        return {"lambda_task": self.weight, "task_start_step": self.start_step,
                "task_min_accuracy": self.min_accuracy, "source_domain": source_domain,
                "class_names": self.class_names, "active": self.reliable,
                "classifier": {**self.spec, **self.settings, **self.info}, "classifier_dir": "task_classifier",
                "target_pseudo_labels_per_class": dict(zip(self.class_names, counts))}

    def classifier_model(self, source_domain: str = "A"):
        """f_S as a :class:`~synthaug.models.ClassifierModel` (written into the translator's model directory)."""
        from ..models import ClassifierModel

        info = {"role": f"task classifier of domain {source_domain}", **self.settings, **self.info}
        return ClassifierModel.from_module(self.net, self.class_names, self.image_size, info=info,
                                           device=self.device)

    def state_dict(self) -> dict:
        return {"classifier": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
                "target_labels": self.target_labels.clone(), "n_target": self.n_target,
                "accuracy": float(self.info["accuracy"])}

    def load_state_dict(self, state: dict) -> None:
        if int(state["n_target"]) != self.n_target:
            raise ValueError(f"checkpoint: expected task pseudo-labels for {self.n_target} target images, found them "
                             f"for {state['n_target']} (was the target domain changed?)")
        self.net.load_state_dict(state["classifier"])
        self.net.eval()
        self.target_labels = state["target_labels"].clone().to(torch.int64)
        self.info["accuracy"] = float(state["accuracy"])


def _fresh_copy(net: torch.nn.Module, spec: dict) -> torch.nn.Module:
    """A new net of ``spec`` holding ``net``'s weights (the user's module is never frozen or moved)."""
    from ..nets.classifiers import build_classifier

    with torch.random.fork_rng(devices=[]):  # its throw-away init weights come from no RNG of the run
        copy = build_classifier(**spec)
    copy.load_state_dict({k: v.detach().cpu() for k, v in net.state_dict().items()})
    return copy
