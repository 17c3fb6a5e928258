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
import inspect
import json
import re
import sys
from pathlib import Path

# ``train --steps`` for a recipe whose config has no run length (cgan); the others default to their config's steps
STEPS_WITHOUT_SCHEDULE = 3000


def _default(fn, name: str):
    """The default of parameter ``name`` of ``fn`` (a function or class), so an option repeats no default."""
    return inspect.signature(fn).parameters[name].default


def _add_common_train(p: argparse.ArgumentParser, recipe_cls) -> None:
    from .train import Trainer

    config_class = recipe_cls.config_class
    p.add_argument("--out", required=True, help="output folder (checkpoints, samples, metrics, model/)")
    p.add_argument("--steps", type=int, default=getattr(config_class, "steps", None) or STEPS_WITHOUT_SCHEDULE,
                   help="run length (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=config_class.batch_size)
    p.add_argument("--seed", type=int, default=_default(recipe_cls, "seed"))
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: best available)")
    p.add_argument("--ckpt-every", type=int, default=_default(Trainer, "ckpt_every"))
    p.add_argument("--sample-every", type=int, default=_default(Trainer, "sample_every"))
    p.add_argument("--log-every", type=int, default=_default(Trainer, "log_every"))
    p.add_argument("--no-resume", action="store_true", help="start over even if out/ has a checkpoint")
    p.add_argument("--no-progress", action="store_true")


def _train(args) -> int:
    """``synthaug train <recipe>``: the registered recipe of that name, built from the arguments by its command's
    builder (:data:`_TRAIN_COMMANDS`), run by the Trainer."""
    import contextlib
    import io

    from .train import Trainer, get_recipe
    from .train.distributed import init_distributed
    from .utils import progress_default, seed_everything

    info = init_distributed(args.device)  # a no-op unless started by torchrun
    seed_everything(args.seed)
    # under torchrun only rank 0 reports (the data summary, the helper classifiers, the result); every rank builds
    quiet = contextlib.redirect_stdout(io.StringIO()) if not info.is_main else contextlib.nullcontext()
    with quiet, progress_default(not args.no_progress):  # helper classifiers trained while building follow the flag
        recipe = args.build(args, get_recipe(args.recipe))
        result = Trainer(recipe, args.out, args.steps, ckpt_every=args.ckpt_every, sample_every=args.sample_every,
                         log_every=args.log_every, progress=not args.no_progress).fit(resume=not args.no_resume)
        _report(result)
    return 0


def _refuse_other_settings(args, recipe_cls, config, **attributes) -> None:
    """Before building a recipe (which may train a task classifier, a pseudo-labeller or a content encoder first):
    refuse an output folder whose checkpoint holds another recipe's run or other settings, as the Trainer would when
    it resumes, unless --no-resume starts over."""
    from .train.engine import check_out_dir

    if args.no_resume:
        return
    try:
        check_out_dir(args.out, recipe_cls.name, recipe_cls.planned_config_dict(config, **attributes))
    except ValueError as e:
        raise ValueError(f"--out: {e} (checked before training anything; --no-resume starts over in this folder)") \
            from None


