"""Chapter 5: low-dimensional manifolds, where GAHBs are not optimal (Claim 4; Figs 5, 19, 20).

Data lie on a smooth manifold of dimension d_M much smaller than the number of pixels d (disks:
d_M = 5, the rescalings of one face: 1, unit-frequency sinusoids: 2). At small noise the optimal
denoiser projects onto the manifold's tangent plane: its Jacobian is that projection (d_M
eigenvalues 1, the rest 0) and its error is d_M sigma^2 / d per pixel. This module compares a
trained denoiser's Jacobian with that optimum:

    principal_cosines(A, B)         cosines of the principal angles between two subspaces
    subspace_overlap(A, B)          their mean square (1: same subspace, 0: orthogonal)
    tangent_cosines(analysis, T)    top-k eigenspace of the Jacobian against a tangent basis
    tangent_gains(analysis, T)      what the denoiser keeps of each tangent direction (optimum 1)
    receptive_field(analysis)       the window the central output pixel depends on
    manifold_optimal_psnr(...)      small-noise optimum: output = input PSNR + 10 log10(d / d_M)
    rank_above(eigvals, 0.5)        the paper's "rank": eigenvalues above one half
    manifold_sweep(...)             rank, tr J and tangent overlap over noise levels

Conventions: eigenvectors are the *columns* of `JacobianAnalysis.eigvecs` (d, d); tangent bases
from `synthetic` are *rows* (m, d). Functions below say which they take.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from .. import config, synthetic
from .. import jacobian as jm
from ..analysis import bootstrap_interval, fit_slope, input_psnr, matching_sigmas
from ..plotting import COLUMN_IN, DPI, Table, plot_decay, table

DISK_SIGMA = 0.04  # Fig 5
RAY_SIGMA = 0.04  # Fig 19
CONE_SIGMA = 0.08  # Fig 20
DISK_DIM, RAY_DIM, CONE_DIM = 5, 1, 2  # manifold dimensions d_M
DIMS = {"disks": DISK_DIM, "ray": RAY_DIM, "cone": CONE_DIM}
SMALL_NOISE = 0.1  # the tangent-plane optimum is drawn up to this sigma (see FIT_RANGE)
RANK_THRESHOLD = 0.5  # an eigenvalue above this counts as a kept direction
# Input-PSNR range (dB) of the slope fits: sigma from about 0.1 down to the smallest sigma
# evaluated (config.EVAL_SIGMAS starts at 1/255, 48 dB). The optimum formula is a small-noise
# limit; above sigma ~ 0.1 the curvature of the manifold (and the bounded prior) take over.
FIT_RANGE = (20.0, 50.0)
# Fig 5 of the paper (80x80 disks, sigma = 0.04): lambda_0..4 are given, of lambda_5..9 only
# the two ends (the text says they run from 0.674 down to 0.278).
FIG5_LAMBDAS = {0: 1.177, 1: 1.067, 2: 1.004, 3: 0.999, 4: 0.945, 5: 0.674, 9: 0.278}
# Targets set before the models were trained (figures.SET_IN_ADVANCE); the other rows' targets
# follow figures.RULES.
TANGENT_OVERLAP_TARGET = ">= 0.8"  # Fig 5: the top five eigenvectors span the tangent space
LAMBDA_TARGETS = {9: "<= 0.5"}  # Fig 5: past the tangent space the spectrum has fallen by k = 9
RAY_COSINE_TARGET = ">= 0.9"  # Fig 19: the first eigenvector is the face itself
DISK_PARAMETERS = ("centre x", "centre y", "radius", "foreground", "background")

# ------------------------------------------------------------------ subspaces


def orthonormal_columns(B: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis (d, r) float64 of the column span of B (d, r) (reduced QR)."""
    B = torch.as_tensor(B).double()
    if B.dim() != 2:
        raise ValueError(f"expected a (d, r) matrix of column vectors, got {tuple(B.shape)}")
    q, _ = torch.linalg.qr(B)
    return q


