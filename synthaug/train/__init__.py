"""Training: one engine (:class:`Trainer`) and the recipes it runs."""

from .cgan import CGANConfig, CGANRecipe
from .engine import Trainer, TrainingDivergedError, TrainResult, read_metrics
from .recipe import Recipe
from .sampler import BatchSampler
from .translation import CycleGANConfig, CycleGANRecipe, Pix2PixConfig, Pix2PixRecipe

__all__ = ["Trainer", "TrainResult", "TrainingDivergedError", "read_metrics", "Recipe", "BatchSampler",
           "CGANConfig", "CGANRecipe",
           "CycleGANConfig", "CycleGANRecipe", "Pix2PixConfig", "Pix2PixRecipe"]
