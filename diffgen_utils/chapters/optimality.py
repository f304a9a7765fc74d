"""Chapter 4: C^alpha images, where the denoiser's rate can be compared with the optimum
(paper Figs 4 and 16-18).

A C^alpha image is two regular backgrounds separated by a C^alpha contour (`synthetic.calpha`).
The best achievable denoising error of such images falls as sigma^(2 alpha / (alpha + 1)), so
output PSNR grows with input PSNR at the slope alpha / (alpha + 1) (`synthetic.optimal_slope`).
This module fits that slope on a trained model's PSNR curve and measures how local the
Jacobian's eigenvectors are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import analysis, synthetic
from ..config import Profile
from ..plotting import MIN_FONT_PT, subplots

# Fig 4 of the paper (80x80 UNets, 10^5 images per alpha); the paper gives no slope for alpha = 4.
PAPER_SLOPES = {1.0: 0.46, 2.0: 0.61, 3.0: 0.75, 5.0: 0.83}
PAPER_FIG4_LAMBDA_ENDS = (1.147, 0.65)  # lambda_0 and lambda_19 of the alpha = 4 example
SLOPE_TOLERANCE = 0.07  # scorecard: |measured - alpha/(alpha+1)| <= this (set before training)
BELOW_LINEAR_TARGET = "<= 0.5"  # scorecard: dB the network may fall below the best linear one
FIG17_SIGMA = 0.2  # Figs 16-18: contour regularity with background regularity 8
FIG4_SIGMA = 0.1  # the alpha = 4 eigenvectors (the paper does not state its sigma)

# The slope is fitted over this input-PSNR range (dB), fixed before any model was trained:
# sigma from 0.32 down to 0.01. Above it the noise hides all but the coarsest structure; below
# it a 32x32 image has run out of finer detail and every good denoiser tends to the identity
# (slope 1). The local slopes over the whole curve are shown beside the fit.
FIT_RANGE_DB = (10.0, 40.0)
# Input PSNR of the evaluated noise levels: 0 to 45 dB in steps of 2.5 dB.
RATE_INPUT_PSNR = np.arange(0.0, 45.01, 2.5)


def rate_sigmas() -> np.ndarray:
    """The noise levels of the PSNR curves (input PSNR = RATE_INPUT_PSNR)."""
    return 10**(-RATE_INPUT_PSNR / 20)


def held_out(alpha: float, profile: Profile, n: int,
             background_alpha: float | None = None) -> synthetic.CAlphaParts:
    """n images of the training distribution drawn from the test seed (never trained on), with
    their contours."""
    return synthetic.calpha_parts(n, profile.synthetic_size, alpha, synthetic.TEST_SEED,
                                  background_alpha=background_alpha)


@dataclass
class RateCurve:
    """Output PSNR against input PSNR of one model, and the slope fitted on it."""

    alpha: float
    input_psnr: np.ndarray
    output_psnr: np.ndarray
    fit_range: tuple[float, float]
    slope: float
    intercept: float
    per_image: np.ndarray | None = None  # (sigmas, images) PSNR of each image, where measured

    @property
    def optimal(self) -> float:
        return synthetic.optimal_slope(self.alpha)

    @property
    def error(self) -> float:
        """Measured minus optimal slope."""
        return self.slope - self.optimal

    def slope_of(self, per_image: np.ndarray) -> float:
        """The slope fitted as `slope` is, on the mean curve of (a resample of) `per_image`."""
        return analysis.fit_slope(self.input_psnr, per_image.mean(-1), self.fit_range)[0]

    def slope_interval(self) -> tuple[float, float] | None:
        """Bootstrap interval of the slope over the images (None without per-image values)."""
        if self.per_image is None:
            return None
        return analysis.bootstrap_interval(self.slope_of, self.per_image)

    def local_slopes(self) -> tuple[np.ndarray, np.ndarray]:
        """Slope between neighbouring points, at their mid input PSNR."""
        x, y = self.input_psnr, self.output_psnr
        return (x[1:] + x[:-1]) / 2, np.diff(y) / np.diff(x)


def rate_curve(model: torch.nn.Module, images: torch.Tensor, alpha: float,
               fit_range: tuple[float, float] = FIT_RANGE_DB, seed: int = 0) -> RateCurve:
    """Mean output PSNR over `images` at every noise level of `rate_sigmas()`, and the
    least-squares slope over input PSNR in `fit_range`."""
    sigmas = rate_sigmas()
    return curve_of(alpha, sigmas,
                    analysis.evaluate_psnr_per_image(model, images, sigmas, seed=seed), fit_range)


def curve_of(alpha: float, sigmas, per_image: torch.Tensor, fit_range) -> RateCurve:
    """The RateCurve of each image's PSNR at each sigma (`analysis.psnr_per_image`)."""
    out = analysis.image_means(per_image)
    x = analysis.input_psnr(sigmas)
    slope, intercept = analysis.fit_slope(x, out, fit_range)
    return RateCurve(float(alpha), x, out, tuple(fit_range), float(slope), float(intercept),
                     per_image.double().numpy())