def _cgan_recipe(args, recipe_cls):
    from .data import load_labelled_and_rest, load_training_data, load_unlabelled

    kw = dict(split=args.split, size=args.size, channels=args.channels, fraction=args.fraction,
              n_per_class=args.n_per_class, seed=args.seed)
    unlabelled = None
    if args.unlabelled == "rest":
        data, unlabelled = load_labelled_and_rest(args.data, **kw)
    else:
        data = load_training_data(args.data, **kw)
        if args.unlabelled:
            unlabelled = load_unlabelled(args.unlabelled, data, split=args.unlabelled_split, size=args.size,
                                         channels=args.channels)
    print(data.summary())
    if unlabelled is not None:
        print(f"unlabelled: {len(unlabelled)} images {tuple(unlabelled.images.shape[1:])} from {args.unlabelled!r}")
    elif args.pseudo_label_threshold is not None:
        raise ValueError("--pseudo-label-threshold: needs --unlabelled (the pool to pseudo-label), found none")
    cfg = recipe_cls.config_class(
        generator=args.arch, loss=args.loss, batch_size=args.batch_size, lr_g=args.lr_g, lr_d=args.lr_d,
        n_critic=args.n_critic, diffaug="" if args.no_diffaug else args.diffaug, ada=args.ada, r1_gamma=args.r1,
        label_smoothing=args.label_smoothing, ema_decay=args.ema_decay, sync_batchnorm=args.sync_batchnorm,
        g_kwargs=json.loads(args.g_kwargs), d_kwargs=json.loads(args.d_kwargs), ortho_reg=args.ortho_reg,
        pseudo_label_threshold=args.pseudo_label_threshold,
        pseudo_label_classifier=json.loads(args.pseudo_label_classifier) if args.pseudo_label_classifier else None,
        progressive=None if args.progressive is None else _json_dict(args.progressive, "--progressive"))
    _refuse_other_settings(args, recipe_cls, cfg, seed=args.seed, image_size=int(data.images.shape[-1]),
                           unlabelled=unlabelled)
    recipe = recipe_cls(data, cfg, device=args.device, seed=args.seed, unlabelled=unlabelled)
    semi = recipe.pseudo_label_summary()
    if semi is not None and semi["pseudo_label_threshold"] is not None:
        print(f"pseudo-labelled: {semi['n_pseudo_labelled']} of {semi['n_unlabelled']} unlabelled images at "
              f"probability >= {semi['pseudo_label_threshold']} {semi['pseudo_labels_per_class']}")
    return recipe


def _translation_config(args, config_class, **fields):
    """The translation settings every translation command shares, plus ``fields``."""
    defaults = config_class()
    # the config's default generator arguments are sized for its default generator; another --arch starts from its own
    g_defaults = defaults.g_kwargs if args.arch == defaults.generator else {}
    return config_class(steps=args.steps, generator=args.arch, loss=args.loss, batch_size=args.batch_size,
                        lr=args.lr, g_kwargs={**g_defaults, **_json_dict(args.g_kwargs, "--g-kwargs")},
                        d_kwargs={**defaults.d_kwargs, **_json_dict(args.d_kwargs, "--d-kwargs")},
                        cpu_bf16=args.cpu_bf16, **fields)


def _unpaired_recipe(args, recipe_cls, **fields):
    """An unpaired recipe (CycleGAN, CUT) from --a, --b, the task-loss arguments and the recipe's own ``fields``."""
    from .data import load_domain

    task = args.lambda_task > 0
    if not task and (args.task_classifier is not None or args.task_min_accuracy is not None):
        raise ValueError(f"--lambda-task: --task-classifier / --task-min-accuracy set the task loss, found "
                         f"--lambda-task {args.lambda_task}; set it > 0")
    a = load_domain(args.a, args.size, args.channels, labelled=task, arg="--a")
    b = load_domain(args.b, args.size, args.channels, arg="--b")
    print(f"domain A: {len(a)} images {tuple(a.images.shape[1:])}; domain B: {len(b)} images "
          f"{tuple(b.images.shape[1:])}")
    if task:
        print(f"task loss: domain A's labels {a.class_counts()}")
    cfg = _translation_config(args, recipe_cls.config_class, lambda_task=args.lambda_task,
                              task_start_step=args.task_start_step, task_min_accuracy=args.task_min_accuracy,
                              task_classifier=_json_dict(args.task_classifier, "--task-classifier"),
                              lambda_structure=args.lambda_structure, **fields)
    _refuse_other_settings(args, recipe_cls, cfg)
    recipe = recipe_cls(a, b, cfg, device=args.device, seed=args.seed,
                        names=(args.name_a or Path(args.a).stem, args.name_b or Path(args.b).stem))
    if recipe.task is not None:
        info = recipe.task.info
        print(f"task classifier: accuracy {info['accuracy']:.3f} ({info['accuracy_on']}); the task loss is "
              + (f"on from step {cfg.task_start_step}" if recipe.task.reliable
                 else f"OFF (below --task-min-accuracy {cfg.task_min_accuracy})"))
    return recipe


