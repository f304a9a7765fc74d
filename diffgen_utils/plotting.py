"""Figure helpers shared by the notebooks."""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display
from matplotlib.figure import Figure

from .analysis import CONVERGED_GAIN_DB, input_psnr, matching_sigmas, psnr
from .models import build_model, count_parameters, receptive_field


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


def denoised_grid(a, suptitle: str):
    """The clean, noisy and denoised image of an analysis (`jacobian.analyze`), with PSNRs."""
    titles = ["clean", f"noisy, {psnr(a.x[None], a.y[None]).item():.1f} dB",
              f"denoised, {psnr(a.x[None], a.fy[None]).item():.1f} dB"]
    return image_grid([a.x, a.y.clamp(0, 1), a.fy.clamp(0, 1)], titles=titles, scale=1.8,
                      suptitle=suptitle)


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


def training_curves(axes, history: list[dict], batch: int, sigmas, optimum=None,
                    split: str = "test", title: str | None = None) -> None:
    """A run's PSNR at each of `sigmas` against training images seen. Left: the PSNR, with the
    optimum's (dotted, same colour) where `optimum` (one value or None per sigma) has one; right: the PSNR minus
    its final value, with half-way marked and the convergence limit shaded."""
    left, right = axes
    images = np.array([e["step"] for e in history]) * batch
    psnr = np.array([e[f"{split}_psnr"] for e in history])[:, matching_sigmas(
        history[-1]["sigmas"], sigmas)]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(sigmas)))
    for j, sigma in enumerate(sigmas):
        color = colors[j]
        left.plot(images, psnr[:, j], "o-", ms=2.5, color=color, label=f"σ = {sigma:.3g}")
        right.plot(images, psnr[:, j] - psnr[-1, j], "o-", ms=2.5, color=color)
        if optimum is not None and optimum[j] is not None:
            left.axhline(optimum[j], color=color, ls=":", lw=1)
    half = images[-1] / 2
    right.axvspan(half, images[-1], ymin=0, ymax=1, color="0.93")
    right.axhspan(-CONVERGED_GAIN_DB, 0, color="C2", alpha=0.15,
                  label=f"within {CONVERGED_GAIN_DB} dB of final")
    right.set_ylim(max(-3.0, float(np.min(psnr - psnr[-1])) - 0.2), 0.5)
    left.set_ylabel(f"{split} PSNR (dB)"), right.set_ylabel("PSNR − final (dB)")
    for ax in axes:
        ax.set_xlabel("training images seen"), ax.grid(alpha=0.3)
    left.legend(fontsize=6, ncol=3)
    right.legend(fontsize=7, loc="lower right")
    if title:
        left.set_title(title, fontsize=10)
    right.set_title("second half shaded", fontsize=9)


def unit_range(images: torch.Tensor) -> torch.Tensor:
    """Each image divided by its largest |value| (for display with vmin=-1, vmax=1)."""
    images = torch.as_tensor(images).double()
    peak = images.flatten(1).abs().amax(dim=1).clamp_min(1e-12)
    return images / peak[:, None, None]


