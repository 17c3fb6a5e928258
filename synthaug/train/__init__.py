"""Training: one engine (:class:`Trainer`) and the recipes it runs, registered by name."""

from .cgan import CGANConfig, CGANRecipe
from .cut import CUTConfig, CUTRecipe, FastCUTConfig, FastCUTRecipe
from .engine import Trainer, TrainingDivergedError, TrainResult, read_metrics
from .recipe import Recipe, get_recipe, list_recipes, register_recipe
from .sampler import BatchSampler
from .srgan import SRGANConfig, SRGANRecipe
from .translation import CycleGANConfig, CycleGANRecipe, Pix2PixConfig, Pix2PixRecipe

__all__ = ["Trainer", "TrainResult", "TrainingDivergedError", "read_metrics", "Recipe", "BatchSampler",
           "register_recipe", "get_recipe", "list_recipes",
           "CGANConfig", "CGANRecipe",
           "CycleGANConfig", "CycleGANRecipe", "Pix2PixConfig", "Pix2PixRecipe",
           "CUTConfig", "CUTRecipe", "FastCUTConfig", "FastCUTRecipe",
           "SRGANConfig", "SRGANRecipe"]