def _cyclegan_recipe(args, recipe_cls):
    return _unpaired_recipe(args, recipe_cls, lambda_cycle=args.lambda_cycle, lambda_identity=args.lambda_identity)


def _nce_layers(args, config_class) -> tuple[str, ...]:
    """``--nce-layers``, or the config's default when it names maps of the generator chosen by ``--arch``; for another
    generator the maps must be named (the default ones are a ResNet's): refused naming that generator's maps."""
    if args.nce_layers is not None:
        return tuple(n.strip() for n in args.nce_layers.split(",") if n.strip())
    default = tuple(config_class.nce_layers)
    if args.arch == config_class.generator:
        return default
    from .nets import create_net

    kwargs = {**_json_dict(args.g_kwargs, "--g-kwargs"), "in_channels": args.channels, "out_channels": args.channels}
    try:
        maps = list(create_net(args.arch, **kwargs).feature_layers)
    except (TypeError, ValueError, AttributeError):
        maps = None
    named = f"its maps are {', '.join(maps)}; e.g. --nce-layers {','.join(maps[:4])}" if maps else \
        "name maps of its encoder"
    raise ValueError(f"--nce-layers: expected the {args.arch} generator's maps for PatchNCE, found none given (the "
                     f"default {','.join(default)} names maps of the {config_class.generator} generator); {named}")


def _cut_recipe(args, recipe_cls):
    return _unpaired_recipe(args, recipe_cls, lambda_gan=args.lambda_gan, lambda_nce=args.lambda_nce,
                            nce_idt=args.nce_idt, nce_layers=_nce_layers(args, recipe_cls.config_class),
                            num_patches=args.num_patches, flip_equivariance=args.flip_equivariance)


def _pix2pix_recipe(args, recipe_cls):
    from .data import load_paired

    pairs = load_paired(args.data, size=args.size, channels=args.channels)
    print(f"pairs: {len(pairs)}")
    cfg = _translation_config(args, recipe_cls.config_class, lambda_l1=args.lambda_l1)
    _refuse_other_settings(args, recipe_cls, cfg)
    return recipe_cls(pairs, cfg, device=args.device, seed=args.seed)


def _srgan_recipe(args, recipe_cls):
    from .data import load_domain

    data = load_domain(args.data, args.size, args.channels, split=args.split, arg="--data")
    print(f"high-resolution images: {len(data)} {tuple(data.images.shape[1:])} from {args.data!r}")
    defaults = recipe_cls.config_class()
    cfg = recipe_cls.config_class(
        steps=args.steps, scale=args.scale, crop=args.crop, generator=args.arch, discriminator=args.discriminator,
        g_kwargs={**defaults.g_kwargs, **_json_dict(args.g_kwargs, "--g-kwargs")},
        d_kwargs={**defaults.d_kwargs, **_json_dict(args.d_kwargs, "--d-kwargs")}, loss=args.loss,
        pixel_loss=args.pixel_loss, lambda_pixel=args.lambda_pixel, lambda_content=args.lambda_content,
        lambda_adv=args.lambda_adv, adv_start_step=args.adv_start_step,
        content_encoder=_json_dict(args.content_encoder, "--content-encoder"), flip=args.flip,
        batch_size=args.batch_size, lr=args.lr, decay_start=args.decay_start, cpu_bf16=args.cpu_bf16)
    _refuse_other_settings(args, recipe_cls, cfg)
    recipe = recipe_cls(data, cfg, device=args.device, seed=args.seed, encoder=args.encoder)
    info = recipe.content_info
    if info is None:
        print("content loss: off (--lambda-content 0)")
    elif info.get("source") == "trained":
        print(f"content encoder: autoencoder trained on the crops ({info['steps']} steps, reconstruction L1 "
              f"{info['reconstruction_l1']:.4f})")
    else:
        print(f"content encoder: {info['source']}")
    print(f"adversarial term from step {recipe.adv_start} (of {cfg.steps}); learning rate x0.1 from step "
          f"{recipe.decay_at}")
    return recipe


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


