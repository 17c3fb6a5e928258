"""Command line: a thin layer over the Python API.

    synthaug train cgan --data breastmnist --out runs/breast --steps 3000
    synthaug train cgan --data breastmnist --n-per-class 20 --unlabelled rest --out runs/semi
    synthaug sample runs/breast/model --n 200 --out synth/
    synthaug train cyclegan --a mnist.npz --b usps.npz --size 28 --channels 1 --lambda-task 1 --out runs/m2u
    synthaug train cut --a horses/ --b zebras/ --size 128 --out runs/h2z       (or: train fastcut)
    synthaug translate runs/m2u/model --in mnist.npz --labels --out translated/
    synthaug train cyclegan --a clear/ --b fog/ --size 128 --arch lptn --out runs/fog_lptn
    synthaug translate runs/fog_lptn/model --in dashcam_frames/ --out frames_fog/   (each frame at its own size)
    synthaug train srgan --data photos/ --size 256 --scale 4 --crop 64 --out runs/sr
    synthaug upscale runs/sr/model --in small/ --out large/
    synthaug info runs/breast/model
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
import sys
import typing
from pathlib import Path

# ``train --steps`` for a recipe whose config has no run length (cgan); the others default to their config's steps
STEPS_WITHOUT_SCHEDULE = 3000


# --------------------------------------------------------------------------------------------- train <recipe>
def _option_meta(config_class, name: str) -> dict:
    """The command-line metadata of config field ``name`` (:func:`synthaug.train.recipe.option`): the field's own,
    else that of the same field in a base dataclass (a subclass that only changes a default keeps the help)."""
    for klass in config_class.__mro__:
        for f in getattr(klass, "__dataclass_fields__", {}).values():
            if f.name == name and f.metadata:
                return dict(f.metadata)
    return {}


def _field_kind(hint) -> tuple[type, bool]:
    """(base type, optional) of a config field's annotation: ``int | None`` -> (int, True)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    base = args[0] if optional and len(args) == 1 else hint
    return (typing.get_origin(base) or base), optional


def config_options(config_class) -> list[tuple[dataclasses.Field, list[str], dict]]:
    """The options of a config dataclass, one per field: ``(field, option strings, add_argument keywords)``.

    ``--field-name`` (plus the metadata's ``flags``), the field as ``dest``; bool fields get ``--x / --no-x``;
    int, float and str fields their type; dict fields a JSON object (parsed and merged over the default by
    :func:`config_values`); tuple fields a comma-separated list; other types, ``steps`` (the run length: the shared
    ``--steps``) and fields with ``cli=False`` no option. The help is the metadata's, with the default."""
    hints = typing.get_type_hints(config_class)
    out = []
    for f in dataclasses.fields(config_class):
        meta = _option_meta(config_class, f.name)
        if f.name == "steps" or not meta.get("cli", True):
            continue
        base, optional = _field_kind(hints.get(f.name, str))
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        flags = [f"--{f.name.replace('_', '-')}", *meta.get("flags", ())]
        kw: dict = {"dest": f.name}
        help_text = meta.get("help", "")
        if base is bool:
            kw.update(action=argparse.BooleanOptionalAction, default=default)
            shown = "on" if default else "off"
        elif base in (int, float, str):
            kw.update(type=base, default=default)
            choices = meta.get("choices")
            if choices is not None:  # listed once in the help, not after every option string
                kw["choices"] = list(choices() if callable(choices) else choices)
                kw["metavar"] = "NAME"
                help_text = f"{help_text}: {', '.join(kw['choices'])}"
            shown = default
        elif base is dict:
            kw.update(default=None, metavar="JSON")
            shown = json.dumps(default) if default is not None else None
        elif base is tuple:
            kw.update(default=None, metavar="A,B,...")
            shown = ",".join(str(v) for v in default) if default else default
        else:
            continue
        if shown is None and optional:
            shown = "none"
        if "(default" in help_text:  # the help says what the default means
            kw["help"] = help_text
        else:
            kw["help"] = f"{help_text} (default: {shown})" if help_text else f"default: {shown}"
        kw["help"] = kw["help"].replace("%", "%%")
        out.append((f, flags, kw))
    return out