def principal_cosines(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Cosines of the principal angles between span(A) and span(B), A (d, p), B (d, q) columns.

    The singular values of Q_A^T Q_B with Q_A, Q_B orthonormal bases of the two spans, descending,
    min(p, q) of them, in [0, 1]. All 1: one span contains the other; all 0: orthogonal.
    """
    A, B = orthonormal_columns(A), orthonormal_columns(B)
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"the subspaces live in R^{A.shape[0]} and R^{B.shape[0]}")
    return torch.linalg.svdvals(A.T @ B).clamp(0, 1)


def subspace_overlap(A: torch.Tensor, B: torch.Tensor) -> float:
    """Mean squared principal cosine of span(A) and span(B) (columns): ||Q_A^T Q_B||_F^2 /
    min(p, q). 1 when the smaller span lies in the larger, 0 when they are orthogonal; for two
    random p-dimensional subspaces of R^d about p / d."""
    return principal_cosines(A, B).pow(2).mean().item()


def top_eigenspace(a: jm.JacobianAnalysis, k: int) -> torch.Tensor:
    """The eigenvectors of the k largest eigenvalues, as columns (d, k)."""
    return a.eigvecs[:, :k]


def tangent_cosines(a: jm.JacobianAnalysis, tangent: torch.Tensor,
                    k: int | None = None) -> torch.Tensor:
    """Principal cosines between the top-k eigenspace of the Jacobian (k defaults to the
    tangent's dimension) and a tangent basis given as rows (m, d)."""
    tangent = torch.as_tensor(tangent).double()
    return principal_cosines(top_eigenspace(a, k or len(tangent)), tangent.T)


def tangent_overlap(a: jm.JacobianAnalysis, tangent: torch.Tensor, k: int | None = None) -> float:
    """Mean squared principal cosine of `tangent_cosines`."""
    return tangent_cosines(a, tangent, k).pow(2).mean().item()


def tangent_overlaps(analyses: list, tangents) -> list[float]:
    """`tangent_overlap` of each analysis with its tangent basis: tangents (n, m, d), one basis
    (rows) per analysis, or one (m, d) that all share."""
    tangents = torch.as_tensor(tangents)
    return [
        tangent_overlap(a, tangents[i] if tangents.dim() == 3 else tangents)
        for i, a in enumerate(analyses)
    ]


def tangent_gains(a: jm.JacobianAnalysis, tangent: torch.Tensor) -> torch.Tensor:
    """How much of each tangent direction the denoiser keeps: the eigenvalues (descending) of
    T S T^T, S = (J + J^T)/2 restricted to the tangent space spanned by the orthonormal rows T
    (m, d). The optimum keeps every tangent direction whole: all 1."""
    T = torch.as_tensor(tangent).double()
    S = a.eigvecs @ torch.diag(a.eigvals) @ a.eigvecs.T
    return torch.linalg.eigvalsh(T @ S @ T.T).flip(0)


def kept_overlap(a: jm.JacobianAnalysis, tangent: torch.Tensor,
                 threshold: float = RANK_THRESHOLD) -> tuple[float, int]:
    """(mean squared principal cosine between the tangent rows (m, d) and the eigenspace of all
    eigenvalues above threshold, its dimension): is the tangent space inside what the denoiser
    keeps? A random subspace of that dimension k would give about k / d."""
    k = max(rank_above(a.eigvals, threshold), 1)
    return tangent_overlap(a, tangent, k), k


def receptive_field(a: jm.JacobianAnalysis, atol: float = 0.0) -> tuple[int, int]:
    """(height, width) of the pixels that the central output pixel depends on: the bounding box
    of the entries of its Jacobian row with |value| > atol. For a convolutional network, its
    receptive field (cropped to the image)."""
    H, W = a.shape
    row = a.jacobian[(H // 2) * W + W // 2].reshape(H, W).abs() > atol
    r, c = row.nonzero(as_tuple=True)
    return int(r.max() - r.min() + 1), int(c.max() - c.min() + 1)


def with_constant(rows: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows spanning the constant image and the given rows (m, d) -> (m + 1, d)."""
    rows = torch.as_tensor(rows).double()
    const = torch.ones(1, rows.shape[1], dtype=torch.float64)
    return orthonormal_columns(torch.cat([const, rows]).T).T


# ------------------------------------------------------------------ optimum and rank


def manifold_optimal_psnr(in_psnr, d: int, dim: int) -> np.ndarray:
    """Small-noise optimal output PSNR on a smooth dim-dimensional manifold in R^d, against the
    input PSNR: projecting onto the tangent plane leaves MSE dim sigma^2 / d per pixel, so the
    output is in_psnr + 10 log10(d / dim) (slope 1)."""
    if not 0 < dim <= d:
        raise ValueError(f"need 0 < dim <= d, got dim={dim}, d={d}")
    return np.asarray(in_psnr, dtype=float) + 10 * np.log10(d / dim)


def small_noise_optimum(sigmas, d: int, dim: int) -> list:
    """`manifold_optimal_psnr` at each sigma up to SMALL_NOISE, None above (where the manifold's
    curvature and the bounded prior make the small-noise formula meaningless)."""
    return [
        float(manifold_optimal_psnr(input_psnr(s), d, dim)) if s <= SMALL_NOISE else None
        for s in sigmas
    ]


def rank_above(eigvals, threshold: float = RANK_THRESHOLD) -> int:
    """Number of eigenvalues strictly above `threshold` (directions the denoiser mostly keeps)."""
    return int((torch.as_tensor(eigvals) > threshold).sum())


def psnr_fit(sigmas, out_psnr, fit_range=FIT_RANGE) -> tuple[float, float]:
    """(slope, intercept) of output PSNR against input PSNR over input PSNR in fit_range."""
    return fit_slope(input_psnr(np.asarray(sigmas)), out_psnr, fit_range)


# ------------------------------------------------------------------ data


def held_out_disks(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n held-out test disks of the zoo's disk models (seed synthetic.TEST_SEED) and
    their parameters theta (n, 5): the same images as the disk pool's `test(n)`."""
    return synthetic.disks(n, size, synthetic.TEST_SEED)


def contrast(theta: torch.Tensor) -> torch.Tensor:
    """|foreground - background| of disks theta (..., 5): how visible the edge is."""
    theta = torch.as_tensor(theta)
    return (theta[..., 3] - theta[..., 4]).abs()


def disk_tangent_images(theta: torch.Tensor, size: int) -> torch.Tensor:
    """The five derivatives dx/dtheta (cx, cy, r, fg, bg) of one disk, each of unit norm, as
    images (5, size, size): the tangent space before orthonormalisation (easier to read)."""
    rows = synthetic.disk_jacobian(theta, size)
    rows = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return rows.reshape(5, size, size)


# ------------------------------------------------------------------ many Jacobians


def analyze_all(model: torch.nn.Module, images: torch.Tensor, sigma: float,
                seed: int = 0) -> list[jm.JacobianAnalysis]:
    """`jacobian.analyze` of every image (n, 1, H, W) at one sigma; image i uses noise seed + i."""
    return [jm.analyze(model, x, float(sigma), seed=seed + i) for i, x in enumerate(images)]


@dataclass
class ManifoldSweep:
    """Jacobian statistics of one model at several images (rows) and noise levels (columns)."""

    sigmas: np.ndarray
    rank: np.ndarray  # eigenvalues above RANK_THRESHOLD
    effective_dim: np.ndarray  # tr J
    overlap: np.ndarray  # mean squared principal cosine, top-m eigenspace vs the tangent
    top_eigvals: np.ndarray  # (n, len(sigmas), n_top) the largest eigenvalues


def manifold_sweep(model: torch.nn.Module, images: torch.Tensor, tangents, sigmas, seed: int = 0,
                   threshold: float = RANK_THRESHOLD, n_top: int = 12) -> ManifoldSweep:
    """Rank, tr J, tangent overlap and the top eigenvalues of every image at every sigma.

    tangents: one orthonormal basis (m, d) of rows per image, (n, m, d), or one shared (m, d);
    the overlap uses the top-m eigenspace. Image i uses noise seed + i at every sigma.
    """
    sigmas = np.asarray(sigmas, dtype=float)
    tangents = torch.as_tensor(tangents)
    n, s = len(images), len(sigmas)
    rank, tr, overlap = (np.zeros((n, s)) for _ in range(3))
    top = np.zeros((n, s, n_top))
    for i, x in enumerate(images):
        t = tangents[i] if tangents.dim() == 3 else tangents
        for j, sigma in enumerate(sigmas):
            a = jm.analyze(model, x, float(sigma), seed=seed + i)
            rank[i, j] = rank_above(a.eigvals, threshold)
            tr[i, j] = a.effective_dim
            overlap[i, j] = tangent_overlap(a, t)
            top[i, j] = a.eigvals[:n_top].numpy()
    return ManifoldSweep(sigmas, rank, tr, overlap, top)


# ------------------------------------------------------------------ tables and figures


def paper_eigenvalue_rows(ours: dict[str, torch.Tensor], paper: dict = FIG5_LAMBDAS,
                          n: int = 10) -> list[list]:
    """Rows [k, paper lambda_k (text; 'unknown' where the paper gives none), our lambda_k per
    labelled spectrum] for k < n."""
    return [[
        k, f"{paper[k]:.3f}" if k in paper else "unknown", *[float(v[k]) for v in ours.values()]
    ] for k in range(n)]


def plot_optimal_eigenvalues(ax, dim: int, n: int, label: str | None = None) -> None:
    """The small-noise optimum's eigenvalues: dim ones, then zeros (a step), on ax."""
    k = np.arange(n)
    ax.step(k, (k < dim).astype(float), where="mid", color="k", ls=":", lw=1.2, label=label
            or f"optimum ({dim}-D projection)")
    ax.legend(fontsize=8)


def plot_psnr_against_optimum(ax, sigmas, out_psnr, d: int, dim: int, label: str,
                              fit_range=FIT_RANGE) -> tuple[float, float]:
    """Measured output PSNR, the small-noise optimum (slope 1) and the fitted line over
    fit_range, on axes made by plotting.psnr_axes. Returns the fit (slope, intercept)."""
    x = input_psnr(np.asarray(sigmas))
    slope, intercept = psnr_fit(sigmas, out_psnr, fit_range)
    ax.plot(x, out_psnr, "o-", ms=3, label=label)
    ax.plot(x, manifold_optimal_psnr(x, d, dim), color="C3", lw=1.2,
            label=rf"optimum {dim if dim > 1 else ''}$\sigma^2/d$ (slope 1)")
    xs = np.array([max(fit_range[0], x.min()), min(fit_range[1], x.max())])
    ax.plot(xs, slope * xs + intercept, color="C2", ls="--", lw=1.2,
            label=f"fit {fit_range[0]:g}-{fit_range[1]:g} dB: slope {slope:.2f}")
    ax.legend(fontsize=7)
    return slope, intercept


def optimum_table(sigmas, out_psnr, d: int, dim: int) -> Table:
    """Output PSNR against the small-noise optimum (`manifold_optimal_psnr`) at each sigma:
    sigma, input PSNR, network, optimum, shortfall (dB), as a `plotting.Table`."""
    x = input_psnr(np.asarray(sigmas))
    best = manifold_optimal_psnr(x, d, dim)
    return table(["sigma", "input PSNR", "network", "optimum", "shortfall"],
                 [[s, i, a, b, b - a] for s, i, a, b in zip(sigmas, x, out_psnr, best)],
                 [".4f", ".1f", ".2f", ".2f", ".2f"])


def spectrum_figure(spectra: dict, analyses: dict, dim: int, paper: dict | None = None):
    """Top: `plot_leading_eigenvalues` of the labelled spectra; below, left and right: the
    eigenvalues and coefficients of the labelled analyses (`plotting.plot_decay`, at the first
    one's sigma), each beside the optimum's eigenvalues (dim ones, then zeros). As wide as the
    book's column."""
    fig = plt.figure(figsize=(COLUMN_IN, 5.4), dpi=DPI, layout="constrained")
    grid = fig.add_gridspec(2, 2)
    axes = [fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])]
    plot_leading_eigenvalues(axes[0], spectra, dim, paper=paper)
    first = next(iter(analyses.values()))
    plot_decay(analyses, axes[1:], sigma=first.sigma)
    plot_optimal_eigenvalues(axes[1], dim, len(first.eigvals))
    return fig


def plot_leading_eigenvalues(ax, spectra: dict, dim: int, n: int = 30,
                             paper: dict | None = None) -> None:
    """The first n eigenvalues of each labelled spectrum, the optimum's step (dim ones) and,
    if given, the paper's known values {k: lambda_k} as crosses."""
    k = np.arange(n)
    for label, vals in spectra.items():
        vals = np.asarray(vals, dtype=float)
        ax.plot(k[:len(vals)], vals[:n], "o-", ms=3, lw=1, label=label)
    if paper:
        ax.plot(list(paper), list(paper.values()), "x", color="C3", ms=7, mew=1.6,
                label="paper (80x80)")
    ax.axhline(RANK_THRESHOLD, color="0.5", lw=0.6)
    ax.set_xlabel("k"), ax.set_ylabel(r"$\lambda_k$")
    ax.grid(alpha=0.3)
    plot_optimal_eigenvalues(ax, dim, n)


def disk_overlap_rows(analyses: list, tangents: torch.Tensor, theta: torch.Tensor) -> list[list]:
    """One row per test disk: [disk, contrast, radius, cos_1..cos_m (top-m eigenspace vs the
    tangent space), their mean square, # eigenvalues above RANK_THRESHOLD, the tangent overlap
    with that kept eigenspace, the mean of `tangent_gains`]."""
    rows = []
    for i, (a, t, th) in enumerate(zip(analyses, tangents, theta)):
        c = tangent_cosines(a, t)
        kept, k = kept_overlap(a, t)
        rows.append([
            i,
            float(contrast(th)),
            float(th[2]), *c.tolist(),
            c.pow(2).mean().item(), k, kept,
            tangent_gains(a, t).mean().item()
        ])
    return rows


def plot_sweep(axes, sweep: ManifoldSweep, dim: int) -> None:
    """Left: directions kept (eigenvalues above RANK_THRESHOLD, and tr J) against sigma; right:
    the tangent overlap against sigma. Thin lines: single images; dots: their mean."""
    ax0, ax1 = axes
    s, n = sweep.sigmas, len(sweep.rank)
    ax0.semilogx(s, sweep.rank.T, color="C0", alpha=0.25, lw=0.8)
    ax0.semilogx(s, sweep.rank.mean(0), "o-", color="C0",
                 label=rf"# $\lambda_k > {RANK_THRESHOLD:g}$, mean of {n}")
    ax0.semilogx(s, sweep.effective_dim.mean(0), "s--", color="C1", ms=4,
                 label=rf"tr $J$, mean of {n}")
    ax0.axhline(dim, color="k", ls=":", lw=1.2, label=f"manifold dimension {dim}")
    ax0.set_ylim(bottom=0)
    ax0.set_ylabel("directions kept")
    ax1.semilogx(s, sweep.overlap.T, color="C0", alpha=0.25, lw=0.8)
    ax1.semilogx(s, sweep.overlap.mean(0), "o-", color="C0", label=f"mean of {n}")
    ax1.set_ylim(0, 1.02)
    ax1.set_ylabel(rf"tangent overlap (mean cos$^2$, top {dim})")
    for ax in axes:
        ax.set_xlabel(r"$\sigma$")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)


# ------------------------------------------------------------------ the training comparison

# shipped beside the book checkpoints, read at every profile
COMPARISON_FILE = config.REPO_ROOT / "checkpoints" / "book" / "training_comparison.json"
BF16_TOLERANCE_DB = 0.2  # bf16 training had to reach the fp32 test PSNR within this


def training_comparison(path=COMPARISON_FILE) -> dict:
    """The arms of tools/compare_training.py (made at the book profile; a committed artefact):
    {arm: {config, speed, images, sigmas, test_psnr, tangent_overlap, kept_directions, ...}}."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; make it with tools/compare_training.py "
                                "(its docstring has the commands)")
    return json.loads(path.read_text())["arms"]


def bf16_difference(arms: dict) -> tuple[np.ndarray, np.ndarray]:
    """(sigmas, final test PSNR of the bf16 arm minus the fp32 arm's) of the steady recipe."""
    bf16, plain = arms["steady_bf16"], arms["steady"]
    return np.array(
        plain["sigmas"]), np.array(bf16["test_psnr"][-1]) - np.array(plain["test_psnr"][-1])


def comparison_rows(arms: dict, sigma: float = DISK_SIGMA) -> list[list]:
    """One row per arm: recipe, bf16 or not, images seen, wall time, final test PSNR at `sigma`,
    and chapter 06's disk measures at DISK_SIGMA."""
    rows = []
    for arm, r in arms.items():
        c = r["config"]
        recipe = (f"{c['blocks']} blocks, batch {c['batch']}, lr {c['lr']:g} {c['lr_schedule']}, "
                  f"σ {c['sigma_sampling']}")
        j = matching_sigmas(r["sigmas"], [sigma])[0]
        rows.append([
            arm, recipe, "on" if r["speed"]["bf16"] else "off", r["images"][-1],
            r["wall_time_s"] / 60, r["test_psnr"][-1][j], r["tangent_overlap"],
            r["kept_directions"], r["gain_db"]
        ])
    return rows


def plot_training_comparison(axes, arms: dict, sigma: float = DISK_SIGMA) -> None:
    """Left: test PSNR at `sigma` against training images seen, every arm. Right: the bf16 arm's
    final test PSNR minus the fp32 arm's at every sigma, with the tolerance shaded."""
    left, right = axes
    for arm, r in arms.items():
        j = matching_sigmas(r["sigmas"], [sigma])[0]
        left.plot(r["images"], [p[j] for p in r["test_psnr"]], "o-", ms=3, label=arm)
    left.set_xlabel("training images seen"), left.set_ylabel(f"test PSNR at σ = {sigma:g} (dB)")
    left.legend(fontsize=8), left.grid(alpha=0.3)
    sigmas, diff = bf16_difference(arms)
    right.semilogx(sigmas, diff, "o-", color="C2")
    right.axhspan(-BF16_TOLERANCE_DB, BF16_TOLERANCE_DB, color="C2", alpha=0.15,
                  label=f"±{BF16_TOLERANCE_DB} dB")
    right.axhline(0, color="k", lw=0.6)
    right.set_xlabel("σ"), right.set_ylabel("bf16 − fp32, final test PSNR (dB)")
    right.legend(fontsize=8), right.grid(alpha=0.3)


# ---------------------------------------------------------------------------- scorecard
def mean_interval(values) -> tuple[float, float]:
    """Bootstrap interval of the mean of `values` (one per image) over the images."""
    return bootstrap_interval(np.mean, np.asarray(values, dtype=float))


def slope_interval(sigmas, per_image) -> tuple[float, float] | None:
    """Bootstrap interval over the images of `psnr_fit`'s slope of the mean PSNR curve;
    per_image: (sigmas, images) each image's PSNR (None: no interval)."""
    if per_image is None:
        return None
    return bootstrap_interval(lambda each: psnr_fit(sigmas, each.mean(-1))[0],
                              np.asarray(per_image, dtype=float))


def shortfall_interval(optimum: float, per_image) -> tuple[float, float] | None:
    """Bootstrap interval over the images of `optimum` minus the mean PSNR; per_image: each
    image's PSNR (None: no interval)."""
    if per_image is None:
        return None
    return bootstrap_interval(lambda each: optimum - each.mean(),
                              np.asarray(per_image, dtype=float))


def scorecard_measurements(names: dict, *, disk_overlaps, disk_slope: float, rank_sigmas,
                           rank_growth: float, disk_eigvals: torch.Tensor, disk_shortfall: float,
                           n_eval: int, ray_cosine: float, cone_overlaps, cone_overlap3: float,
                           psnr_sigmas=None, disk_psnr=None, disk_at_sigma=None) -> list[dict]:
    """The chapter's rows: disks (Fig 5), the face ray (Fig 19) and the cone (Fig 20).
    names[kind]: the model's name; disk_overlaps, cone_overlaps: `tangent_overlaps` of each
    test image; disk_eigvals: (disks, d) the eigenvalues of each test disk. Targets: the
    constants above where set before training, else figures.RULES.

    Each gated row has a bootstrap interval over the images it averages: the overlaps and the
    eigenvalues over the test images; the slope and the shortfall over the test disks of the
    PSNR curve, given each disk's PSNR at `psnr_sigmas` (disk_psnr, (sigmas, disks)) and at
    DISK_SIGMA (disk_at_sigma). Fig19's cosine reads one face's Jacobian: no interval."""
    disks, ray, cone = [names["disks"]], [names["ray"]], [names["cone"]]
    n_disks, n_cones, d = len(disk_overlaps), len(cone_overlaps), disk_eigvals.shape[-1]
    disk_lambdas = disk_eigvals.mean(0)
    optimum = small_noise_optimum([DISK_SIGMA], d, DISK_DIM)[0]
    at_disk, at_cone = f"sigma={DISK_SIGMA:g}", f"sigma={CONE_SIGMA:g}"
    rows = [
        dict(
            id="Fig5.tangent_overlap", measure="mean cos^2 of principal angles, top-5 eigenspace "
            f"vs disk tangent space, {at_disk}, {n_disks} test disks",
            measured=float(np.mean(disk_overlaps)), target=TANGENT_OVERLAP_TARGET,
            checkpoints=disks, interval=mean_interval(disk_overlaps)),
        dict(
            id="Fig5.disk_psnr_slope", measure="output vs input PSNR slope, test disks, input "
            f"PSNR {FIT_RANGE[0]:g}-{FIT_RANGE[1]:g} dB (optimum 1)", measured=disk_slope,
            checkpoints=disks, interval=slope_interval(psnr_sigmas, disk_psnr)),
        dict(
            id="Fig5.disk_rank_growth", measure=f"# eigenvalues > {RANK_THRESHOLD:g} at "
            f"sigma={rank_sigmas[0]:g} minus at sigma={rank_sigmas[-1]:g}, mean of {n_disks} "
            "disks", measured=rank_growth, checkpoints=disks)
    ]
    rows += [
        dict(id=f"Fig5.lambda_{k}", measure=f"lambda_{k} of disks at {at_disk}, mean of "
             f"{n_disks} disks", paper=value, measured=float(disk_lambdas[k]),
             target=LAMBDA_TARGETS.get(k), checkpoints=disks,
             interval=mean_interval(disk_eigvals[:, k])) for k, value in FIG5_LAMBDAS.items()
    ]
    rows += [
        dict(
            id="Fig5.disk_gain_shortfall_dB", measure="small-noise optimum minus network output "
            f"PSNR at {at_disk}, {n_eval} test disks (dB)", measured=disk_shortfall,
            checkpoints=disks, interval=shortfall_interval(optimum, disk_at_sigma)),
        dict(id="Fig19.first_eigvec", measure="|cos(e_0, x/||x||)| of the face ray at "
             f"sigma={RAY_SIGMA:g}", measured=ray_cosine, target=RAY_COSINE_TARGET,
             checkpoints=ray),
        dict(
            id="Fig20.tangent_overlap", measure="mean cos^2, top-2 eigenspace vs span{sin, "
            f"cos}}, {at_cone}, {n_cones} test sinusoids", measured=float(np.mean(cone_overlaps)),
            checkpoints=cone, interval=mean_interval(cone_overlaps)),
        dict(
            id="Fig20.overlap_with_constant", measure="mean cos^2, top-3 eigenspace vs "
            f"span{{1, sin, cos}}, {at_cone}, {n_cones} test sinusoids", measured=cone_overlap3,
            checkpoints=cone)
    ]
    return rows