def _cgan_arguments(p: argparse.ArgumentParser, config_class) -> None:
    from .losses import list_losses
    from .nets import list_generators

    p.add_argument("--data", required=True, help="'breastmnist', an .npz file, or a folder root/<class>/*.png")
    p.add_argument("--split", default="train")
    p.add_argument("--size", type=int, default=None, help="image size for folders (and digits npz)")
    p.add_argument("--channels", type=int, default=None, help="1 or 3 for folders")
    p.add_argument("--fraction", type=float, default=None)
    p.add_argument("--n-per-class", type=int, default=None)
    p.add_argument("--arch", default=config_class.generator, choices=list_generators(),
                   help="generator architecture")
    p.add_argument("--loss", default=config_class.loss, choices=list_losses(), help="GAN loss")
    p.add_argument("--lr-g", type=float, default=config_class.lr_g)
    p.add_argument("--lr-d", type=float, default=config_class.lr_d)
    p.add_argument("--n-critic", type=int, default=config_class.n_critic)
    p.add_argument("--diffaug", default=config_class.diffaug)
    p.add_argument("--no-diffaug", action="store_true")
    p.add_argument("--ada", action=argparse.BooleanOptionalAction, default=config_class.ada,
                   help="adaptive augmentation strength")
    p.add_argument("--r1", type=float, default=config_class.r1_gamma, help="R1 penalty gamma")
    p.add_argument("--label-smoothing", type=float, default=config_class.label_smoothing)
    p.add_argument("--ema-decay", type=float, default=config_class.ema_decay)
    p.add_argument("--g-kwargs", default="{}", help="JSON dict of generator arguments")
    p.add_argument("--d-kwargs", default="{}", help="JSON dict of discriminator arguments")
    p.add_argument("--ortho-reg", type=float, default=config_class.ortho_reg,
                   help="BigGAN's orthogonal regularisation weight on the generator (default: the generator's own, "
                        "1e-4 for biggan, 0 otherwise)")
    p.add_argument("--sync-batchnorm", action=argparse.BooleanOptionalAction, default=config_class.sync_batchnorm,
                   help="under torchrun on CUDA: SyncBatchNorm")
    p.add_argument("--unlabelled", default=None, metavar="PATH_OR_SPEC",
                   help="semi-supervised: unlabelled images for the unconditional part of D. 'rest' (the --data "
                        "images left out by --fraction/--n-per-class), 'breastmnist', an .npz file, or an image "
                        "folder (flat or class folders; labels ignored; read at --size or the labelled size)")
    p.add_argument("--unlabelled-split", default="train", help="split of 'breastmnist' / an .npz for --unlabelled")
    p.add_argument("--pseudo-label-threshold", type=float, default=config_class.pseudo_label_threshold,
                   help="unlabelled images a classifier trained on the labelled set gives this probability or more "
                        "join the conditional set with that class (default: off)")
    p.add_argument("--pseudo-label-classifier", default=None,
                   help="JSON dict overriding the pseudo-labelling classifier's settings (e.g. max_steps, width)")
    p.add_argument("--progressive", default=None, metavar="JSON",
                   help="progressive growing from a low resolution: a JSON dict of start / fade_steps / stable_steps "
                        "('{}' for the defaults); default off")


