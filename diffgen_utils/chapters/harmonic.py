"""Chapter 04: the Jacobian's eigenvectors as geometry-adaptive harmonic bases (Figs 3 and 21).

The heavy lifting (Jacobian, eigendecomposition) is `jacobian.analyze`; this module holds the
paper's numbers, the rescaling of the paper's eigenvector indices to our image size, a sweep of
the Jacobian statistics over noise levels, two measures of what the eigenvectors are (spatial
frequency, energy on the image's edges), and the chapter's figures and tables.
What chapters 05 and 06 read off an analysis too (oriented eigenvectors, energy fractions,
the decay plot) is in `jacobian` and `plotting`. Fig 3 is analysed at the face size and again at
the profile's second size (`size_analysis`: 40x40 with Table 1's two blocks at `book`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch

from .. import analysis, data, zoo
from .. import jacobian as jm
from ..config import Profile
from ..families import FACES, not_shipped
from ..plotting import image_grid, image_png, notice, running_geomean, running_mean, unit_range

# The paper's Figs 3 and 21 are at 80x80: d = 6400.
PAPER_DIM = 6400
FIG3_SIGMA = 0.15
FIG3_LAMBDAS = {5: 1.244, 17: 1.115, 53: 0.973, 101: 0.822, 149: 0.689, 197: 0.59, 245: 0.51}
FIG21_SIGMA = 0.3
FIG21_LAMBDAS = {5: 1.182, 17: 1.07, 29: 0.974, 41: 0.91, 53: 0.87}
# The eigenvectors compared by the frequency and edge measures: the first 20 ("early") and
# k in [d/4, d/2) ("late").
EARLY_KS = range(20)


def late_ks(d: int) -> range:
    """k in [d/4, d/2): well inside the spectrum, before the suppressed tail."""
    return range(d // 4, d // 2)


def rescale_index(k: int, d: int, d_paper: int = PAPER_DIM) -> int:
    """The paper's eigenvector index k (of d_paper) at the same fraction of our d, rounded."""
    return int(min(d - 1, max(0, round(k * d / d_paper))))


def index_map(paper_ks, d: int, d_paper: int = PAPER_DIM) -> dict[int, int]:
    """{paper index: our index} for every paper index."""
    return {int(k): rescale_index(k, d, d_paper) for k in paper_ks}


def eigenvalue_rows(paper: dict, eigvals: torch.Tensor | None,
                    d_paper: int = PAPER_DIM) -> list[list]:
    """Rows [paper k, our k, paper lambda, our lambda at our k, our lambda at the paper's k]:
    our k is the paper's rescaled to d = len(eigvals); the last column is None when k >= d.
    No eigenvalues (None: a model the profile does not ship), no rows."""
    if eigvals is None:
        return []
    d = len(eigvals)
    return [[k, ours, value,
             float(eigvals[ours]),
             float(eigvals[k]) if k < d else None]
            for (k, value), ours in zip(paper.items(),
                                        index_map(paper, d, d_paper).values())]


def lambda_ratio(eigvals: torch.Tensor, paper: dict = FIG3_LAMBDAS,
                 d_paper: int = PAPER_DIM) -> tuple[float, float]:
    """(ours, paper's) ratio of the eigenvalue at the paper's last index of `paper` to that at its
    first, ours at those indices rescaled to d = len(eigvals): how far the spectrum falls over
    the same fraction of the dimensions."""
    first, last = min(paper), max(paper)
    ours = index_map((first, last), len(eigvals), d_paper)
    return float(eigvals[ours[last]] / eigvals[ours[first]]), paper[last] / paper[first]


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
            out[:, i,
                j] = (a.effective_dim, a.asymmetry, a.homogeneity_error, a.eigvals[-1].item())
    return SigmaSweep(sigmas, *out)


def symmetric_error(a: jm.JacobianAnalysis) -> float:
    """||S y - f(y)|| / ||f(y)|| with S = (J + J^T)/2: how well the eigen-expansion
    sum_k lambda_k <y, e_k> e_k reproduces the denoiser (0 when J is symmetric)."""
    y, fy = a.y.reshape(-1).double(), a.fy.reshape(-1).double()
    sy = a.eigvecs @ (a.eigvals * (a.eigvecs.T @ y))
    return ((sy - fy).norm() / fy.norm().clamp_min(1e-300)).item()


