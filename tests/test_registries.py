"""Registries by role (nets, losses, recipes), the net contracts, self-describing nets and the single run length."""

import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn as nn

import synthaug.registry
from synthaug.cli import STEPS_WITHOUT_SCHEDULE, build_parser, main
from synthaug.data import from_arrays
from synthaug.losses import LOSSES, MODES, GANLoss, GANObjective, list_losses, register_loss
from synthaug.models import GeneratorModel, TranslatorModel, load_model
from synthaug.nets import (GENERATORS, NETS, create_net, list_classifiers, list_discriminators, list_generators,
                           list_nets, list_translation_discriminators, list_translators, list_upscalers, register)
from synthaug.train import (CGANConfig, CGANRecipe, CycleGANConfig, CycleGANRecipe, Recipe, Trainer,
                            get_recipe, list_recipes, register_recipe)
from synthaug.train.recipe import RECIPES


@pytest.fixture
def scratch_registries(monkeypatch):
    """Let a test register classes without leaving them in the process-wide registries."""
    for registry in [*NETS.values(), LOSSES, RECIPES]:
        monkeypatch.setattr(registry, "_classes", dict(registry._classes))
    monkeypatch.setattr(synthaug.registry, "_MODEL_KINDS", dict(synthaug.registry._MODEL_KINDS))


def test_one_registry_per_role():
    assert list_generators() == ["dcgan", "style", "biggan"]
    assert list_discriminators() == ["projection"]
    assert list_translators() == ["resnet", "unet", "lptn"]
    assert list_translation_discriminators() == ["patchgan", "multiscale_patchgan", "srgan_vgg"]
    assert list_upscalers() == ["srresnet"]
    assert list_classifiers() == ["small_cnn", "resnet18_small", "lenet"]
    assert sorted(list_generators() + list_discriminators() + list_translators()
                  + list_translation_discriminators() + list_upscalers() + list_classifiers()) == list_nets()
    assert list_losses() == list(MODES)
    assert list_recipes() == ["cgan", "cyclegan", "pix2pix", "cut", "fastcut", "srgan"]
    assert get_recipe("cyclegan") is CycleGANRecipe and CycleGANRecipe.config_class is CycleGANConfig
    assert CGANRecipe.name == "cgan"
    with pytest.raises(ValueError, match=r"recipe: expected one of \['cgan', 'cyclegan', 'pix2pix', 'cut', "
                                         r"'fastcut', 'srgan'\], found 'gan'"):
        get_recipe("gan")
    with pytest.raises(ValueError, match=r"arch: expected one of \[.*'dcgan'.*\], found 'cgan_dcgan'"):
        create_net("cgan_dcgan", num_classes=2, image_size=16)


