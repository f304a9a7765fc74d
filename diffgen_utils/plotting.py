"""Figure helpers shared by the notebooks."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from .analysis import input_psnr


def image_grid(images, titles=None, ncols: int | None = None, scale: float = 1.4,
               suptitle: str | None = None, vmin=0.0, vmax=1.0, row_labels=None):
    """Gray images (N, 1, H, W) or a list of (1, H, W) in a grid; returns the figure."""
    images = [torch.as_tensor(im).detach().cpu().reshape(im.shape[-2:]) for im in images]
    ncols = ncols or len(images)
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows + 0.3),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if k >= len(images):
            ax.axis("off")
            continue
        ax.imshow(images[k], cmap="gray", vmin=vmin, vmax=vmax)
        if titles is not None:
            ax.set_title(titles[k], fontsize=8)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(label, fontsize=8)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def psnr_axes(ax=None, sigmas=None, title: str | None = None):
    """Axes for output PSNR against input PSNR, with the identity line."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    if sigmas is not None:
        x = input_psnr(np.asarray(sigmas))
        ax.plot(x, x, "k--", lw=0.8, label="identity (no denoising)")
    ax.set_xlabel("input PSNR (dB)")
    ax.set_ylabel("output PSNR (dB)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return ax


def note(text: str) -> None:
    """A visible note on the page (used for substitutes and profile caveats)."""
    display(Markdown(f"> **Note.** {text}"))