def _translation_arguments(p: argparse.ArgumentParser, config_class) -> None:
    from .losses import list_losses
    from .nets import list_translators

    p.add_argument("--arch", default=config_class.generator, choices=list_translators(),
                   help="generator architecture")
    p.add_argument("--loss", default=config_class.loss, choices=list_losses(), help="GAN loss")
    p.add_argument("--size", type=int, default=None, help="image size (resize shorter side + center crop)")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--lr", type=float, default=config_class.lr)
    p.add_argument("--g-kwargs", default="{}", help="JSON dict of generator arguments (e.g. ngf, n_blocks)")
    p.add_argument("--d-kwargs", default="{}", help="JSON dict of discriminator arguments (e.g. ndf, n_layers)")
    p.add_argument("--cpu-bf16", action="store_true",
                   help="bfloat16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX): about 1.5x faster "
                        "steps; ignored on other CPUs and on GPUs")


def _unpaired_arguments(p: argparse.ArgumentParser, config_class) -> None:
    p.add_argument("--a", required=True, help="domain A: image folder or .npz")
    p.add_argument("--b", required=True, help="domain B: image folder or .npz")
    p.add_argument("--name-a", default=None)
    p.add_argument("--name-b", default=None)
    p.add_argument("--lambda-task", type=float, default=config_class.lambda_task,
                   help="task-consistency weight (CyCADA): > 0 reads domain A WITH its labels (class folders "
                        "or a labelled .npz), trains a classifier on them and makes translations keep "
                        "their label (default: %(default)s, off)")
    p.add_argument("--task-start-step", type=int, default=config_class.task_start_step,
                   help="first step of the task loss")
    p.add_argument("--task-min-accuracy", type=float, default=config_class.task_min_accuracy,
                   help="the task loss is used only if the classifier's held-out accuracy reaches this")
    p.add_argument("--task-classifier", default=None,
                   help="JSON dict overriding the task classifier's settings (arch, width, max_steps, "
                        "val_fraction, ...)")
    p.add_argument("--lambda-structure", type=float, default=config_class.lambda_structure,
                   help="structure weight: translations keep the input's local patterns (SSIM's structure "
                        "term), whatever they do to brightness and contrast (default: %(default)s, off)")


def _cyclegan_arguments(p: argparse.ArgumentParser, config_class) -> None:
    _unpaired_arguments(p, config_class)
    p.add_argument("--lambda-cycle", type=float, default=config_class.lambda_cycle)
    p.add_argument("--lambda-identity", type=float, default=config_class.lambda_identity)
    _translation_arguments(p, config_class)


def _cut_arguments(p: argparse.ArgumentParser, config_class) -> None:
    _unpaired_arguments(p, config_class)
    p.add_argument("--lambda-gan", type=float, default=config_class.lambda_gan)
    p.add_argument("--lambda-nce", type=float, default=config_class.lambda_nce)
    p.add_argument("--nce-idt", action=argparse.BooleanOptionalAction, default=config_class.nce_idt,
                   help="identity PatchNCE term on domain B images")
    p.add_argument("--nce-layers", default=None,
                   help="comma-separated encoder maps of the generator for PatchNCE (resnet: input, stem, down1, "
                        f"..., block1, ...; lptn: low, stem, block1, ...); default for {config_class.generator}: "
                        f"{','.join(config_class.nce_layers)}; needed with another --arch")
    p.add_argument("--num-patches", type=int, default=config_class.num_patches, help="patches per map and image")
    p.add_argument("--flip-equivariance", action=argparse.BooleanOptionalAction,
                   default=config_class.flip_equivariance, help="translate the flipped batch at random (FastCUT)")
    _translation_arguments(p, config_class)


def _pix2pix_arguments(p: argparse.ArgumentParser, config_class) -> None:
    p.add_argument("--data", required=True, help="folder with A/ and B/ holding same-named images")
    p.add_argument("--lambda-l1", type=float, default=config_class.lambda_l1)
    _translation_arguments(p, config_class)