# ------------------------------------------------------------------ what the eigenvectors are


def radial_frequency(shape) -> torch.Tensor:
    """|omega| = sqrt(u^2 + v^2) in cycles per pixel at every bin of an (H, W) 2-D DFT
    (torch.fft.fft2 order; u, v from fftfreq, in [-1/2, 1/2))."""
    u = torch.fft.fftfreq(shape[0], dtype=torch.float64)
    v = torch.fft.fftfreq(shape[1], dtype=torch.float64)
    return torch.hypot(u[:, None], v[None, :])


def mean_frequency(images: torch.Tensor) -> torch.Tensor:
    """Power-weighted mean |omega| of each image (..., H, W), in cycles per pixel:
    sum_omega |E(omega)|^2 |omega| / sum_omega |E(omega)|^2, E the 2-D DFT of the image."""
    power = torch.fft.fft2(torch.as_tensor(images).double()).abs()**2
    omega = radial_frequency(images.shape[-2:])
    return (power * omega).sum((-2, -1)) / power.sum((-2, -1))


def spatial_frequency(a: jm.JacobianAnalysis, ks) -> np.ndarray:
    """Mean spatial frequency of each eigenvector e_k, k in ks, in cycles per pixel: the mean of
    |omega| over the 2-D DFT of e_k (as an H x W image) weighted by its power |E_k(omega)|^2
    (`mean_frequency`). 0 for a constant, f for cos(2 pi f . r), up to 1/sqrt(2) for a
    checkerboard. For harmonic eigenvectors (the paper's claim) it grows with k."""
    return mean_frequency(a.eigenimages(ks)).numpy()


def flat_spectrum_frequency(shape) -> float:
    """`mean_frequency` of a flat power spectrum (white noise), the mean |omega| over the DFT
    bins: the reference for vectors with no preferred frequency (about 0.38 for 20x20). It is
    also the exact mean of `spatial_frequency` over any complete orthonormal basis."""
    return radial_frequency(shape).mean().item()


def frequency_growth(a: jm.JacobianAnalysis, early=EARLY_KS, late=None) -> float:
    """Mean spatial frequency of the eigenvectors `late` (default `late_ks(d)`) divided by that
    of `early` (default the first 20): above 1 when frequency grows down the spectrum."""
    late = late_ks(len(a.eigvals)) if late is None else late
    return float(spatial_frequency(a, late).mean() / spatial_frequency(a, early).mean())


def edge_mask(x: torch.Tensor, top: float = 0.2) -> torch.Tensor:
    """The edges of an image x ((H, W) or (1, H, W)) as a boolean (H, W) mask: its pixels in the
    top `top` fraction of the gradient magnitude sqrt(gx^2 + gy^2), with gx, gy central
    differences (x[i+1] - x[i-1]) / 2 inside the image and one-sided differences x[i+1] - x[i]
    on its border (torch.gradient). That is round(top * H * W) pixels, fewer when pixels tie
    at the threshold: ties are all left out (so a flat image has no edges)."""
    if not 0 < top < 1:
        raise ValueError(f"top must lie in (0, 1), got {top}")
    x = torch.as_tensor(x).double()
    gy, gx = torch.gradient(x.reshape(x.shape[-2:]))
    magnitude = torch.hypot(gx, gy)
    n = min(round(top * magnitude.numel()), magnitude.numel() - 1)
    threshold = magnitude.flatten().sort(descending=True).values[n]
    return magnitude > threshold


def edge_energy_share(a: jm.JacobianAnalysis, ks, top: float = 0.2) -> np.ndarray:
    """For each eigenvector e_k, k in ks: the share of its energy sum_i e_k[i]^2 that lies on
    the clean image's edge pixels (`edge_mask(a.x, top)`). A vector that ignores the image's
    geometry puts `edge_chance(a, top)` (= top without ties) there on average; eigenvectors
    that follow the image's contours (the paper's geometry-adaptive bases) put more."""
    energy = a.eigenimages(ks)**2
    on_edges = energy * edge_mask(a.x, top)
    return (on_edges.sum((-2, -1)) / energy.sum((-2, -1))).numpy()


