"""Evaluation: downstream classifiers with confidence intervals over seeds, domain FID/KID, precision/recall,
density/coverage, memorisation audits and the Classification Accuracy Score.

* :mod:`.classifier` -- SmallCNN / ResNet-18 (28 px), training with validation model selection, metrics
* :mod:`.stats` -- Student-t intervals, paired tests, per-arm summaries
* :mod:`.features` -- feature encoder, FID/KID (torchmetrics), precision/recall, density/coverage
* :mod:`.memorization` -- nearest-neighbour near-copy audit, panels, filtering
* :mod:`.downstream` -- arms, synthetic-share choice, CAS, paired multi-seed comparisons, plots
* :mod:`.superres` -- PSNR / SSIM of upscaled images and the bicubic baseline (``evaluate_upscaler``)
"""

from .classifier import (
    LeNet,
    SmallCNN,
    build_classifier,
    classical_augment,
    evaluate,
    metrics_from_proba,
    per_image,
    predict_proba,
    resnet18_small,
    train_classifier,
)
from .downstream import (
    TRAIN_DEFAULTS,
    bar_chart,
    best_by_validation,
    cas,
    choose_ratio,
    compare_arms,
    compare_results,
    default_arms,
    format_diff,
    markdown_table,
    mixed_training_set,
    pseudo_label_arm,
    real_copies,
    run_arm,
    run_arms,
    score_arm,
    train_arm,
)
from .features import (
    FeatureExtractor,
    density_coverage,
    distribution_metrics,
    fid_kid,
    fid_kid_from_features,
    precision_recall,
    train_feature_encoder,
)
from .memorization import filter_near_copies, memorization_audit, nearest_neighbour_panel
from .stats import mean_ci, paired_test, summarise
from .superres import evaluate_upscaler, modcrop, psnr, sr_metrics, ssim

__all__ = [
    "LeNet",
    "SmallCNN",
    "resnet18_small",
    "build_classifier",
    "classical_augment",
    "per_image",
    "train_classifier",
    "predict_proba",
    "metrics_from_proba",
    "evaluate",
    "mean_ci",
    "paired_test",
    "summarise",
    "FeatureExtractor",
    "train_feature_encoder",
    "fid_kid",
    "fid_kid_from_features",
    "precision_recall",
    "density_coverage",
    "distribution_metrics",
    "memorization_audit",
    "nearest_neighbour_panel",
    "filter_near_copies",
    "TRAIN_DEFAULTS",
    "mixed_training_set",
    "real_copies",
    "train_arm",
    "score_arm",
    "run_arm",
    "pseudo_label_arm",
    "run_arms",
    "best_by_validation",
    "compare_results",
    "format_diff",
    "choose_ratio",
    "cas",
    "default_arms",
    "compare_arms",
    "markdown_table",
    "bar_chart",
    "psnr",
    "ssim",
    "sr_metrics",
    "modcrop",
    "evaluate_upscaler",
]