class LinearDenoiser:
    """The best linear (affine) denoiser of a distribution, from its mean and covariance:
    f(y) = mu + C (C + sigma^2 I)^-1 (y - mu) (the Wiener filter). Its error is the least any
    linear filter can reach; a nonlinear denoiser that adapts its basis to each image can do
    better, and the optimal denoiser does at least as well."""

    def __init__(self, images: torch.Tensor):
        x = images.reshape(len(images), -1).double()
        self.shape = tuple(images.shape[1:])
        self.mean = x.mean(0)
        centred = x - self.mean
        cov = centred.T @ centred / (len(x) - 1)
        self.eigvals, self.eigvecs = torch.linalg.eigh(cov)
        self.eigvals = self.eigvals.clamp_min(0)

    def __call__(self, y: torch.Tensor, sigma: float) -> torch.Tensor:
        v, lam = self.eigvecs, self.eigvals
        c = (y.reshape(len(y), -1).double() - self.mean) @ v
        out = self.mean + (c * (lam / (lam + sigma**2))) @ v.T
        return out.reshape(len(y), *self.shape).to(y.dtype)


def linear_curve(train: torch.Tensor, test: torch.Tensor, alpha: float,
                 fit_range: tuple[float, float] = FIT_RANGE_DB, seed: int = 0) -> RateCurve:
    """`rate_curve` of the best linear denoiser of `train`'s distribution, on `test` (the same
    noise as `rate_curve` with the same seed)."""
    sigmas = rate_sigmas()
    return curve_of(alpha, sigmas,
                    analysis.psnr_per_image(LinearDenoiser(train), test, sigmas, seed=seed),
                    fit_range)


COV_IMAGES = 8192  # training images from which the best linear denoiser's covariance is estimated


def linear_reference(alpha: float, profile: Profile, test: torch.Tensor,
                     seed: int = 0) -> RateCurve:
    """`linear_curve` of C^alpha images: covariance from the first COV_IMAGES training images
    (fewer when the profile trains on fewer), evaluated on `test`."""
    train = synthetic.calpha(min(COV_IMAGES, profile.synthetic_n), profile.synthetic_size, alpha,
                             synthetic.TRAIN_SEEDS["S1"])
    return linear_curve(train, test, alpha, seed=seed)


def slope_rows(curves: dict, linear: dict | None = None) -> list[list]:
    """Table rows [alpha, optimal, measured, measured - optimal, paper (or None)], and with
    `linear` the best linear denoiser's slope and the input PSNRs (lowest, highest) at which
    the network beats it (None when it never does)."""
    rows = []
    for key, c in curves.items():
        row = [c.alpha, c.optimal, c.slope, c.error, PAPER_SLOPES.get(c.alpha)]
        if linear is not None:
            wins = beats_linear(c, linear[key])
            row += [
                linear[key].slope, f"{wins.min():g}-{wins.max():g} dB" if len(wins) else "never"
            ]
        rows.append(row)
    return rows