def edge_chance(a: jm.JacobianAnalysis, top: float = 0.2) -> float:
    """Chance level of `edge_energy_share`: the fraction of pixels in the edge mask (`top` unless
    ties shrink it). It is the expected share of a random direction and the exact mean share
    over any complete orthonormal basis, such as all d eigenvectors."""
    return edge_mask(a.x, top).double().mean().item()


def edge_shares_of_faces(model: torch.nn.Module, faces: torch.Tensor, sigma: float, ks=EARLY_KS,
                         top: float = 0.2, seed: int = 0) -> np.ndarray:
    """Mean `edge_energy_share` of eigenvectors ks at each face (n, 1, H, W), all with noise
    seed `seed`: how much one face's number varies from face to face."""
    return np.array(
        [edge_energy_share(jm.analyze(model, x, sigma, seed=seed), ks, top).mean() for x in faces])


def unpermuted(a: jm.JacobianAnalysis) -> jm.JacobianAnalysis:
    """The analysis of a shuffled-pixel image moved back to the face's pixel grid: images,
    eigenvectors and Jacobian un-permuted (`data.shuffle_pixels`); eigenvalues, coefficients
    and scalars unchanged."""
    back = partial(data.shuffle_pixels, inverse=True)
    d = len(a.eigvals)
    inverse = torch.argsort(data.pixel_permutation(a.shape[-1]))
    eigvecs = back(a.eigvecs.T.reshape(d, *a.shape)).reshape(d, d).T
    return replace(a, x=back(a.x), y=back(a.y), fy=back(a.fy), eigvecs=eigvecs,
                   jacobian=a.jacobian[inverse][:, inverse])


def measure_rows(analyses: dict, top: float = 0.2) -> list[list]:
    """Rows [label, mean frequency of the first 20 eigenvectors, of k in [d/4, d/2), their ratio
    (`frequency_growth`), mean edge-energy share of the first 20, its chance level]; an analysis
    that is None gives no row."""
    rows = []
    for label, a in analyses.items():
        if a is None:  # a model the profile does not ship
            continue
        early = spatial_frequency(a, EARLY_KS).mean()
        late = spatial_frequency(a, late_ks(len(a.eigvals))).mean()
        rows.append([
            label, early, late, late / early,
            edge_energy_share(a, EARLY_KS, top).mean(),
            edge_chance(a, top)
        ])
    return rows


# ------------------------------------------------------------------ figures


def eigenvector_pngs(a: jm.JacobianAnalysis, ks, size_in: float = 2.6,
                     dpi: int = 90) -> list[bytes]:
    """One PNG per eigenvector k in ks, titled with k and lambda_k (for plotting.image_slider)."""
    ks = list(ks)
    images = unit_range(jm.oriented(a, ks))
    return [
        image_png(im, rf"$e_{{{k}}}$,  $\lambda_{{{k}}}$ = {a.eigvals[k].item():.3f}", vmin=-1,
                  vmax=1, size_in=size_in, dpi=dpi) for k, im in zip(ks, images)
    ]


def plot_eigenvector_measures(analyses: dict, axes, top: float = 0.2) -> None:
    """Left: `spatial_frequency` of every e_k against k, with the flat-spectrum level dashed;
    right: `edge_energy_share`, with its chance level dashed. Dots are single eigenvectors, the
    line their running mean, one colour per labelled analysis."""
    ax0, ax1 = axes
    for label, a in analyses.items():
        k = np.arange(len(a.eigvals))
        for ax, values in ((ax0, spatial_frequency(a, k)), (ax1, edge_energy_share(a, k, top))):
            dots = ax.plot(k, values, ".", ms=2, alpha=0.3)[0]
            ax.plot(k, running_mean(values), color=dots.get_color(), lw=1.4, label=label)
    first = next(iter(analyses.values()))
    ax0.axhline(flat_spectrum_frequency(first.shape), color="k", ls="--", lw=0.8,
                label="flat spectrum")
    chance = ax1.axhline(edge_chance(first, top), color="k", ls="--", lw=0.8,
                         label=f"chance ({edge_chance(first, top):.2g})")
    ax0.set_ylabel("mean frequency (cycles/pixel)")
    ax1.set_ylabel(f"share of $\\|e_k\\|^2$ on top-{top:.0%} edges")
    ax0.legend(fontsize=7)
    ax1.legend(handles=[chance], fontsize=7)  # the colours are those of the left panel
    for ax in axes:
        ax.set_xlabel("k")
        ax.grid(alpha=0.3)


