"""MAE pre-training: the model, mask sampling, data, the training loop and figures (torch/timm only)."""
from .mae import MAE_MODELS, MaskedAutoencoder, build_mae, fit_pca
from .masking import sample_noise

__all__ = ["MAE_MODELS", "MaskedAutoencoder", "build_mae", "fit_pca", "sample_noise"]