def config_values(args, config_class) -> dict:
    """The config field values of parsed ``args`` (see :func:`config_options`): a JSON dict option parsed (and stored
    back on ``args`` as a dict) and merged over the field's default dict; a comma-separated list split into a tuple
    of the default's element type; a dict or list not given left out (the field keeps its default)."""
    hints = typing.get_type_hints(config_class)
    values = {}
    for f, flags, _ in config_options(config_class):
        base, _ = _field_kind(hints[f.name])
        value = getattr(args, f.name)
        if base is dict:
            value = _json_dict(value, flags[0])
            setattr(args, f.name, value)
            if value is None:
                continue
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            value = {**default, **value} if isinstance(default, dict) else value
        elif base is tuple:
            if value is None:
                continue
            cast = type(f.default[0]) if isinstance(f.default, tuple) and f.default else str
            value = tuple(cast(v.strip()) for v in value.split(",") if v.strip())
        values[f.name] = value
    if getattr(config_class, "steps", None) is not None:  # a config with its own run length takes --steps
        values["steps"] = args.steps
    return values


def _add_train_command(train, name: str, recipe_cls) -> None:
    """``synthaug train <name>``: the recipe's own options (:meth:`~synthaug.train.recipe.Recipe.add_arguments`: its
    data), its config's fields (:func:`config_options`) and the run options every recipe shares."""
    from .train import Trainer

    config_class = recipe_cls.config_class
    doc = (vars(recipe_cls).get("__doc__") or "").strip().split("\n")[0]
    help_text = vars(recipe_cls).get("cli_help") or doc or name  # the class's own, not a base recipe's
    p = train.add_parser(name, help=help_text, description=f"{help_text}: recipe {name!r}, settings of "
                                                             f"{config_class.__name__}")
    recipe_cls.add_arguments(p.add_argument_group("data and recipe options"))
    group = p.add_argument_group(f"settings ({config_class.__name__})")
    for _, flags, kw in config_options(config_class):
        group.add_argument(*flags, **kw)
    trainer = inspect.signature(Trainer).parameters
    run = p.add_argument_group("run")
    run.add_argument("--out", required=True, help="output folder (checkpoints, samples, metrics, model/)")
    run.add_argument("--steps", type=int, default=getattr(config_class, "steps", None) or STEPS_WITHOUT_SCHEDULE,
                     help="run length (default: %(default)s)")
    run.add_argument("--seed", type=int, default=inspect.signature(recipe_cls).parameters["seed"].default
                     if "seed" in inspect.signature(recipe_cls).parameters else 0)
    run.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    for opt in ("ckpt_every", "sample_every", "log_every"):
        run.add_argument(f"--{opt.replace('_', '-')}", type=int, default=trainer[opt].default)
    run.add_argument("--no-resume", action="store_true", help="start over even if out/ has a checkpoint")
    run.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_train)


def _train(args) -> int:
    """``synthaug train <recipe>``: the registered recipe of that name, its config from the options
    (:meth:`~synthaug.train.recipe.Recipe.config_from_arguments`), built from its data
    (:meth:`~synthaug.train.recipe.Recipe.from_arguments`), run by the Trainer."""
    import contextlib
    import io

    from .train import Trainer, get_recipe
    from .train.distributed import init_distributed
    from .train.engine import check_out_dir
    from .utils import progress_default, seed_everything

    recipe_cls = get_recipe(args.recipe)

    def refuse_other_settings(config, **attributes) -> None:
        """Before building the recipe (which may train a task classifier, a pseudo-labeller or a content encoder
        first): refuse an output folder whose checkpoint holds another recipe's run or other settings, as the
        Trainer would when it resumes, unless --no-resume starts over."""
        if args.no_resume:
            return
        try:
            check_out_dir(args.out, recipe_cls.name, recipe_cls.planned_config_dict(config, **attributes))
        except ValueError as e:
            raise ValueError(f"--out: {e} (checked before training anything; --no-resume starts over in this "
                             "folder)") from None

    info = init_distributed(args.device)  # a no-op unless started by torchrun
    seed_everything(args.seed)
    config = recipe_cls.config_from_arguments(config_values(args, recipe_cls.config_class), args)
    # under torchrun only rank 0 reports (the data summary, the helper classifiers, the result); every rank builds
    quiet = contextlib.redirect_stdout(io.StringIO()) if not info.is_main else contextlib.nullcontext()
    with quiet, progress_default(not args.no_progress):  # helper classifiers trained while building follow the flag
        recipe = recipe_cls.from_arguments(args, config, refuse_other_settings)
        result = Trainer(recipe, args.out, args.steps, ckpt_every=args.ckpt_every, sample_every=args.sample_every,
                         log_every=args.log_every, progress=not args.no_progress).fit(resume=not args.no_resume)
        _report(result)
    return 0