# ---------------------------------------------------------------------------- scorecard
IDENTITY_TARGET = "<= 1e-4"  # f(y) = J y holds to float precision for a bias-free network
SHUFFLED_DROP_TARGET = ">= 2"  # Fig 21: shuffled faces denoise worse (dB at FIG21_SIGMA)


def psnr_drop(each) -> float:
    """Mean PSNR of the faces minus that of the shuffled faces; each: (2, images), row 0 the
    faces', row 1 the shuffled faces' PSNR of each test image."""
    return float(each[0].mean() - each[1].mean())


def scorecard_measurements(fig3: jm.JacobianAnalysis, identity_error: float,
                           shuffled_drop_db: float, model: str, shuffled_model: str,
                           drop_each=None) -> list[dict]:
    """The chapter's rows: the bias-free identity (largest error over every analysis of both
    models), the shuffled model's PSNR drop (Fig 21), and the Figure 3 analysis. Targets of
    rows compared with a paper number or a known level come from figures.RULES.

    drop_each = (faces, shuffled): each test face's PSNR at FIG21_SIGMA with each model (the
    same faces, shuffled for the second, and the same noise) gives the drop its bootstrap
    interval over the faces (resampled in pairs). The other gated rows have none: the identity
    is a maximum that holds by construction, and the Figure 3 rows read one face's Jacobian,
    with no images to resample."""
    d = fig3.eigvals.numel()
    drop_interval = None if drop_each is None else analysis.bootstrap_interval(
        psnr_drop, np.stack([np.asarray(x, dtype=float).ravel() for x in drop_each]))
    both, fig3_only = [model, shuffled_model], [model]
    at = f"sigma={fig3.sigma:g}"
    rows = [
        dict(id="check.bias_free_identity", measure="max ||f(y) - J y|| / ||f(y)||",
             measured=identity_error, target=IDENTITY_TARGET, checkpoints=both),
        dict(id="Fig21.shuffled_psnr_drop_dB", measure=f"faces - shuffled test PSNR at "
             f"sigma={FIG21_SIGMA:g} (dB)", measured=shuffled_drop_db, target=SHUFFLED_DROP_TARGET,
             checkpoints=both, interval=drop_interval),
        dict(id="check.jacobian_symmetry", measure=f"||J - J^T|| / ||J|| at {at}",
             measured=fig3.asymmetry, checkpoints=fig3_only)
    ]
    for k, ours, paper_value, value, _ in eigenvalue_rows(FIG3_LAMBDAS, fig3.eigvals):
        rows.append(
            dict(id=f"Fig3.lambda_{k}", measure=f"lambda_k at {at}, our k={ours} of d={d}",
                 paper=paper_value, measured=value, checkpoints=fig3_only))
    return rows + basis_rows(fig3, model)


def basis_rows(fig3: jm.JacobianAnalysis | None, model: str, suffix: str = "", d: int = 0,
               missing: str | None = None) -> list[dict]:
    """Fig 3's rows on how the spectrum falls and what the eigenvectors are (the eigenvalue
    ratio, frequency growth, edge share), ids ending in `suffix`; with fig3 None (the model is
    not shipped) the same rows of dimension `d`, declared missing for the reason `missing`."""
    d = fig3.eigvals.numel() if fig3 is not None else d
    late, at = late_ks(d), f"sigma={FIG3_SIGMA:g}" if fig3 is None else f"sigma={fig3.sigma:g}"
    paper_ratio = max(FIG3_LAMBDAS.items())[1] / min(FIG3_LAMBDAS.items())[1]
    specs = [
        ("Fig3.lambda_ratio", "lambda at the paper's k=245 over lambda at its k=5, both rescaled "
         f"to d={d}, {at}", lambda: lambda_ratio(fig3.eigvals)[0], round(paper_ratio, 3)),
        ("Fig3.frequency_growth", "mean spatial frequency (power-weighted |omega| of the DFT) of "
         f"e_k, {late.start} <= k < {late.stop} (d/4 to d/2), over that of k < {len(EARLY_KS)}, "
         f"{at}", lambda: frequency_growth(fig3), None),
        ("Fig3.edge_share_top20", "mean share of ||e_k||^2 on the face's top-20% gradient pixels "
         f"(chance 0.2), k < {len(EARLY_KS)}, {at}",
         lambda: edge_energy_share(fig3, EARLY_KS).mean(), None),
    ]
    return [
        dict(
            id=id_ + suffix, measure=measure, paper=paper, checkpoints=[model],
            **(dict(measured=float(value())) if fig3 is not None else dict(
                measured=None, missing=missing))) for id_, measure, value, paper in specs
    ]


