"""Chapter 3: the Jacobian's eigenvectors as geometry-adaptive harmonic bases (Figs 3 and 21).

The heavy lifting (Jacobian, eigendecomposition) is `jacobian.analyze`; this module holds the
paper's numbers, the rescaling of the paper's eigenvector indices to our image size, a sweep of
the Jacobian statistics over noise levels, and the chapter's figures and tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import jacobian as jm
from .plotting import format_table, image_png  # noqa: F401 (format_table: for the notebooks)

# The paper's Figs 3 and 21 are at 80x80: d = 6400.
PAPER_DIM = 6400
FIG3_SIGMA = 0.15
FIG3_LAMBDAS = {5: 1.244, 17: 1.115, 53: 0.973, 101: 0.822, 149: 0.689, 197: 0.59, 245: 0.51}
FIG21_SIGMA = 0.3
FIG21_LAMBDAS = {5: 1.182, 17: 1.07, 29: 0.974, 41: 0.91, 53: 0.87}


def rescale_index(k: int, d: int, d_paper: int = PAPER_DIM) -> int:
    """The paper's eigenvector index k (of d_paper) at the same fraction of our d, rounded."""
    return int(min(d - 1, max(0, round(k * d / d_paper))))


def index_map(paper_ks, d: int, d_paper: int = PAPER_DIM) -> dict[int, int]:
    """{paper index: our index} for every paper index."""
    return {int(k): rescale_index(k, d, d_paper) for k in paper_ks}


def eigenvalue_rows(paper: dict, eigvals: torch.Tensor, d_paper: int = PAPER_DIM) -> list[list]:
    """Rows [paper k, our k, paper lambda, our lambda at our k, our lambda at the paper's k]:
    our k is the paper's rescaled to d = len(eigvals); the last column is None when k >= d."""
    d = len(eigvals)
    return [[k, ours, value, float(eigvals[ours]), float(eigvals[k]) if k < d else None]
            for (k, value), ours in zip(paper.items(), index_map(paper, d, d_paper).values())]




def scorecard_table(rows: list[dict]) -> str:
    """The chapter's scorecard rows as a text table."""
    verdict = {True: "pass", False: "FAIL", None: "report"}
    return format_table(
        ["id", "paper", "target", "measured", ""],
        [[r["id"], r["paper"], r["target"] or "-", r["measured"], verdict[r["pass"]]]
         for r in rows],
        ["<", ".4g", "<", ".4g", "<"])


# ------------------------------------------------------------------ measurements


@dataclass
class SigmaSweep:
    """Jacobian statistics of one model at several faces (rows) and noise levels (columns)."""

    sigmas: np.ndarray
    effective_dim: np.ndarray  # tr J
    asymmetry: np.ndarray  # ||J - J^T||_F / ||J||_F
    homogeneity_error: np.ndarray  # ||f(y) - J y|| / ||f(y)||
    min_eigval: np.ndarray  # smallest eigenvalue of (J + J^T)/2


def sigma_sweep(model: torch.nn.Module, faces: torch.Tensor, sigmas, seed: int = 0) -> SigmaSweep:
    """`jacobian.analyze` of every face (n, 1, H, W) at every sigma; face i uses noise seed+i."""
    sigmas = np.asarray(sigmas, dtype=float)
    out = np.zeros((4, len(faces), len(sigmas)))
    for i, x in enumerate(faces):
        for j, s in enumerate(sigmas):
            a = jm.analyze(model, x, float(s), seed=seed + i)
            out[:, i, j] = (a.effective_dim, a.asymmetry, a.homogeneity_error,
                            a.eigvals[-1].item())
    return SigmaSweep(sigmas, *out)


def oriented(a: jm.JacobianAnalysis, ks) -> torch.Tensor:
    """Eigenvectors ks as images (len(ks), H, W), each signed so that <x, e_k> >= 0."""
    ks = list(ks)
    signs = torch.where(a.coeffs[ks] < 0, -1.0, 1.0).to(a.eigvecs.dtype)
    return a.eigenimages(ks) * signs[:, None, None]


