"""Figure and table helpers shared by the notebooks, sized for the book's page.

The page: in Chromium at the browser check's window (1280 x 900), the book's text column, where
cell outputs go, is COLUMN_PX (688) px wide. The notebooks' inline figures are drawn at DPI (100)
dots per inch and saved cropped to what they draw plus 0.1 inch on each side, so a figure at
most COLUMN_IN (6.6) inches wide is shown at its natural size, and text of at least MIN_FONT_PT
points is at least 9.7 px high on the page (`figure_problems` checks both).
Results tables are `Table`s: text where printed, an HTML table that fits the column in a
notebook's output.
"""
from __future__ import annotations

import html
import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from .analysis import (CONVERGED_GAIN_DB, MIN_HALFWAY_LR, convergence_at, evaluated_sigmas,
                       input_psnr, matching_sigmas, psnr)
from .models import build_model, count_parameters, receptive_field

DPI = 100  # matplotlib's inline backend draws the notebooks' figures at this resolution
COLUMN_PX = 688  # the text column at the browser check's window width
COLUMN_IN = 6.6  # the widest figure (inches) that the column shows unscaled at DPI
MIN_FONT_PT = 7.0  # the smallest text in a figure: 9.7 px on the page at DPI
ROW_IN = 2.6  # the default height of one row of plots


def subplots(nrows: int = 1, ncols: int = 1, *, height: float | None = None,
             width: float = COLUMN_IN, **kwargs):
    """`plt.subplots` for the page: `width` inches (default the column's), `height` inches
    (default ROW_IN per row), at DPI, with constrained layout (no tight_layout needed)."""
    height = ROW_IN * nrows if height is None else height
    return plt.subplots(nrows, ncols, figsize=(width, height), dpi=DPI, layout="constrained",
                        **kwargs)


def figure_problems(fig, max_width_px: float = COLUMN_PX,
                    min_font_pt: float = MIN_FONT_PT) -> list[str]:
    """Why `fig` would not fit the page: wider than the column once saved as the notebook saves
    it (tight bounding box), or visible text smaller than `min_font_pt`. Empty when it fits."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    width = int.from_bytes(buf.getvalue()[16:20], "big")  # the PNG header's width
    problems = [f"{width} px wide, more than {max_width_px:.0f}"] if width > max_width_px else []
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < min_font_pt:
            problems.append(f"text {text.get_text()[:30]!r} at {text.get_fontsize():g} pt")
    return problems


def dataset_name(pool) -> str:
    """What a page says about where its images came from: the data set's name (a face pool's or
    synthetic pool's `name`), never the folder it was read from."""
    return DATASET_NAMES.get(pool.name, pool.name)


DATASET_NAMES = {
    "celeba": "CelebA", "celeba_shuffled": "CelebA, pixels shuffled", "celeba_ids":
    "CelebA, split by identity", "fer2013": "FER2013", "substitute":
    "synthetic ellipses (a stand-in: no face data found)"
}


def image_grid(images, titles=None, ncols: int | None = None, scale: float | None = None,
               suptitle: str | None = None, vmin=0.0, vmax=1.0, row_labels=None,
               wrap: int | None = None, width: float = COLUMN_IN):
    """Gray images (N, 1, H, W) or a list of (1, H, W) in a grid, row by row; returns the figure.

    Each image is `scale` inches wide (default 1.4), less where `ncols` of them would not fit
    in `width` inches (the column). `wrap` cuts a grid of more than `wrap` columns into blocks of
    `wrap` columns stacked one under the other, each block with the row labels again: a wide
    grid becomes a taller one that fits the column.
    """
    images = [torch.as_tensor(im).detach().cpu().reshape(im.shape[-2:]) for im in images]
    titles = list(titles) if titles is not None else None
    ncols = ncols or len(images)
    if wrap and ncols > wrap:
        images, titles, row_labels, ncols = wrap_columns(images, titles, row_labels, ncols, wrap)
    nrows = -(-len(images) // ncols)
    label_in = 0.22 * max((str(r).count("\n") + 1 for r in row_labels), default=0) \
        if row_labels is not None else 0.0
    gap, margin = 0.06, 0.04  # inches between images, around the grid
    scale = min(scale or 1.4, (width - label_in - 2 * margin - (ncols - 1) * gap) / ncols)
    font = 8 if scale >= 0.95 else MIN_FONT_PT
    lines = max((str(t).count("\n") + 1 for t in titles or [] if t), default=0)
    title_in = lines * font / 72 * 1.25 + (0.06 if lines else gap)
    suptitle_in = 0.3 if suptitle else 0.0
    fig_w = label_in + ncols * scale + (ncols - 1) * gap + 2 * margin
    fig_h = suptitle_in + nrows * (title_in + scale) + margin
    fig, axes = plt.subplots(nrows, ncols, figsize=(fig_w, fig_h), squeeze=False, dpi=DPI)
    fig.subplots_adjust(left=(label_in + margin) / fig_w, right=1 - margin / fig_w,
                        top=1 - (suptitle_in + title_in) / fig_h, bottom=margin / fig_h,
                        wspace=gap / scale, hspace=title_in / scale)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if k >= len(images) or images[k] is None:
            ax.axis("off")
            continue
        ax.imshow(images[k], cmap="gray", vmin=vmin, vmax=vmax)
        if titles is not None and titles[k]:
            ax.set_title(titles[k], fontsize=font, pad=3)
    if row_labels is not None:
        for r, label in enumerate(row_labels):
            axes[r, 0].set_ylabel(label, fontsize=8, labelpad=3)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10, y=1 - 0.06 / fig_h, va="top")
    return fig