def plot_rate_curves(curves: dict, axes, linear: dict | None = None) -> None:
    """Fig 4's PSNR curves as small multiples, one panel per curve (`axes`, one per curve, in
    order; a further axes, if any, holds the legend): the measured points, the line fitted over
    the fit range (solid), a line of the optimal slope through the middle of the fit (dotted),
    the best linear denoiser's curve (`linear`, dashed), the identity (thin) and the fit range's
    edges. The title gives the fitted and the optimal slope."""
    axes = list(axes)
    for i, ((key, c), ax) in enumerate(zip(curves.items(), axes)):
        color = f"C{i}"
        ax.plot(c.input_psnr, c.output_psnr, "o", ms=3, color=color, label="network")
        lo, hi = c.fit_range
        xs = np.array([lo, hi])
        ax.plot(xs, c.slope * xs + c.intercept, "-", color=color, label="fitted line")
        mid = (lo + hi) / 2
        ax.plot(xs, c.slope * mid + c.intercept + c.optimal * (xs - mid), ":", color="k", lw=1.4,
                label="optimal slope")
        if linear and key in linear:
            ax.plot(linear[key].input_psnr, linear[key].output_psnr, "--", color="0.45", lw=1,
                    label="best linear denoiser")
        top = float(c.input_psnr.max())
        ax.plot([0, top], [0, top], color="0.6", lw=0.6, label="identity")
        for edge in c.fit_range:
            ax.axvline(edge, color="0.75", lw=0.6, ls="--")
        ax.set_title(rf"$\alpha$ = {c.alpha:g}: slope {c.slope:.2f} (optimal {c.optimal:.2f})",
                     fontsize=8)
        ax.grid(alpha=0.3)
    used = axes[:len(curves)]
    for ax in used:
        if ax.get_subplotspec() is None or ax.get_subplotspec().is_last_row():
            ax.set_xlabel("input PSNR (dB)")
        if ax.get_subplotspec() is None or ax.get_subplotspec().is_first_col():
            ax.set_ylabel("output PSNR (dB)")
    if len(axes) > len(curves):
        legend_ax = axes[len(curves)]
        legend_ax.axis("off")
        handles, labels = used[0].get_legend_handles_labels()
        legend_ax.legend(handles, labels, loc="center", fontsize=8,
                         title="vertical lines: fit range", title_fontsize=8)
    for ax in axes[len(curves) + 1:]:
        ax.axis("off")