def _json_dict(text: str | None, arg: str) -> dict | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{arg}: expected a JSON object, found {text!r} ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{arg}: expected a JSON object, found {type(value).__name__} {text!r}")
    return value


def _translate_labelled(args, model) -> int:
    """``translate --labels``: translate a labelled set, keep what the label check accepts, write class folders and
    report.json."""
    from PIL import Image

    from . import data as sd
    from .io import atomic_write_bytes
    from .models import ClassifierModel
    from .utils import to_uint8_images

    c_in = model.channels_a if args.direction == "A2B" else model.channels_b
    src = Path(args.inp)
    if src.suffix == ".npz":
        data = sd.load_npz(src, split=args.split)
        data = data.resized(args.size) if args.size else data
    elif src.is_dir():
        data = sd.load_image_folder(src, size=args.size or model.image_size, channels=c_in)
    else:
        raise FileNotFoundError(f"--in: expected class folders root/<class>/*.png or a labelled .npz with --labels, "
                                f"found {args.inp!r}")
    if args.fraction is not None or args.n_per_class is not None:
        data = data.subsample(fraction=args.fraction, n_per_class=args.n_per_class, seed=0)
    if args.classifier == "none":
        if args.min_confidence is not None:
            raise ValueError("--min-confidence: needs a classifier, found --classifier none")
        classifier = None
    elif args.classifier == "task":
        if model.task_classifier is None:
            raise ValueError(f"--classifier: the translator {args.model!r} has no task classifier (trained without "
                             "--lambda-task); pass --classifier PATH (a classifier model directory) or "
                             "--classifier none to keep every translation")
        classifier = model.task_classifier
    else:
        classifier = ClassifierModel.from_pretrained(args.classifier, device=args.device)
    names = classifier.class_names if classifier is not None else data.class_names
    if classifier is not None and names != data.class_names:
        raise ValueError(f"--in: expected the classifier's classes {names}, found {data.class_names} in "
                         f"{args.inp!r} (class folder names or the npz's classes must match)")
    x, y, report = model.translate_labelled(data.images, data.labels, args.direction, classifier=classifier,
                                            min_confidence=args.min_confidence, class_names=data.class_names,
                                            batch_size=args.batch_size, size_policy=args.size_policy,
                                            progress=args.progress)
    out = Path(args.out)
    counters: dict[int, int] = {}
    for img, lab in zip(to_uint8_images(x), y.tolist()):
        d = out / data.class_names[lab].replace("/", "_")
        d.mkdir(parents=True, exist_ok=True)
        i = counters.get(lab, 0)
        counters[lab] = i + 1
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(d / f"{i:06d}.png")
    report = {"model": str(args.model), "input": str(args.inp), **report}
    atomic_write_bytes(out / "report.json", json.dumps(report, indent=2).encode())
    print(f"translated {report['checked']} labelled images {args.direction}; kept {report['kept']} "
          f"({_pct(report['kept_fraction'])}) by rule: {report['rule'] or 'none (no label check)'}")
    for name, r in report["per_class"].items():
        print(f"  {name}: kept {r['kept']} of {r['checked']} ({_pct(r['kept_fraction'])})")
    print(f"wrote class folders and report.json to {out}")
    return 0


def _pct(fraction) -> str:
    return "n/a" if fraction is None else f"{100 * fraction:.1f}%"