@pytest.mark.parametrize("argv,known", [
    (["train", "cgan", "--data", "x", "--out", "o", "--arch", "resnet"], "'dcgan', 'style', 'biggan'"),
    (["train", "cyclegan", "--a", "x", "--b", "y", "--out", "o", "--arch", "dcgan"], "'resnet', 'unet'"),
    (["train", "pix2pix", "--data", "x", "--out", "o", "--arch", "style"], "'resnet', 'unet'"),
    (["train", "cgan", "--data", "x", "--out", "o", "--loss", "vanilla"],
     "'minimax', 'nonsaturating', 'hinge', 'lsgan', 'wgan'"),
    (["train", "cyclegan", "--a", "x", "--b", "y", "--out", "o", "--loss", "vanilla"], "'lsgan'"),
    (["train", "srgan", "--data", "x", "--out", "o", "--arch", "resnet"], "'srresnet'"),
    (["train", "gan", "--out", "o"], "'cgan', 'cyclegan', 'pix2pix', 'cut', 'fastcut', 'srgan'"),
])
def test_cli_refuses_unknown_names_listing_the_known_ones(argv, known, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" in err and known in err


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_cli_help_lists_every_recipe(argv, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in list_recipes())


def test_cli_defaults_come_from_the_recipe_configs():
    parser = build_parser()
    cgan = parser.parse_args(["train", "cgan", "--data", "x", "--out", "o"])
    assert (cgan.generator, cgan.loss) == (CGANConfig.generator, CGANConfig.loss)
    cyc = parser.parse_args(["train", "cyclegan", "--a", "x", "--b", "y", "--out", "o"])
    assert (cyc.generator, cyc.loss, cyc.batch_size) == ("resnet", "lsgan", 1)
    p2p = parser.parse_args(["train", "pix2pix", "--data", "x", "--out", "o"])
    assert (p2p.generator, p2p.loss, p2p.batch_size) == ("unet", "nonsaturating", 4)
    assert parser.parse_args(["train", "cgan", "--data", "x", "--out", "o", "--r1", "2", "--arch", "style"]) \
        .r1_gamma == 2.0  # the options' older names are aliases of the field names
    for name in list_recipes():  # every config field is an option (dest: the field) defaulting to the field
        config_class = get_recipe(name).config_class
        data = ["--a", "x", "--b", "y"] if "lambda_task" in {f.name for f in dataclasses.fields(config_class)} \
            else ["--data", "x"]
        args = vars(parser.parse_args(["train", name, *data, "--out", "o"]))
        for f in dataclasses.fields(config_class):
            if f.name in ("steps", "amp"):
                continue
            if f.default is dataclasses.MISSING or isinstance(f.default, (tuple, dict)):
                assert args[f.name] is None, (name, f.name)  # a dict or list not given: the config's default
            else:
                assert args[f.name] == f.default, (name, f.name)
        assert args["steps"] == (getattr(config_class, "steps", None) or STEPS_WITHOUT_SCHEDULE)
    assert vars(parser.parse_args(["train", "fastcut", "--a", "x", "--b", "y", "--out", "o"]))["lambda_nce"] == 10.0


def test_cli_train_options_come_from_a_recipe_registered_anywhere(scratch_registries, capsys, tmp_path):
    """A recipe registered in this test module gets ``synthaug train <name>``, its options generated from its config
    dataclass (names, types, defaults, help from the field metadata) plus its own data options; cli.py lists none."""
    from synthaug.train.recipe import option

    @dataclasses.dataclass
    class ToyConfig:
        steps: int = 7
        width: int = option(4, "channels of the toy generator")
        rate: float = dataclasses.field(default=0.5, metadata={"help": "how fast the toy learns"})
        style: str = option("plain", "how it looks", choices=("plain", "fancy"), flags=("--look",))
        noisy: bool = option(False, "add noise")
        extras: dict = option(help="JSON dict of extra settings", factory=lambda: {"a": 1})
        layers: tuple = option(("x", "y"), "maps to use")

    @register_recipe("toy", ToyConfig)
    class ToyRecipe(Recipe):
        """Toy recipe: trains nothing of note."""

        exports = "translator"
        built = []
        train_step = sample_grid = save_pretrained = None

        @classmethod
        def add_arguments(cls, parser):
            parser.add_argument("--toy-data", required=True, help="where the toy reads its data")

        @classmethod
        def from_arguments(cls, args, config, check):
            cls.built.append((args.toy_data, config))
            raise ValueError("toy: built, not trained")

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", "--help"])
    assert e.value.code == 0 and "toy" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", "toy", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("Toy recipe: trains nothing of note.", "settings (ToyConfig)", "--toy-data TOY_DATA where the toy "
                 "reads its data", "--width WIDTH channels of the toy generator (default: 4)",
                 "--rate RATE how fast the toy learns (default: 0.5)", "--style NAME, --look NAME how it looks: plain, "
                 "fancy (default: plain)", "--noisy, --no-noisy add noise (default: off)",
                 '--extras JSON JSON dict of extra settings (default: {"a": 1})',
                 "--layers A,B,... maps to use (default: x,y)", "--steps STEPS run length (default: 7)"):
        assert text in out, text
    argv = ["train", "toy", "--toy-data", "d", "--out", str(tmp_path), "--width", "9", "--look", "fancy", "--noisy",
            "--extras", '{"b": 2}', "--layers", "p,q", "--steps", "3"]
    assert main(argv) == 2  # the toy's builder ran with the config of the command line, then refused
    assert ToyRecipe.built == [("d", ToyConfig(steps=3, width=9, rate=0.5, style="fancy", noisy=True,
                                               extras={"a": 1, "b": 2}, layers=("p", "q")))]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "toy", "--toy-data", "d", "--out", "o", "--style", "odd"])
    assert "invalid choice: 'odd'" in capsys.readouterr().err


