"""Figure-2-style reconstructions: masked input, reconstruction (visible patches pasted back), original."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from common.images import IMAGENET_MEAN

from .data import IMAGENET_STD  # noqa: E402
from .mae import MaskedAutoencoder  # noqa: E402
from .masking import sample_noise  # noqa: E402


def predicted_pixels(model: MaskedAutoencoder, imgs: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Maps predictions back to (normalised-image) pixels per patch.

    norm_pixel predictions are de-normalised with each patch's own mean/std from the original
    image, and PCA coefficients are projected back with the fitted basis.
    """
    if model.target == "pca":
        return pred @ model.pca_components + model.pca_mean
    if model.target == "norm_pixel":
        patches = model.patchify(imgs)
        mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
        return pred * (var + 1.0e-6) ** 0.5 + mean
    return pred


@torch.no_grad()
def reconstruct(model: MaskedAutoencoder, imgs: torch.Tensor, mask_ratio: float = 0.75,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (masked, reconstruction with visible patches pasted, original), images in [0, 1]."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    grid = (imgs.shape[2] // model.patch_size, imgs.shape[3] // model.patch_size)
    noise = sample_noise(model.mask_sampling, grid, mask_ratio, batch=len(imgs), generator=generator)
    _, pred, mask = model(imgs, mask_ratio=mask_ratio, noise=noise.to(imgs.device))
    model.train(was_training)
    recon = model.unpatchify(predicted_pixels(model, imgs, pred.float()), grid)
    mask = model.unpatchify(mask[..., None].expand(-1, -1, model.patch_size**2 * model.in_chans), grid)
    mean = torch.tensor(IMAGENET_MEAN, device=imgs.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=imgs.device).view(1, 3, 1, 1)
    to_01 = lambda x: (x * std + mean).clamp(0, 1)  # noqa: E731
    return to_01(imgs * (1 - mask)), to_01(imgs * (1 - mask) + recon * mask), to_01(imgs)


def save_reconstruction_figure(model: MaskedAutoencoder, imgs: torch.Tensor, path: str, mask_ratio: float = 0.75,
                               seed: int = 0, title: str | None = None) -> str:
    masked, recon, original = (t.cpu() for t in reconstruct(model, imgs, mask_ratio, seed))
    n = len(imgs)
    fig, axes = plt.subplots(n, 3, figsize=(6, 2 * n + (0.4 if title else 0)), squeeze=False)
    for row in range(n):
        for col, (img, name) in enumerate(zip((masked, recon, original),
                                              (f"masked {mask_ratio:.0%}", "reconstruction", "original"))):
            ax = axes[row, col]
            ax.imshow(img[row].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