def _image_files(src: Path) -> list[Path]:
    """The image files under folder ``src`` (recursive), in natural order of their paths (frame_2 before frame_10),
    so numbered video frames are processed in sequence."""
    from .data import IMAGE_EXTENSIONS

    def key(p: Path):
        parts = re.split(r"(\d+)", p.relative_to(src).as_posix())
        return [(0, int(t), t) if t.isdigit() else (1, 0, t) for t in parts]

    if not src.is_dir():
        return []
    return sorted((p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS), key=key)


def _translate(args) -> int:
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from .data import IMAGE_EXTENSIONS, read_image
    from .models import TranslatorModel
    from .utils import to_uint8_images

    model = TranslatorModel.from_pretrained(args.model, device=args.device)
    if args.labels:
        return _translate_labelled(args, model)
    if args.classifier != "task" or args.min_confidence is not None:
        raise ValueError("--classifier / --min-confidence: the label check needs --labels (a labelled input set)")
    if args.fraction is not None or args.n_per_class is not None:
        raise ValueError("--fraction / --n-per-class: a stratified subset of a labelled set needs --labels")
    src, out = Path(args.inp), Path(args.out)
    files = _image_files(src)
    if not files:
        raise ValueError(f"--in: expected a folder with images ({', '.join(IMAGE_EXTENSIONS)}), found none in "
                         f"{str(src)!r}")
    c_in = model.channels_a if args.direction == "A2B" else model.channels_b
    policy = model.resolve_size_policy(args.size_policy)
    options = {"direction": args.direction, "size_policy": policy, "match_scale": args.match_scale,
               "value_range": (-1, 1)}  # read_image gives model data, whether or not an image has dark pixels
    with tqdm(total=len(files), unit="img", desc=f"translate {args.direction} ({policy} size)",
              disable=not args.progress) as bar:
        for i in range(0, len(files), args.batch_size):
            chunk = files[i:i + args.batch_size]
            imgs = [read_image(p, size=args.size, channels=c_in) for p in chunk]
            if len({tuple(t.shape) for t in imgs}) == 1:  # one forward pass for the whole chunk
                results = list(model.translate(torch.stack(imgs), batch_size=args.batch_size, **options))
            else:
                results = [model.translate(t, **options) for t in imgs]
            for p, res in zip(chunk, results):
                arr = to_uint8_images(res)
                target = out / p.relative_to(src).with_suffix(".png")
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(target)
            bar.update(len(chunk))
    print(f"translated {len(files)} images {args.direction} at {policy} size into {out}")
    return 0


def _upscale(args) -> int:
    import torch
    from PIL import Image

    from .data import IMAGE_EXTENSIONS, read_image
    from .models import UpscalerModel
    from .utils import progress_bar, to_uint8_images

    model = UpscalerModel.from_pretrained(args.model, device=args.device)
    src, out = Path(args.inp), Path(args.out)
    if src.is_file() and src.suffix.lower() in IMAGE_EXTENSIONS:
        files, root = [src], src.parent
    else:
        files, root = _image_files(src), src
    if not files:
        raise ValueError(f"--in: expected an image file or a folder with images ({', '.join(IMAGE_EXTENSIONS)}), "
                         f"found none at {str(src)!r}")
    options = {"tile": args.tile, "max_memory_mb": args.max_memory_mb, "value_range": (-1, 1)}
    tiled = 0
    with progress_bar(len(files), f"upscale x{model.scale}", unit="img", enabled=args.progress) as bar:
        i = 0
        while i < len(files):
            # one forward pass for a run of same-size images, as many as the memory budget allows (a full-size frame
            # goes alone, and is tiled); each image is written before the next run is read
            first = read_image(files[i], channels=model.channels)  # each at its own size
            h, w = first.shape[-2:]
            fit = model.images_per_pass(h, w, args.max_memory_mb) if args.tile is None else 0
            imgs, chunk = [first], [files[i]]
            while len(chunk) < min(args.batch_size, fit) and i + len(chunk) < len(files):
                nxt = read_image(files[i + len(chunk)], channels=model.channels)
                if nxt.shape != first.shape:
                    break
                imgs.append(nxt)
                chunk.append(files[i + len(chunk)])
            if fit == 0:
                tiled += len(chunk)
            results = model.upscale(torch.stack(imgs), batch_size=args.batch_size, progress=args.progress, **options)
            for p, res in zip(chunk, results):
                arr = to_uint8_images(res)
                target = out / p.relative_to(root).with_suffix(".png")
                target.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(target)
            bar.update(len(chunk))
            i += len(chunk)
    note = f" ({tiled} in tiles within {args.max_memory_mb:g} MB)" if tiled else ""
    print(f"upscaled {len(files)} images x{model.scale} into {out}{note}")
    return 0