def running_mean(values: np.ndarray, window: int | None = None) -> np.ndarray:
    """Mean over a centred window (default d/20, at least 3) to show a trend; near the ends the
    window holds only the values that exist, so one end value does not count several times."""
    values = np.asarray(values, float)
    kernel = np.ones(window or max(3, len(values) // 20))
    sums = np.convolve(values, kernel, mode="same")
    return sums / np.convolve(np.ones_like(values), kernel, mode="same")


def running_geomean(values: np.ndarray, window: int | None = None) -> np.ndarray:
    """Geometric mean over a centred window (as `running_mean`) to show a trend."""
    return np.exp(running_mean(np.log(np.maximum(np.asarray(values, float), 1e-12)), window))


def plot_decay(analyses: dict, axes, sigma: float | None = None) -> None:
    """Left: eigenvalues lambda_k; right: |<x, e_k>| (log scale; dots, and their running
    geometric mean as a line) for each labelled analysis (`jacobian.analyze`)."""
    ax0, ax1 = axes
    for label, a in analyses.items():
        k = np.arange(len(a.eigvals))
        ax0.plot(k, a.eigvals.numpy(), lw=1.2, label=label)
        c = a.coeffs.abs().numpy()
        line = ax1.semilogy(k, c, ".", ms=2.5, alpha=0.45)[0]
        ax1.semilogy(k, running_geomean(c), color=line.get_color(), lw=1.2, label=label)
    ax0.axhline(0, color="k", lw=0.6)
    ax0.set_xlabel("k"), ax0.set_ylabel(r"$\lambda_k$")
    ax1.set_xlabel("k"), ax1.set_ylabel(r"$|\langle x, e_k\rangle|$")
    if sigma is not None:
        ax1.axhline(sigma, color="k", ls="--", lw=0.8, label=rf"$\sigma$ = {sigma:g}")
    top = max(a.coeffs.abs().max().item() for a in analyses.values())
    ax1.set_ylim(bottom=max(ax1.get_ylim()[0], 1e-4 * top))  # a rare tiny coefficient
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


def image_png(image, title: str | None = None, vmin=0.0, vmax=1.0, cmap: str = "gray",
              size_in: float = 2.2, dpi: int = 80) -> bytes:
    """PNG bytes of one gray image (H, W) (or (1, H, W)) with an optional title.

    Drawn on a bare matplotlib Figure (not pyplot), so nothing is displayed in the notebook.
    """
    image = torch.as_tensor(image).detach().cpu().reshape(torch.as_tensor(image).shape[-2:])
    fig = Figure(figsize=(size_in, size_in * (1.15 if title else 1.0)), dpi=dpi)
    ax = fig.add_axes([0.02, 0.02, 0.96, 0.96 / (1.15 if title else 1.0)])
    ax.imshow(image.numpy(), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def image_slider(images_png: list[bytes], labels=None, description: str = "index"):
    """A slider that flips through pre-rendered PNG images; works in the static book.

    Every image is stored in the notebook's widget state, and the slider drives a
    `widgets.Stack` through `widgets.jslink`, i.e. in the browser: no kernel is needed once the
    page is rendered. `labels` (one per image, default 0, 1, ...) are the slider's readout.
    Returns the widget (display it, or make it a cell's last expression).
    """
    import ipywidgets as widgets

    images_png = list(images_png)
    if not images_png:
        raise ValueError("image_slider needs at least one image")
    labels = [str(v) for v in (range(len(images_png)) if labels is None else labels)]
    if len(labels) != len(images_png):
        raise ValueError(f"{len(labels)} labels for {len(images_png)} images")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct (they are the slider's options)")
    stack = widgets.Stack([widgets.Image(value=png, format="png") for png in images_png],
                          selected_index=0)
    slider = widgets.SelectionSlider(options=labels, index=0, description=description,
                                     continuous_update=True,
                                     layout=widgets.Layout(width="min(100%, 420px)"))
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    return widgets.VBox([slider, stack])


def format_table(header: list[str], rows: list[list], formats: list[str],
                 empty: str = "(nothing to show yet)") -> str:
    """A plain text table, right-aligned; `formats` are format specs per column ("<" left-aligns
    a column, e.g. "<" or "<.2f"); None prints as "-"."""
    if not rows:
        return empty
    cells = [[format(v, f) if v is not None else "-" for v, f in zip(row, formats)]
             for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    left = [f.startswith("<") for f in formats]
    return "\n".join("  ".join(c.ljust(w) if lj else c.rjust(w)
                               for c, w, lj in zip(line, widths, left)).rstrip()
                     for line in [header] + cells)



def network_table(configs: dict) -> str:
    """Table 1 for a chapter's networks ({model name: TrainConfig}): architecture, depth, width,
    parameters, receptive field and image size, and the training images each one saw."""
    rows = []
    for name, c in configs.items():
        depth = f"{c.blocks} block{'s' if c.blocks > 1 else ''}" if c.arch == "unet" else "21 layers"
        rf = receptive_field(c)
        rows.append([name, c.arch, depth, c.width, count_parameters(build_model(c)),
                     f"{rf}x{rf}", f"{c.size}x{c.size}", "yes" if rf >= c.size else "no",
                     c.steps * c.batch])
    return format_table(["model", "network", "depth", "width", "parameters", "receptive field",
                         "image", "covers", "images seen"], rows,
                        ["<", "<", "<", "d", ",d", ">", ">", ">", ",d"])