def wrap_columns(images: list, titles, row_labels, ncols: int, wrap: int):
    """A grid of `ncols` columns (row by row) as blocks of `wrap` columns, stacked: returns
    (images, titles, row_labels, wrap), None marking an empty place."""
    nrows = -(-len(images) // ncols)
    cell = lambda items, r, c: items[r * ncols + c] \
        if c < ncols and r * ncols + c < len(items) else None  # noqa: E731
    starts = range(0, ncols, wrap)
    places = [(r, c) for b in starts for r in range(nrows) for c in range(b, b + wrap)]
    new_images = [cell(images, r, c) for r, c in places]
    new_titles = None if titles is None else [cell(titles, r, c) or "" for r, c in places]
    labels = None if row_labels is None else list(row_labels) * len(starts)
    return new_images, new_titles, labels, wrap


def denoised_grid(a, suptitle: str):
    """The clean, noisy and denoised image of an analysis (`jacobian.analyze`), with PSNRs."""
    titles = [
        "clean", f"noisy, {psnr(a.x[None], a.y[None]).item():.1f} dB",
        f"denoised, {psnr(a.x[None], a.fy[None]).item():.1f} dB"
    ]
    return image_grid([a.x, a.y.clamp(0, 1), a.fy.clamp(0, 1)], titles=titles, scale=1.6,
                      suptitle=suptitle)


def psnr_axes(ax=None, sigmas=None, title: str | None = None):
    """Axes for output PSNR against input PSNR, with the identity line."""
    if ax is None:
        _, ax = subplots(width=4.4, height=3.4)
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
                    split: str = "test", title: str | None = None, legend: bool = True) -> None:
    """A run's PSNR at each of `sigmas` against training images seen. Left: the PSNR, with the
    optimum's (dotted, same colour) where `optimum` (one value or None per sigma) has one; right: the PSNR minus
    its final value, with half-way marked and the convergence limit shaded."""
    left, right = axes
    images = np.array([e["step"] for e in history]) * batch
    psnr = np.array([e[f"{split}_psnr"]
                     for e in history])[:, matching_sigmas(history[-1]["sigmas"], sigmas)]
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
    if legend:  # one legend, for both panels (`training_figure` makes one for all rows)
        handles, labels = left.get_legend_handles_labels()
        band, band_label = right.get_legend_handles_labels()
        right.legend(handles + band, labels + band_label, fontsize=MIN_FONT_PT, ncol=2,
                     loc="lower right", handlelength=1.2, columnspacing=0.8)
    if title:
        left.set_title(title, fontsize=9)
    right.set_title("second half shaded", fontsize=9)


def split_of(split, net) -> str:
    """"train" or "test": `split` itself, or split(net) when it is a function of the model."""
    return split(net) if callable(split) else split


def notice(text: str):
    """A one-line figure that says why a figure is not there (a model the profile lacks)."""
    fig, ax = subplots(width=4.8, height=0.9)
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8)
    return fig


def training_figure(nets: dict, sigma_range, optimum=None, row_height: float = 2.3, split="test"):
    """One row of `training_curves` per trained model (`nets`: {key: a zoo model, with .name,
    .history and .config}), at every noise level in `sigma_range` (lo, hi) it was evaluated at;
    `optimum(key, sigmas)`, if given, returns that row's optimum per sigma; `split` ("test",
    "train" or a function of the model) which PSNR each row shows. As wide as the column;
    returns the figure; without models, a panel that says so."""
    if not nets:
        return notice("no such model at this profile")
    fig, axes = subplots(len(nets), 2, height=row_height * len(nets) + 0.5, squeeze=False)
    for row, (key, net) in zip(axes, nets.items()):
        sigmas = evaluated_sigmas(net.history, *sigma_range)
        training_curves(row, net.history, net.config.batch, sigmas, title=net.name,
                        optimum=None if optimum is None else optimum(key, sigmas), legend=False,
                        split=split_of(split, net))
    legend = {}  # one legend above the rows: every sigma of any row, the band, the optimum
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if optimum is not None:
        legend["optimum (dotted)"] = plt.Line2D([], [], color="k", ls=":", lw=1)
    fig.legend(legend.values(), legend.keys(), loc="outside upper center",
               ncol=min(4, len(legend)), fontsize=8, handlelength=1.5, columnspacing=1.0)
    return fig