def rate_figure(curves: dict, linear: dict | None = None, ncols: int = 3):
    """`plot_rate_curves` as a figure as wide as the book's column: one panel per curve, in
    rows of `ncols`, and a last panel for the legend."""
    nrows = -(-(len(curves) + 1) // ncols)
    fig, axes = subplots(nrows, ncols, height=2.3 * nrows, sharex=True, sharey=True)
    plot_rate_curves(curves, axes.flat, linear)
    return fig


def beats_linear(curve: RateCurve, linear: RateCurve) -> np.ndarray:
    """Input PSNRs at which the network's output PSNR exceeds the best linear denoiser's."""
    return curve.input_psnr[curve.output_psnr > linear.output_psnr]


def below_linear(curve: RateCurve, linear: RateCurve) -> float:
    """The most dB by which the network falls below the best linear denoiser over the fit range
    (0 when it is never below): the optimal denoiser is never below it."""
    return most_below(curve.input_psnr, curve.output_psnr, linear.output_psnr, curve.fit_range)


def most_below(input_psnr, network, linear, fit_range) -> float:
    """`below_linear` of two PSNR curves over the same input PSNRs."""
    lo, hi = fit_range
    inside = (input_psnr >= lo) & (input_psnr <= hi)
    return float(max(0.0, np.max(linear[inside] - network[inside])))


def below_linear_interval(curve: RateCurve, linear: RateCurve) -> tuple[float, float] | None:
    """Bootstrap interval of `below_linear` over the test images, drawn in pairs (the network
    and the linear denoiser saw the same images and noise); None without per-image values."""
    if curve.per_image is None or linear.per_image is None:
        return None
    return analysis.bootstrap_interval(
        lambda both: most_below(curve.input_psnr, both[0].mean(-1), both[1].mean(-1), curve.
                                fit_range), np.stack([curve.per_image, linear.per_image]))


def plot_local_slopes(curves: dict, ax) -> None:
    """The local slope of every curve against input PSNR, with each optimum dotted."""
    for i, c in enumerate(curves.values()):
        mids, slopes = c.local_slopes()
        ax.plot(mids, slopes, "o-", ms=3, lw=1, color=f"C{i}", label=rf"$\alpha$={c.alpha:g}")
        ax.axhline(c.optimal, color=f"C{i}", ls=":", lw=1.2)
    for edge in next(iter(curves.values())).fit_range:
        ax.axvline(edge, color="0.6", lw=0.6, ls="--")
    ax.set_xlabel("input PSNR (dB)"), ax.set_ylabel("local slope")
    ax.set_ylim(-0.1, 1.3), ax.grid(alpha=0.3)
    ax.legend(fontsize=MIN_FONT_PT, ncol=len(curves), loc="lower center", columnspacing=1.0)


# ------------------------------------------------------------------ eigenvectors


def participation(vectors: torch.Tensor) -> np.ndarray:
    """Participation ratio (sum v^2)^2 / sum v^4 of each vector (rows, any trailing shape):
    the number of pixels a vector effectively occupies (d for a flat vector, 1 for a spike)."""
    v2 = torch.as_tensor(vectors).reshape(len(vectors), -1).double()**2
    return (v2.sum(1)**2 / (v2**2).sum(1).clamp_min(1e-300)).numpy()


def near_contour_share(vectors: torch.Tensor, contour: torch.Tensor,
                       width: float = 2.0) -> np.ndarray:
    """Share of each vector's energy |v|^2 on pixels within `width` rows of the contour
    (contour: (W,) row of the contour in each column; vectors (k, H, W))."""
    v2 = torch.as_tensor(vectors).double()**2
    rows = torch.arange(v2.shape[-2], dtype=torch.float64).view(-1, 1)
    band = ((rows - torch.as_tensor(contour, dtype=torch.float64).view(1, -1)).abs() <= width)
    return ((v2 * band).sum((-2, -1)) / v2.sum((-2, -1)).clamp_min(1e-300)).numpy()


def decay_exponent(coeffs: torch.Tensor, k_range: tuple[int, int]) -> float:
    """Slope p of log |c|_(k) against log k for the sorted coefficients, k in k_range: the
    coefficients decay like k^p (p = -(alpha + 1)/2 for an ideal basis of C^alpha images)."""
    c = np.sort(np.abs(np.asarray(coeffs, float)))[::-1]
    k = np.arange(1, len(c) + 1)
    lo, hi = k_range
    keep = (k >= lo) & (k <= hi) & (c > 0)
    return float(np.polyfit(np.log(k[keep]), np.log(c[keep]), 1)[0])


def scorecard_measurements(curves: dict, linear: dict, names: dict) -> list[dict]:
    """The chapter's rows, per alpha: the fitted slope against alpha/(alpha+1) (Fig 4) and how
    far the network falls below the best linear denoiser. names[alpha]: the model's name.
    Both targets were set before the models were trained (figures.SET_IN_ADVANCE). Each row
    has its bootstrap interval over the test images (curves made by `rate_curve` and
    `linear_curve` keep each image's PSNR)."""
    rows = []
    for a, curve in curves.items():
        fit = f"input PSNR {curve.fit_range[0]:g}-{curve.fit_range[1]:g} dB"
        rows += [
            dict(id=f"Fig4.slope_alpha{a:g}", measure=f"PSNR slope over {fit} (optimal "
                 f"{curve.optimal:.3f})", measured=curve.slope, paper=PAPER_SLOPES.get(a),
                 target=f"within {SLOPE_TOLERANCE:g} of {curve.optimal:.4f}",
                 checkpoints=[names[a]], interval=curve.slope_interval()),
            dict(
                id=f"Fig4.below_linear_alpha{a:g}", measure=f"most dB below the best linear "
                f"denoiser over {fit} (the optimum is never below it)",
                measured=below_linear(curve, linear[a]), paper=0.0, target=BELOW_LINEAR_TARGET,
                checkpoints=[names[a]], interval=below_linear_interval(curve, linear[a]))
        ]
    return rows