def size_analysis(profile: Profile, face: int = 0,
                  device: str = "cpu") -> tuple[str, jm.JacobianAnalysis | None]:
    """Fig 3 at the profile's second size: (model name, `jacobian.analyze` of its largest-N S1
    model, its longest run, at test face `face` and FIG3_SIGMA), the analysis None where the
    profile declares no model at that size."""
    ss = profile.second_size
    n = max(ss.s1_ns, default=profile.faces.largest_n)
    name = FACES.name(profile, n, size=ss.size, steps=ss.longest_steps(n))
    if not ss.s1_ns:
        return name, None
    pool = data.face_pool("celeba", ss.size, substitute_ok=profile.train_missing)
    net = zoo.load(name, profile, device=device)
    return name, jm.analyze(net.model, pool.test(profile.n_test)[face], FIG3_SIGMA, seed=0)


def size_measurements(profile: Profile, name: str, fig3: jm.JacobianAnalysis | None) -> list[dict]:
    """`basis_rows` of the second size's analysis (`size_analysis`), ids ending in _<size>px."""
    ss = profile.second_size
    n = max(ss.s1_ns, default=profile.faces.largest_n)
    return basis_rows(fig3, name, f"_{ss.size}px", d=ss.size**2,
                      missing=not_shipped(profile, ss.size, n))


# ------------------------------------------------------------------ Fig 3 at two sizes


def fig3_indices(d: int) -> tuple[dict, list[int]]:
    """The paper's Fig 3 indices rescaled to d ({paper k: our k}), and as many more spread from
    k = 20 to the end, for the rows of `fig3_grid`."""
    mapping = index_map(FIG3_LAMBDAS, d)
    deep = np.unique(np.linspace(20, d - 1, len(mapping)).round().astype(int))
    return mapping, list(mapping.values()) + deep.tolist()


def fig3_grid(a: jm.JacobianAnalysis | None, missing: str = ""):
    """Fig 3's eigenvectors: top row at the paper's indices rescaled to d, bottom row further
    down the spectrum; with `a` None, a panel saying why (`missing`)."""
    if a is None:
        return notice(missing)
    mapping, ks = fig3_indices(len(a.eigvals))
    titles = [f"k={k}, λ={a.eigvals[k]:.2f}" for k in ks]
    return image_grid(unit_range(jm.oriented(a, ks)), titles=titles, ncols=len(mapping), vmin=-1,
                      vmax=1, row_labels=["paper's k,\nrescaled", "further\ndown"])


def plot_spectra_by_fraction(analyses: dict, axes) -> None:
    """Left: lambda_k against k/d for each labelled analysis (None: left out), with the paper's
    Fig 3 values at k/6400; right: |<x, e_k>| (running geometric mean) against k/d. On k/d
    analyses of different sizes and the paper's 80x80 face share one axis."""
    ax0, ax1 = axes
    for label, a in analyses.items():
        if a is None:
            continue
        frac = (np.arange(len(a.eigvals)) + 0.5) / len(a.eigvals)
        ax0.plot(frac, a.eigvals.numpy(), lw=1.2, label=label)
        ax1.semilogy(frac, running_geomean(a.coeffs.abs().numpy()), lw=1.2, label=label)
    ks = np.array(list(FIG3_LAMBDAS))
    ax0.plot((ks + 0.5) / PAPER_DIM, list(FIG3_LAMBDAS.values()), "k*", ms=6, label="paper, 80×80")
    ax0.axhline(0, color="k", lw=0.6)
    ax0.set_xlabel("k / d"), ax0.set_ylabel(r"$\lambda_k$")
    ax1.set_xlabel("k / d"), ax1.set_ylabel(r"$|\langle x, e_k\rangle|$ (running mean)")
    for ax in axes:
        ax.grid(alpha=0.3), ax.legend(fontsize=8)