def test_model_kinds_have_one_source(tmp_path, scratch_registries):
    """The kinds synthaug.models loads are the registry's; every recipe writes its name as the kind, listed under
    the role it exports, and a recipe of a new name adds its kind."""
    assert synthaug.registry.model_kinds("generator") == ("cgan",)
    assert synthaug.registry.model_kinds("translator") == ("cyclegan", "pix2pix", "cut", "fastcut")
    assert synthaug.registry.model_kinds("upscaler") == ("srgan",)
    for name in list_recipes():
        assert name in synthaug.registry.model_kinds(get_recipe(name).exports)

    @register_recipe("my_cyclegan", CycleGANConfig)
    class MyCycleGAN(CycleGANRecipe):
        pass

    assert "my_cyclegan" in synthaug.registry.model_kinds("translator")
    res = Trainer(_cyclegan(steps=2, cls=MyCycleGAN), tmp_path / "run", progress=False).fit()
    model = load_model(res.model_dir)
    assert isinstance(model, TranslatorModel) and model.kind == "my_cyclegan"
    with pytest.raises(ValueError, match="expected a generator"):
        GeneratorModel.from_pretrained(res.model_dir)

    class Generating(CycleGANRecipe):  # claims the classifiers' kind for generators
        exports = "generator"

    with pytest.raises(ValueError, match="model kind 'classifier': expected the kind of generator directories, "
                                         "found the kind of classifier directories"):
        register_recipe("classifier", CycleGANConfig)(Generating)
    assert "classifier" not in list_recipes() and Generating.name == "cyclegan"

    class Undeclared(CycleGANRecipe):
        exports = None

    with pytest.raises(TypeError, match=r"recipe 'undeclared' \(Undeclared\): expected exports one of \['generator', "
                                        r"'translator', 'upscaler'\]"):
        register_recipe("undeclared", CycleGANConfig)(Undeclared)


def test_registration_checks_the_contract(scratch_registries):
    class NoForward(nn.Module):
        def __init__(self, num_classes, image_size, channels=1):
            super().__init__()

    with pytest.raises(TypeError, match=r"generator 'g1' .*missing method forward"):
        register("generator", "g1")(NoForward)

    class NoTruncation(NoForward):
        def forward(self, z, y):
            return z

    with pytest.raises(TypeError, match=r"generator 'g2' .*forward must accept \['truncation'\]"):
        register("generator", "g2")(NoTruncation)

    class NoClassHead(nn.Module):
        def __init__(self, num_classes, image_size, channels=1):
            super().__init__()

        def forward(self, x, y):
            return x

    with pytest.raises(TypeError, match=r"discriminator 'd1' .*missing method forward_with_class"):
        register("discriminator", "d1")(NoClassHead)

    class OneInput(NoClassHead):
        def forward_with_class(self, x):
            return x, None

    with pytest.raises(TypeError, match=r"discriminator 'd2' .*forward_with_class must accept \['y'\]"):
        register("discriminator", "d2")(OneInput)

    class OtherNames(NoForward):  # positional parameters are passed positionally: any names do
        def forward(self, latent, labels, truncation=1.0):
            return latent

    assert register("generator", "other_names")(OtherNames) is OtherNames

    class NoSize(nn.Module):
        def __init__(self, num_classes, channels=1):
            super().__init__()

        def forward(self, z, y, truncation=1.0):
            return z

    with pytest.raises(TypeError, match=r"generator 'g3' .*__init__ must accept \['image_size'\]"):
        register("generator", "g3")(NoSize)

    class NotAModule:
        def __init__(self, in_channels, out_channels):
            pass

        def forward(self, x):
            return x

    with pytest.raises(TypeError, match=r"translator 't1' .*expected an nn.Module subclass"):
        register("translator", "t1")(NotAModule)
    with pytest.raises(ValueError, match=r"role: expected one of"):
        register("critic", "c1")
    assert not {"g1", "g2", "g3", "d1", "d2", "t1"} & set(list_nets())

    @register("generator", "no_z_dim")
    class NoZDim(nn.Module):  # the class passes; its instances lack an attribute the contract requires
        def __init__(self, num_classes, image_size, channels=1):
            super().__init__()
            self.num_classes, self.image_size, self.channels = num_classes, image_size, channels

        def forward(self, z, y, truncation=1.0):
            return z

    with pytest.raises(TypeError, match=r"generator 'no_z_dim' \(NoZDim\): missing attribute\(s\) \['z_dim'\]"):
        create_net("no_z_dim", num_classes=2, image_size=16)
    with pytest.raises(ValueError, match="arch name 'dcgan' is already registered as a generator"):
        register("translator", "dcgan")(NoZDim)


