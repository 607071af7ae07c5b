"""Figure-2-style reconstructions: masked input, reconstruction (visible patches pasted back), original.

A norm_pixel model predicts each masked patch normalised by its own mean and std, which it cannot
know: de-normalising with the original's statistics would paint every hidden patch's true colour
and contrast into the "reconstruction" (the paper's Figure 2 and the official demo use a pixel-target
model for that reason). Its figure shows the prediction as it is, at a fixed display scale, beside
its target in the same units.
"""
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

# per-patch normalised values are shown with this fixed mapping: -NORM_DISPLAY_STD std black, the
# patch mean mid-grey, +NORM_DISPLAY_STD std white (each channel)
NORM_DISPLAY_STD = 3.0


@torch.no_grad()
def reconstruct(model: MaskedAutoencoder, imgs: torch.Tensor, mask_ratio: float = 0.75,
                seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """-> the figure's columns as (label, images in [0, 1]): the masked input, the reconstruction (visible
    patches pasted), the original; for norm_pixel the prediction and its target per-patch normalised."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    grid = (imgs.shape[2] // model.patch_size, imgs.shape[3] // model.patch_size)
    noise = sample_noise(model.mask_sampling, grid, mask_ratio, batch=len(imgs), generator=generator)
    _, pred, mask = model(imgs, mask_ratio=mask_ratio, noise=noise.to(imgs.device))
    model.train(was_training)
    pred = pred.float()
    mask = model.unpatchify(mask[..., None].expand(-1, -1, model.patch_size**2 * model.in_chans), grid)
    mean = torch.tensor(IMAGENET_MEAN, device=imgs.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=imgs.device).view(1, 3, 1, 1)
    to_01 = lambda x: (x * std + mean).clamp(0, 1)  # noqa: E731
    masked, original = (f"masked {mask_ratio:.0%}", to_01(imgs * (1 - mask))), ("original", to_01(imgs))
    if model.target == "norm_pixel":
        shown = lambda x: (x / (2 * NORM_DISPLAY_STD) + 0.5).clamp(0, 1)  # noqa: E731
        target = model.unpatchify(model.targets(imgs), grid)
        scale = f"per-patch normalised\n(fixed scale ±{NORM_DISPLAY_STD:g} std)"
        return [masked, (f"prediction,\n{scale}", shown(target * (1 - mask) + model.unpatchify(pred, grid) * mask)),
                (f"target (original),\n{scale}", shown(target)), original]
    if model.target == "pca":  # coefficients back to pixels with the fitted basis
        pred = pred @ model.pca_components + model.pca_mean
    return [masked, ("reconstruction", to_01(imgs * (1 - mask) + model.unpatchify(pred, grid) * mask)), original]


def reconstruction_figure(model: MaskedAutoencoder, imgs: torch.Tensor, mask_ratio: float = 0.75, seed: int = 0,
                          title: str | None = None) -> plt.Figure:
    columns = [(name, img.cpu()) for name, img in reconstruct(model, imgs, mask_ratio, seed)]
    n = len(imgs)
    fig, axes = plt.subplots(n, len(columns), figsize=(2 * len(columns), 2 * n + 0.4 + (0.4 if title else 0)),
                             squeeze=False)
    for row in range(n):
        for ax, (name, img) in zip(axes[row], columns):
            ax.imshow(img[row].permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_reconstruction_figure(model: MaskedAutoencoder, imgs: torch.Tensor, path: str, mask_ratio: float = 0.75,
                               seed: int = 0, title: str | None = None) -> str:
    fig = reconstruction_figure(model, imgs, mask_ratio, seed, title)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