def _report(result) -> None:
    if result.interrupted:
        print(f"interrupted at step {result.step}; resume with the same command")
    else:
        print(f"trained {result.step} steps in {result.seconds:.1f} s; model: {result.model_dir}; "
              f"samples: {result.out_dir / 'samples'}; metrics: {result.metrics_path}")


def _sample_shards(args) -> int:
    from .augment import merge_manifests, write_shards
    from .models import GeneratorModel
    from .train.distributed import barrier, init_distributed

    info = init_distributed("cpu" if args.device is None else args.device)
    rank = info.rank if info.enabled else args.rank
    world = info.world_size if info.enabled else args.world_size
    if not 0 <= rank < world:
        raise ValueError(f"--rank: expected 0 <= rank < world size {world}, found {rank}")
    model = GeneratorModel.from_pretrained(args.model, device=args.device)
    write_shards(model, args.out, n=args.n, seed=args.seed, shard_size=args.shard_size, rank=rank,
                 world_size=world, truncation=args.truncation, z_threshold=args.z_threshold)
    print(f"rank {rank}/{world}: wrote its shards of {args.n} images to {args.out}")
    barrier()
    if info.enabled and info.is_main or (not info.enabled and world == 1):
        print(f"manifest: {merge_manifests(args.out)}")
    elif not info.enabled:
        print(f"when all {world} ranks are done: synthaug merge-shards {args.out}")
    return 0


def _merge_shards(args) -> int:
    from .augment import merge_manifests

    print(f"manifest: {merge_manifests(args.folder)}")
    return 0


def _png_samples(folder: Path) -> list[Path]:
    """PNG files under ``folder`` (the class folders a plain ``sample`` run writes), if it exists."""
    return sorted(folder.rglob("*.png")) if folder.is_dir() else []


def _sample(args) -> int:
    from PIL import Image

    from .models import GeneratorModel

    if args.n < 1:
        raise ValueError(f"--n: expected a number of images >= 1, found {args.n} (nothing would be written)")
    if args.shards:
        pngs = _png_samples(Path(args.out))
        if pngs:
            raise ValueError(f"--out: expected a folder without PNG samples for --shards (a shard set and its "
                             f"manifest.json), found {len(pngs)} PNG file(s) in {args.out!r}, e.g. "
                             f"{str(pngs[0].relative_to(args.out))!r}; use another folder")
        return _sample_shards(args)
    model = GeneratorModel.from_pretrained(args.model, device=args.device)
    labels = None
    if args.label is not None:
        names = model.class_names
        labels = names.index(args.label) if args.label in names else int(args.label)
    images, y = model.sample(args.n, labels=labels, truncation=args.truncation, seed=args.seed, output="uint8",
                             z_threshold=args.z_threshold)
    out = Path(args.out)
    for i, (img, lab) in enumerate(zip(images, y.tolist())):
        d = out / model.class_names[lab].replace("/", "_")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(d / f"{i:06d}.png")
    print(f"wrote {len(images)} images to {out} (one folder per class)")
    return 0


def _info(args) -> int:
    from .io import read_model_config

    print(json.dumps(read_model_config(args.model), indent=2))
    return 0


def _study(args) -> int:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run_study(args)
    finally:
        torch.set_num_threads(threads)  # main() called from Python leaves the caller's setting as it was