def unit_range(images: torch.Tensor) -> torch.Tensor:
    """Each image divided by its largest |value| (for display with vmin=-1, vmax=1)."""
    images = torch.as_tensor(images).double()
    peak = images.flatten(1).abs().amax(dim=1).clamp_min(1e-12)
    return images / peak[:, None, None]


def symmetric_error(a: jm.JacobianAnalysis) -> float:
    """||S y - f(y)|| / ||f(y)|| with S = (J + J^T)/2: how well the eigen-expansion
    sum_k lambda_k <y, e_k> e_k reproduces the denoiser (0 when J is symmetric)."""
    y, fy = a.y.reshape(-1).double(), a.fy.reshape(-1).double()
    sy = a.eigvecs @ (a.eigvals * (a.eigvecs.T @ y))
    return ((sy - fy).norm() / fy.norm().clamp_min(1e-300)).item()



def top_block_asymmetry(a: jm.JacobianAnalysis, m: int) -> float:
    """||B - B^T||_F / ||B||_F for B = E_m^T J E_m, J restricted to its top-m eigenvectors (of the
    symmetric part): how symmetric the denoiser is in the directions it keeps. `a.asymmetry` is
    the same over all d directions, where the many suppressed ones can dominate."""
    e = a.eigvecs[:, :m].double()
    block = e.T @ a.jacobian.double() @ e
    return ((block - block.T).norm() / block.norm().clamp_min(1e-300)).item()

def negative_share(a: jm.JacobianAnalysis) -> tuple[int, float]:
    """Number of negative eigenvalues and the share of ||x||^2 on their eigenvectors."""
    neg = a.eigvals < 0
    c2 = a.coeffs.double() ** 2
    return int(neg.sum()), (c2[neg].sum() / c2.sum()).item()


def energy_fraction(coeffs: torch.Tensor, m: int) -> float:
    """Fraction of ||x||^2 carried by the first m coefficients of x in an orthonormal basis."""
    c2 = coeffs.double() ** 2
    return (c2[:m].sum() / c2.sum()).item()


def sorted_energy_fraction(coeffs: torch.Tensor, m: int) -> float:
    """The same for the m largest coefficients (best m-term approximation)."""
    c2 = (coeffs.double() ** 2).sort(descending=True).values
    return (c2[:m].sum() / c2.sum()).item()


# ------------------------------------------------------------------ figures


def running_geomean(values: np.ndarray, window: int | None = None) -> np.ndarray:
    """Geometric mean over a centred window (default d/20, at least 3) to show a trend."""
    values = np.maximum(np.asarray(values, float), 1e-12)
    window = window or max(3, len(values) // 20)
    kernel = np.ones(window) / window
    logs = np.log(values)
    pad = np.pad(logs, (window // 2, window - 1 - window // 2), mode="edge")
    return np.exp(np.convolve(pad, kernel, mode="valid"))


def plot_decay(analyses: dict, axes, sigma: float | None = None) -> None:
    """Left: eigenvalues lambda_k; right: |<x, e_k>| (log scale; dots, and their running
    geometric mean as a line) for each labelled analysis."""
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


def eigenvector_pngs(a: jm.JacobianAnalysis, ks, size_in: float = 2.6,
                     dpi: int = 90) -> list[bytes]:
    """One PNG per eigenvector k in ks, titled with k and lambda_k (for plotting.image_slider)."""
    ks = list(ks)
    images = unit_range(oriented(a, ks))
    return [image_png(im, rf"$e_{{{k}}}$,  $\lambda_{{{k}}}$ = {a.eigvals[k].item():.3f}",
                      vmin=-1, vmax=1, size_in=size_in, dpi=dpi)
            for k, im in zip(ks, images)]