def _srgan_arguments(p: argparse.ArgumentParser, config_class) -> None:
    from .losses import list_losses
    from .nets import list_translation_discriminators, list_upscalers

    p.add_argument("--data", required=True,
                   help="high-resolution images: an image folder (flat or class folders, labels ignored) or an .npz")
    p.add_argument("--split", default="train", help="split of an .npz --data")
    p.add_argument("--size", type=int, default=None,
                   help="read the images at this size (shorter side resized, centre cropped); required for folders")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--scale", type=int, default=config_class.scale, help="upscaling factor, a power of 2")
    p.add_argument("--crop", type=int, default=config_class.crop,
                   help="side of the random high-resolution training crops (the input is crop / scale)")
    p.add_argument("--arch", default=config_class.generator, choices=list_upscalers(), help="upscaler architecture")
    p.add_argument("--discriminator", default=config_class.discriminator, choices=list_translation_discriminators())
    p.add_argument("--loss", default=config_class.loss, choices=list_losses(), help="GAN loss")
    p.add_argument("--pixel-loss", default=config_class.pixel_loss, choices=["mse", "l1"])
    p.add_argument("--lambda-pixel", type=float, default=config_class.lambda_pixel)
    p.add_argument("--lambda-content", type=float, default=config_class.lambda_content,
                   help="weight of the content loss in a domain encoder's feature space (0: off)")
    p.add_argument("--lambda-adv", type=float, default=config_class.lambda_adv)
    p.add_argument("--adv-start-step", type=int, default=config_class.adv_start_step,
                   help="first step of the adversarial term (default: half the run; before it, pixel + content only)")
    p.add_argument("--decay-start", type=int, default=config_class.decay_start,
                   help="step from which the learning rate is 10x lower (default: three quarters of the run)")
    p.add_argument("--lr", type=float, default=config_class.lr)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=config_class.flip,
                   help="flip training crops left-right at random")
    p.add_argument("--g-kwargs", default="{}", help="JSON dict of upscaler arguments (e.g. nf, n_blocks, norm)")
    p.add_argument("--d-kwargs", default="{}", help="JSON dict of discriminator arguments (e.g. ndf, n_stages)")
    p.add_argument("--content-encoder", default=None,
                   help="JSON dict overriding the settings of the content autoencoder trained on the crops (width, "
                        "steps, batch_size, lr)")
    p.add_argument("--encoder", default=None,
                   help="use the content encoder of an earlier run instead (its model directory or "
                        "content_encoder.safetensors)")
    p.add_argument("--cpu-bf16", action="store_true",
                   help="bfloat16 autocast on a CPU with native bf16 (AVX512-BF16 / AMX); ignored elsewhere")


# ``synthaug train <name>``: one command per registered recipe with a command line (help, its arguments, the
# builder of the recipe from them); the recipe and its config class come from the recipe registry.
_TRAIN_COMMANDS = {
    "cgan": ("class-conditional GAN", _cgan_arguments, _cgan_recipe),
    "cyclegan": ("unpaired translation (CycleGAN)", _cyclegan_arguments, _cyclegan_recipe),
    "pix2pix": ("paired translation (Pix2Pix)", _pix2pix_arguments, _pix2pix_recipe),
    "cut": ("one-sided unpaired translation (CUT)", _cut_arguments, _cut_recipe),
    "fastcut": ("one-sided unpaired translation, lighter (FastCUT)", _cut_arguments, _cut_recipe),
    "srgan": ("super-resolution (SRGAN)", _srgan_arguments, _srgan_recipe),
}


def build_parser() -> argparse.ArgumentParser:
    from .models import UPSCALE_MEMORY_MB
    from .train import get_recipe

    parser = argparse.ArgumentParser(prog="synthaug", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help=f"train a model with a recipe: {', '.join(_TRAIN_COMMANDS)}") \
        .add_subparsers(dest="recipe", required=True)
    for name, (help_text, add_arguments, build) in _TRAIN_COMMANDS.items():
        recipe_cls = get_recipe(name)
        p = train.add_parser(name, help=help_text)
        add_arguments(p, recipe_cls.config_class)
        _add_common_train(p, recipe_cls)
        p.set_defaults(func=_train, build=build)

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

    p = sub.add_parser("info", help="print a model directory's config")
    p.add_argument("model")
    p.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError, OSError) as e:
        print(f"synthaug: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