def _run_study(args) -> int:
    from .study import StudyConfig, run

    cfg = StudyConfig(generator=None if args.generator == "none" else args.generator, translator=args.translator,
                      seeds=args.seeds, budget=args.budget, classical=tuple(args.classical), shares=tuple(args.shares),
                      metric=args.metric, arch=args.arch, versions=args.versions, progress=args.progress)
    report = run(args.data, out=args.out, config=cfg, val=args.val, test=args.test, unlabelled=args.unlabelled,
                 target=args.target, size=args.size, channels=args.channels, split_seed=args.split_seed,
                 command="synthaug study " + " ".join(args.argv))
    print("\nVerdict:")
    for line in report["headline_verdicts"] or report["verdicts"][:3]:
        print(f"  On this data, {line}.")
    print(f"Report: {report['paths']['markdown']}\nPlot:   {report['paths']['plot']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .models import UPSCALE_MEMORY_MB
    from .train import get_recipe, list_recipes

    parser = argparse.ArgumentParser(prog="synthaug", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    # one command per registered recipe, its options from the recipe (its data) and its config dataclass
    train = sub.add_parser("train", help=f"train a model with a recipe: {', '.join(list_recipes())}") \
        .add_subparsers(dest="recipe", required=True)
    for name in list_recipes():
        _add_train_command(train, name, get_recipe(name))

    p = sub.add_parser("translate", help="translate a folder of images (or, with --labels, a labelled set checked "
                                         "by a classifier) with a trained translator")
    p.add_argument("model")
    p.add_argument("--in", dest="inp", required=True,
                   help="input folder (searched recursively); with --labels class folders or an .npz")
    p.add_argument("--out", required=True, help="output folder (same layout, PNG)")
    p.add_argument("--direction", default="A2B", help="A2B, or B2A (CycleGAN only)")
    p.add_argument("--size-policy", default=None, choices=["resize", "native"],
                   help="resize: to the training size and back; native: run at the image's own size (any size; "
                        "outputs keep it). Default: native for full-resolution translators (lptn), else resize")
    p.add_argument("--match-scale", action=argparse.BooleanOptionalAction, default=True,
                   help="native size with lptn: deepen the pyramid so its low band has the training images' scale "
                        "(right for models trained on resized frames; --no-match-scale for ones trained on crops)")
    p.add_argument("--size", type=int, default=None, help="resize inputs to this size first (shorter side + crop)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar on stderr")
    p.add_argument("--labels", action="store_true",
                   help="--in is a labelled set (class folders root/<class>/*.png or an .npz): keep the translations "
                        "whose label the classifier still finds, write them as class folders plus report.json "
                        "(kept fraction per class)")
    p.add_argument("--split", default="train", help="split of an .npz --in (with --labels)")
    p.add_argument("--fraction", type=float, default=None,
                   help="with --labels: translate this share of each class (a stratified subset, seed 0)")
    p.add_argument("--n-per-class", type=int, default=None,
                   help="with --labels: translate this many images of each class (a stratified subset, seed 0)")
    p.add_argument("--classifier", default="task",
                   help="with --labels: 'task' (the translator's own task classifier, default), a classifier model "
                        "directory, or 'none' (no label check)")
    p.add_argument("--min-confidence", type=float, default=None,
                   help="with --labels: keep a translation when the classifier gives its label at least this "
                        "probability (default: when its top class is the label)")
    p.set_defaults(func=_translate)

    p = sub.add_parser("upscale", help="upscale an image or a folder of images with a trained upscaler (SRGAN)")
    p.add_argument("model")
    p.add_argument("--in", dest="inp", required=True, help="an image file or a folder (searched recursively)")
    p.add_argument("--out", required=True, help="output folder (same layout, PNG, scale times larger)")
    p.add_argument("--batch-size", type=int, default=16,
                   help="most images per forward pass (same-size images only, and only as many as fit in "
                        "--max-memory-mb)")
    p.add_argument("--max-memory-mb", type=float, default=UPSCALE_MEMORY_MB,
                   help="working memory of one forward pass; an image that does not fit alone (a full-size frame at "
                        "4x) is upscaled in overlapping tiles, seamlessly (default: %(default)s)")
    p.add_argument("--tile", type=int, default=None,
                   help="tile every image in tiles of at most this side (input px); default: only those that do not "
                        "fit the memory budget, in the largest tiles that do")
    p.add_argument("--device", default=None)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar on stderr (images, and tiles of a large image, with the time left)")
    p.set_defaults(func=_upscale)

    p = sub.add_parser("sample", help="write samples of a trained generator as PNG folders")
    p.add_argument("model")
    p.add_argument("--n", "--count", dest="n", type=int, default=100,
                   help="number of images (use --count under torchrun)")
    p.add_argument("--out", required=True)
    p.add_argument("--label", default=None, help="class name or index (default: class-balanced)")
    p.add_argument("--truncation", type=float, default=1.0,
                   help="the generator's own latent truncation in [0, 1] (dcgan/biggan: z scaled; style: w toward "
                        "its class average); 1 = off")
    p.add_argument("--z-threshold", type=float, default=None,
                   help="BigGAN's truncation trick for any generator: latent entries with |z| above it are redrawn "
                        "(e.g. 1.0; default: off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument("--shards", action="store_true",
                   help="write safetensors shards + manifest (readable by SyntheticDataset.from_shards); under "
                        "torchrun each rank writes its share")
    p.add_argument("--shard-size", type=int, default=1024)
    p.add_argument("--rank", type=int, default=0, help="this process's share without torchrun (with --shards)")
    p.add_argument("--world-size", type=int, default=1, help="number of processes without torchrun")
    p.set_defaults(func=_sample)

    p = sub.add_parser("merge-shards", help="combine per-rank shard manifests into manifest.json")
    p.add_argument("folder")
    p.set_defaults(func=_merge_shards)

    p = sub.add_parser("study", help="does a generator make a classifier better on your images than real data alone, "
                                     "the best classical augmentation and as many real copies? (every choice on "
                                     "validation, a generator per seed, paired intervals, resumable)")
    p.add_argument("--data", required=True,
                   help="labelled images: a folder data/<class>/<image>, an .npz or 'breastmnist'")
    p.add_argument("--val", default=None, help="validation images (same kinds); default: made from --data")
    p.add_argument("--test", default=None, help="test images (same kinds); default: made from --data")
    p.add_argument("--unlabelled", default=None, help="unlabelled images of the same domain (adds self-training)")
    p.add_argument("--target", default=None,
                   help="unlabelled images of the domain --test comes from (adds a translator and translated arms)")
    p.add_argument("--size", type=int, default=None, help="resize and centre-crop every image to this size "
                                                          "(16, 28, 32, 64 or 128; default: the images' own)")
    p.add_argument("--channels", type=int, default=None, choices=(1, 3), help="convert every image to 1 or 3 channels")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the val/test splits made from --data")
    p.add_argument("--generator", default="cgan", choices=("cgan", "none"), help="class-conditional generator")
    p.add_argument("--translator", default="fastcut", choices=("fastcut", "cut", "cyclegan"),
                   help="translator used with --target")
    p.add_argument("--seeds", type=int, default=5, help="seeds, each retraining its generator (default 5)")
    p.add_argument("--budget", default="standard", choices=("quick", "standard"),
                   help="step budgets: quick (a first look in minutes) or standard")
    p.add_argument("--classical", nargs="+", default=["flips_shifts", "randaugment"],
                   help="classical augmentation kinds tried (the best on validation is the reference)")
    p.add_argument("--shares", nargs="+", type=float, default=[0.25, 0.5], help="synthetic shares of the training set")
    p.add_argument("--metric", default="auc", choices=("auc", "accuracy", "balanced_accuracy"),
                   help="test metric reported, and validation metric of every choice")
    p.add_argument("--arch", default="small_cnn", help="classifier architecture")
    p.add_argument("--versions", default="refuse", choices=("refuse", "mix", "rerun"),
                   help="cached results of another synthaug version in --out: refuse to start (default), report "
                        "them together (each version listed) or recompute them")
    p.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="torch threads")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar on stderr")
    p.add_argument("--out", default="study_out", help="report, cache and models (default: study_out)")
    p.set_defaults(func=_study)

    p = sub.add_parser("info", help="print a model directory's config")
    p.add_argument("model")
    p.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)[1:]
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, OSError) as e:
        print(f"synthaug: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