def test_loss_and_recipe_registration_check_their_contracts(scratch_registries):
    class HalfLoss(GANObjective):
        def d_term(self, real, fake, s):
            return fake.mean() - real.mean()

    with pytest.raises(TypeError, match=r"loss 'half' \(HalfLoss\): missing method g_term"):
        register_loss("half")(HalfLoss)

    @register_loss("linear")
    class Linear(HalfLoss):
        def g_term(self, fake):
            return -fake.mean()

    assert "linear" in list_losses() and GANLoss("linear").d_loss(torch.ones(2), torch.zeros(2)).item() == -1.0
    assert GANLoss("wgan").needs_gradient_penalty and not GANLoss("hinge").needs_gradient_penalty

    class Unfinished(Recipe):
        def train_step(self, step):
            return {}

    with pytest.raises(TypeError, match=r"recipe 'half' \(Unfinished\): missing method\(s\) \['sample_grid', "
                                        r"'save_pretrained'\]"):
        register_recipe("half", CGANConfig)(Unfinished)
    with pytest.raises(TypeError, match=r"recipe 'cfg' .*expected a dataclass config class"):
        register_recipe("cfg", dict)(CGANRecipe)


def test_configs_refuse_nets_of_another_role():
    with pytest.raises(ValueError, match=r"generator: expected one of \['dcgan', 'style', 'biggan'\], found 'resnet'"):
        CGANConfig(generator="resnet").validate()
    with pytest.raises(ValueError, match=r"loss: expected one of .*found 'vanilla'"):
        CGANConfig(loss="vanilla").validate()
    a = from_arrays(np.zeros((4, 16, 16, 1), np.float32))
    with pytest.raises(ValueError, match=r"generator: expected one of \['resnet', 'unet', 'lptn'\], found 'dcgan'"):
        CycleGANRecipe(a, a, CycleGANConfig(generator="dcgan"), device="cpu")
    with pytest.raises(ValueError, match=r"discriminator: expected one of \['patchgan', 'multiscale_patchgan', "
                                         r"'srgan_vgg'\]"):
        CycleGANRecipe(a, a, CycleGANConfig(discriminator="projection"), device="cpu")


def test_a_net_records_its_constructor_arguments():
    g = GENERATORS.get("style")(num_classes=3, image_size=16, z_dim=8, w_dim=16, mapping_layers=2,
                                base_channels=4, max_channels=8)
    assert g.spec["arch"] == "style" and g.spec["kwargs"]["z_dim"] == 8
    assert g.spec["kwargs"]["channels"] == 1 and g.spec["kwargs"]["mixing_prob"] == 0.9  # defaults too
    again = create_net(g.spec["arch"], **json.loads(json.dumps(g.spec["kwargs"])))
    assert again.spec == g.spec

    class Unregistered(type(g)):  # a subclass does not claim its parent's name
        pass

    assert not hasattr(Unregistered(num_classes=2, image_size=16), "spec")