def convergence_table(nets, sigma_range, split="test") -> Table:
    """Whether each trained model (zoo models, with .name, .history and .config) converged at
    the noise levels of `sigma_range` (`analysis.convergence`): the largest PSNR gain over the
    second half of its training, where, and the learning rate at half-way. `split`: "test",
    "train" (a model meant to memorize) or a function of the model giving one of them."""
    rows = []
    for net in nets:
        c = convergence_at(net, sigma_range, split_of(split, net))
        worst = int(np.argmax(c.gain))
        rows.append([
            net.name,
            split_of(split, net), "yes" if c.converged else "no", c.gain[worst], c.sigmas[worst],
            f"{c.halfway_step:,}-{c.steps:,}", c.halfway_lr_ratio
        ])
    return table([
        "model", "PSNR on", "converged", "largest gain (dB)", "at sigma", "over steps",
        "lr at half-way / peak"
    ], rows, ["<", "<", "<", "+.2f", ".3g", ">", ".2f"],
                 caption=f"converged: every gain below {CONVERGED_GAIN_DB} dB over the second "
                 f"half of training, with a learning rate at half-way of at least "
                 f"{MIN_HALFWAY_LR} of its peak")


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
    cells = _cells(rows, formats)
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    left = [f.startswith("<") for f in formats]
    return "\n".join("  ".join(
        c.ljust(w) if lj else c.rjust(w) for c, w, lj in zip(line, widths, left)).rstrip()
                     for line in [header] + cells)


def _cells(rows: list[list], formats: list[str]) -> list[list[str]]:
    return [[format(v, f) if v is not None else "-" for v, f in zip(row, formats)] for row in rows]


WRAP_CHARS = 16  # a table column with a longer cell may wrap on the page


class Table(str):
    """A results table. As a string it is `format_table`'s text (so it prints, splits and
    compares as that text); in a notebook it shows as an HTML table that fits the page's column
    (`_repr_html_`: numeric columns right-aligned, headers and long text wrapped; the book's
    CSS, book/_static/diffgen.css, styles the class `diffgen-table`). Make one with `table`."""

    header: list[str]
    cells: list[list[str]]
    left: list[bool]
    caption: str | None

    def __new__(cls, header: list[str], rows: list[list], formats: list[str],
                caption: str | None = None, empty: str = "(nothing to show yet)"):
        if len(header) != len(formats) or any(len(r) != len(header) for r in rows):
            raise ValueError(f"a table of {len(header)} columns needs as many formats and "
                             f"cells per row")
        self = super().__new__(cls, format_table(header, rows, formats, empty))
        self.header, self.cells = [str(h) for h in header], _cells(rows, formats)
        self.left, self.caption = [f.startswith("<") for f in formats], caption
        return self

    def _repr_html_(self) -> str:
        if not self.cells:
            return f"<p>{html.escape(str(self))}</p>"
        align = ["left" if lj else "right" for lj in self.left]
        # a column of long text may wrap; numbers and short labels stay on one line
        wrap = [max(len(r[i]) for r in self.cells) > WRAP_CHARS for i in range(len(align))]
        classes = [f"{a} wrap" if w else a for a, w in zip(align, wrap)]

        def row(tag, cells):
            return "<tr>" + "".join(
                f'<{tag} class="{c}" style="text-align:{a}">{html.escape(v)}</{tag}>'
                for v, c, a in zip(cells, classes, align)) + "</tr>"

        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return ('<div class="diffgen-table-wrap"><table class="diffgen-table">' + caption +
                "<thead>" + row("th", self.header) + "</thead><tbody>" +
                "".join(row("td", r) for r in self.cells) + "</tbody></table></div>")

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's text/plain: the text, unquoted
        p.text(str(self))


def table(header: list[str], rows: list[list], formats: list[str], caption: str | None = None,
          empty: str = "(nothing to show yet)") -> Table:
    """A `Table` of `rows` under `header`, each column formatted by its spec in `formats` (as
    `format_table`); `caption` is shown above it. Display it (the last expression of a cell,
    or `display(...)`) to get the HTML table, print it to get text."""
    return Table(header, rows, formats, caption, empty)


def network_table(configs: dict) -> Table:
    """Table 1 for a chapter's networks ({model name: TrainConfig}): architecture, depth, width,
    parameters, receptive field and image size, and the training images each one saw."""
    rows = []
    for name, c in configs.items():
        depth = f"{c.blocks} block{'s' if c.blocks > 1 else ''}" if c.arch == "unet" \
            else "21 layers"
        rf = receptive_field(c)
        rows.append([
            name, c.arch, depth, c.width,
            count_parameters(build_model(c)), f"{rf}x{rf}", f"{c.size}x{c.size}",
            "yes" if rf >= c.size else "no", c.steps * c.batch
        ])
    return table([
        "model", "network", "depth", "width", "parameters", "receptive field", "image", "covers",
        "images seen"
    ], rows, ["<", "<", "<", "d", ",d", ">", ">", ">", ",d"])