def test_recorded_spec_round_trips_through_save_and_load(tmp_path):
    torch.manual_seed(0)
    net = create_net("dcgan", num_classes=2, image_size=16, z_dim=8, base_channels=4, max_channels=8)
    cfg = {"kind": "cgan", "image_size": 16, "channels": 1, "num_classes": 2, "class_names": ["a", "b"]}
    GeneratorModel(net, cfg, device="cpu").save_pretrained(tmp_path / "g")
    written = json.loads((tmp_path / "g" / "config.json").read_text())
    assert written["nets"] == {"generator": json.loads(json.dumps(net.spec))}
    loaded = GeneratorModel.from_pretrained(tmp_path / "g", device="cpu")
    assert loaded.generator.spec == net.spec
    images, _ = loaded.sample(4, seed=0)
    # a directory written before nets recorded their defaults (only the arguments passed) still loads the same
    written["nets"]["generator"]["kwargs"] = {"num_classes": 2, "image_size": 16, "z_dim": 8, "base_channels": 4,
                                              "max_channels": 8}
    (tmp_path / "g" / "config.json").write_text(json.dumps(written))
    assert torch.equal(GeneratorModel.from_pretrained(tmp_path / "g", device="cpu").sample(4, seed=0)[0], images)

    unet = create_net("unet", in_channels=1, out_channels=1, ngf=4, image_size=16)
    TranslatorModel({"G_A2B": unet}, {"kind": "pix2pix", "image_size": 16, "channels_a": 1, "channels_b": 1},
                    device="cpu").save_pretrained(tmp_path / "t")
    back = TranslatorModel.from_pretrained(tmp_path / "t", device="cpu")
    assert back.nets["G_A2B"].spec == unet.spec and back.config["nets"]["G_A2B"]["kwargs"]["num_downs"] is None
    with pytest.raises(TypeError, match="expected a net registered with synthaug.nets.register"):
        GeneratorModel(nn.Linear(2, 2), cfg, device="cpu").save_pretrained(tmp_path / "x")


def _cyclegan(steps, cls=CycleGANRecipe):
    a = from_arrays(np.random.default_rng(0).uniform(0, 1, (4, 16, 16, 1)).astype(np.float32))
    cfg = CycleGANConfig(steps=steps, g_kwargs={"ngf": 4, "n_blocks": 1}, d_kwargs={"ndf": 4, "n_layers": 2},
                         pool_size=2)
    return cls(a, a, cfg, device="cpu")


def test_run_length_has_one_source(tmp_path):
    recipe = _cyclegan(steps=4)
    assert recipe.run_length == 4 and Trainer(recipe, tmp_path / "a").steps == 4
    assert Trainer(recipe, tmp_path / "a", 4).steps == 4
    with pytest.raises(ValueError, match=r"steps: expected 4, the run length in the 'cyclegan' recipe's config"):
        Trainer(recipe, tmp_path / "a", 8)
    with pytest.raises(ValueError, match="steps: expected an int >= 1, found 0"):
        _cyclegan(steps=0)
    data = from_arrays(np.zeros((4, 16, 16, 1), np.float32), np.array([0, 1, 0, 1]), class_names=["a", "b"])
    cgan = CGANRecipe(data, CGANConfig(g_kwargs={"base_channels": 4, "max_channels": 8, "z_dim": 8},
                                       d_kwargs={"base_channels": 4, "max_channels": 8}, batch_size=2), device="cpu")
    assert cgan.run_length is None and Trainer(cgan, tmp_path / "c", 3).steps == 3
    with pytest.raises(ValueError, match=r"steps: expected a positive int \(the 'cgan' recipe's config sets no run"):
        Trainer(cgan, tmp_path / "c")
