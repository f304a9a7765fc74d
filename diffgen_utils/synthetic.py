"""Synthetic data sets of the C^alpha and low-dimensional-manifold chapters (Claims 3 and 4).

Every generator is seeded (no global RNG is touched), vectorized torch, and returns float32
images (N, 1, size, size) in [0, 1]:

    calpha(n, size, alpha, seed)          regular regions separated by a C^alpha contour (Alg. 2)
    disks(n, size, seed)                  one anti-aliased disk per image: a smooth 5-D manifold
    face_ray(face, n, seed)               positive rescalings s*x of one face: a 1-D ray
    sinusoid_cone(n, size, seed)          0.5 + a sin + b cos of one unit frequency: a 2-D disk

with the tangent spaces the chapters compare the denoiser's Jacobian with (`disk_tangent_space`,
`ray_tangent`, `cone_tangent`; rows are orthonormal vectors of R^(size*size)) and the optimal
PSNR slope of C^alpha images (`optimal_slope`).

Images are made in fixed chunks of CHUNK images, each chunk from its own generator seeded by
(seed, chunk index), so the first m images of a set of n > m are the set of m (a larger N
contains the smaller ones, as the face splits do) and memory stays bounded at 10^5 images.

`SyntheticPool` gives the zoo the same interface as a face pool (`split`, `test`): training
images from seed TRAIN_SEEDS[subset], test images from TEST_SEED, generated on demand.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

# Bump when a generator's output changes: the zoo's data fingerprint of a synthetic set is a hash
# of (this version, family, size, options, n, seed), not of the float images (FFTs differ in
# the last bits between CPUs, which must not make a shipped checkpoint look stale).
SYNTHETIC_VERSION = 1
CHUNK = 512  # images per seeded chunk
TRAIN_SEEDS = {"S1": 1, "S2": 3}  # disjoint training sets (the names only use S1)
TEST_SEED = 2
FAMILIES = ("calpha", "disks", "ray", "cone")  # TrainConfig.dataset names

# C^alpha contours: scaled so that the standard deviation of c(t) around the centre row is
# CONTOUR_STD * size (0.12: what the authors' unnormalised code gives at 80x80, 9-11 pixels for
# alpha = 1..5); an image whose contour would leave the central band
# [(0.5 - CONTOUR_HALF_RANGE) size, (0.5 + CONTOUR_HALF_RANGE) size] is shrunk towards the
# centre by one scalar factor (regularity unchanged), so both regions are present in every
# column.
CONTOUR_STD = 0.12
CONTOUR_HALF_RANGE = 0.4

# Disks: the indicator of the disk is replaced by sigmoid(EDGE_SHARPNESS * (r - distance)):
# slope 1 per pixel at the edge (the slope of the pixel-coverage ramp clamp(r - d + 1/2, 0, 1)),
# 10%-90% width 1.1 pixels; smooth in theta, so the 5-D manifold has a tangent space everywhere.
EDGE_SHARPNESS = 4.0
RADIUS_MARGIN = 3.0  # radius in [RADIUS_MARGIN, size/2 - RADIUS_MARGIN), as in the authors' code

RAY_SCALES = (0.05, 1.0)  # max(s*x) drawn uniformly in this range
CONE_AMPLITUDE, CONE_OFFSET = 0.5, 0.5  # 0.5 + r sin(2 pi j/size + phi), r in [0, 0.5]


def optimal_slope(alpha: float) -> float:
    """Optimal PSNR slope alpha / (alpha + 1) of denoising C^alpha images (Claim 3, Fig. 4).

    In a basis adapted to the geometry (bandlets, or the GAHB of a trained network) the sorted
    squared coefficients of a C^alpha image decay as <x, e_k>^2 ~ k^-(alpha+1). Oracle shrinkage
    lambda_k = <x,e_k>^2 / (<x,e_k>^2 + sigma^2) has an error ~ sum_k min(<x,e_k>^2, sigma^2): the
    k* ~ sigma^(-2/(alpha+1)) coefficients above the noise cost sigma^2 each, the tail below it
    sums to about the same, so MSE ~ k* sigma^2 = sigma^(2 alpha/(alpha+1)). With
    PSNR = -10 log10 MSE and input PSNR = -10 log10 sigma^2, output PSNR grows with input PSNR at
    the slope alpha/(alpha+1) (1/2 for alpha = 1, 4/5 for alpha = 4, -> 1 as alpha grows).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    return alpha / (alpha + 1)


# ---------------------------------------------------------------- seeding
def _chunk_generator(seed: int, chunk: int) -> torch.Generator:
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    state = np.random.SeedSequence([int(seed), int(chunk)]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


def _chunked(n: int, seed: int, make: Callable[[torch.Generator, int], tuple]) -> tuple:
    """Concatenate make(generator, CHUNK) over ceil(n/CHUNK) seeded chunks; cut to n."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    parts = [make(_chunk_generator(seed, k), CHUNK) for k in range(math.ceil(n / CHUNK))]
    return tuple(torch.cat(items)[:n] for items in zip(*parts))


# ---------------------------------------------------------------- C^alpha images
def _freq_magnitude(size: int) -> torch.Tensor:
    """|k| of the integer frequencies of torch.fft, with the zero frequency set to 1 (as in the
    authors' filters, whose DC gain equals that of the lowest frequency)."""
    k = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64).abs()
    k[0] = 1.0
    return k


def _weights_1d(size: int, power: float) -> torch.Tensor:
    return _freq_magnitude(size)**-power


def _weights_2d(size: int, power: float) -> torch.Tensor:
    k = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64)
    radius = (k[:, None]**2 + k[None, :]**2).sqrt()
    radius[0, 0] = 1.0
    return radius**-power


def _minmax(b: torch.Tensor) -> torch.Tensor:
    """Each image of (..., H, W) mapped affinely onto [0, 1]."""
    lo = b.amin(dim=(-2, -1), keepdim=True)
    hi = b.amax(dim=(-2, -1), keepdim=True)
    return (b - lo) / (hi - lo).clamp_min(1e-12)


def _box_blur_2x2(mask: torch.Tensor) -> torch.Tensor:
    """The authors' 2x2 box filter (reflect padding on top and left, same size out):
    out[i, j] = mean of mask[i-1:i+1, j-1:j+1], row/column -1 reflected to 1."""
    padded = F.pad(mask.unsqueeze(1), (1, 0, 1, 0), mode="reflect")
    return F.avg_pool2d(padded, kernel_size=2, stride=1).squeeze(1)


class CAlphaParts(NamedTuple):
    """Everything `calpha_parts` made; images = mask*background1 + (1-mask)*background2."""

    images: torch.Tensor  # (n, 1, size, size) float32 in [0, 1]
    contour: torch.Tensor  # (n, size) real-valued row of the contour in each column
    mask: torch.Tensor  # (n, 1, size, size): 1 below the contour (blurred for variant code)
    background1: torch.Tensor  # (n, 1, size, size) the region below the contour (row > c)
    background2: torch.Tensor  # (n, 1, size, size) the region above
    high_min: torch.Tensor  # (n,) u1: the bright background spans [u1, 1] (variant code)
    low_max: torch.Tensor  # (n,) u2: the dark background spans [0, u2] (variant code)
    swapped: torch.Tensor  # (n,) bool: the bright background is above the contour


def calpha_parts(n: int, size: int, alpha: float, seed: int, contour_alpha: float | None = None,
                 background_alpha: float | None = None, variant: str = "code") -> CAlphaParts:
    """C^alpha images with all their parts (contour, mask, backgrounds); see `calpha`."""
    if variant not in ("code", "paper"):
        raise ValueError(f"variant must be 'code' or 'paper', got {variant!r}")
    if size < 4:
        raise ValueError(f"size must be at least 4, got {size}")
    c_alpha = float(alpha if contour_alpha is None else contour_alpha)
    b_alpha = float(alpha if background_alpha is None else background_alpha)
    code = variant == "code"
    w1, w2 = _weights_1d(size, c_alpha), _weights_2d(size, b_alpha)
    half = size // 2 + 1  # the real FFT keeps frequencies 0..size/2 of the last axis
    noise_var = 1 / 3 if code else 1.0  # U[-1, 1] or N(0, 1)
    # standard deviation of ifft(fft(noise) * w1) at every t, exactly: sum_k noise_var w_k^2 / size
    # (w1 is even in k, so the filtered noise is real: irfft computes it)
    contour_sd = math.sqrt(noise_var * float((w1**2).sum()) / size)
    rows = torch.arange(size, dtype=torch.float64).view(1, size, 1)
    f64 = torch.float64

    def draw(g: torch.Generator, *shape) -> torch.Tensor:
        if code:
            return torch.rand(shape, generator=g, dtype=f64) * 2 - 1
        return torch.randn(shape, generator=g, dtype=f64)

    def make(g: torch.Generator, m: int) -> tuple:
        c = torch.fft.irfft(torch.fft.rfft(draw(g, m, size)) * w1[:half], n=size) / contour_sd
        dev = CONTOUR_STD * size * c
        shrink = (CONTOUR_HALF_RANGE * size / dev.abs().amax(dim=1, keepdim=True)).clamp(max=1)
        contour = size / 2 + dev * shrink
        spectrum = torch.fft.rfft2(draw(g, m, 2, size, size)) * w2[:, :half]
        b = _minmax(torch.fft.irfft2(spectrum, s=(size, size)))
        if code:
            u = torch.rand(m, 2, generator=g, dtype=f64)
            high_min, low_max = u[:, 0], u[:, 1]
            swapped = torch.rand(m, generator=g, dtype=f64) < 0.5
            bright = high_min.view(-1, 1, 1) + (1 - high_min.view(-1, 1, 1)) * b[:, 0]
            dark = low_max.view(-1, 1, 1) * b[:, 1]
            s = swapped.view(-1, 1, 1)
            b1, b2 = torch.where(s, dark, bright), torch.where(s, bright, dark)
            # authors: mask[0:round(c)] = 0, i.e. 1 on rows >= round(c), then the 2x2 box blur
            mask = _box_blur_2x2((rows >= torch.round(contour).unsqueeze(1)).to(f64))
        else:
            high_min, low_max = torch.zeros(m, dtype=f64), torch.ones(m, dtype=f64)
            swapped = torch.zeros(m, dtype=torch.bool)
            b1, b2 = b[:, 0], b[:, 1]
            mask = (rows > contour.unsqueeze(1)).to(f64)
        x = mask * b1 + (1 - mask) * b2
        x, mask, b1, b2 = (t.unsqueeze(1).float() for t in (x, mask, b1, b2))
        return (x.clamp_(0, 1), contour.float(), mask, b1, b2, high_min.float(), low_max.float(),
                swapped)

    return CAlphaParts(*_chunked(n, seed, make))


def calpha(n: int, size: int, alpha: float, seed: int, contour_alpha: float | None = None,
           background_alpha: float | None = None, variant: str = "code") -> torch.Tensor:
    """n C^alpha images (Algorithm 2): two regular backgrounds separated by a C^alpha contour.

    - contour c(t), t = column: 1-D white noise filtered in Fourier by |k|^-contour_alpha (the
      zero frequency gets the gain of |k| = 1, as in the authors' filter), normalised to unit
      standard deviation (exact, from the filter), then placed at
      size/2 + CONTOUR_STD * size * c(t); a contour that would leave the band
      size/2 +- CONTOUR_HALF_RANGE * size is shrunk towards size/2 by a scalar (this keeps its
      regularity and leaves both regions in every column).
    - backgrounds B1, B2: 2-D white noise filtered by |k|^-background_alpha (radial |k|), each
      mapped onto [0, 1]. `alpha` is the default of both regularities; Figs 16-18 use contour
      1.5 / 2 / 4 with background 8.
    - x = M * B1 + (1 - M) * B2, M = 1 below the contour (row > c).

    variant "code" (the authors' generate_c_alpha_dataset.py, used by default): noise U[-1, 1];
    the contour rounded to whole rows, M = 1{row >= round(c)} blurred by their 2x2 box filter;
    B1 rescaled to [u1, 1] and B2 to [0, u2] with u1, u2 ~ U(0, 1) independent (their
    torch.rand() calls), the roles of B1 and B2 swapped with probability 1/2. The bright
    region's mean u1 + (1 - u1) m1 exceeds the dark one's u2 m2 (m = the mean of a background on
    [0, 1], about 1/2) by 1/2 on average and in 99.8% of images, so the contour is an edge, of
    random contrast; the ranges overlap when u1 < u2 and the edge can then be faint.
    variant "paper": Gaussian noise (PAPER.md's summary of Algorithm 2 says uniform noise; the
    law of the noise does not change the regularity), no rescaling beyond [0, 1], sharp mask
    M = 1{row > c} with the real-valued contour.

    The images are periodic (FFT) horizontally and, for the backgrounds, vertically.
    """
    return calpha_parts(n, size, alpha, seed, contour_alpha, background_alpha, variant).images


# ---------------------------------------------------------------- disks
def _disk_parts(theta: torch.Tensor, size: int):
    theta = torch.as_tensor(theta)
    if not theta.is_floating_point():
        theta = theta.double()
    cx, cy, r, fg, bg = (t[..., None, None] for t in theta.unbind(-1))
    p = torch.arange(size, dtype=theta.dtype, device=theta.device) + 0.5
    dx, dy = p.view(1, -1) - cx, p.view(-1, 1) - cy  # column and row offsets from the centre
    dist = (dx**2 + dy**2 + 1e-12).sqrt()
    inside = torch.sigmoid(EDGE_SHARPNESS * (r - dist))
    return dx, dy, dist, inside, fg, bg


def disk_image(theta: torch.Tensor, size: int) -> torch.Tensor:
    """Differentiable image of disks theta = (cx, cy, radius, foreground, background), (..., 5).

    Pixel (row i, column j) has its centre at (x, y) = (j + 1/2, i + 1/2): the image covers
    [0, size]^2, cx is horizontal, cy vertical. x = bg + (fg - bg) * sigmoid(EDGE_SHARPNESS *
    (r - |p - c|)). Returns (..., 1, size, size) in theta's dtype; plain torch ops, so autograd
    differentiates it in theta.
    """
    _, _, _, inside, fg, bg = _disk_parts(theta, size)
    return (bg + (fg - bg) * inside).unsqueeze(-3)


def disks(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n disk images (N, 1, size, size) float32 and their parameters theta (N, 5) float32.

    theta = (cx, cy, radius, foreground, background): radius ~ U[3, size/2 - 3), centre
    ~ U[r, size - r]^2 so that the disk lies in the image, intensities ~ U(0, 1).
    """
    if size / 2 - RADIUS_MARGIN <= RADIUS_MARGIN:
        raise ValueError(f"disks need size > {4 * RADIUS_MARGIN:g}, got {size}")

    def make(g: torch.Generator, m: int) -> tuple:
        u = torch.rand(m, 5, generator=g, dtype=torch.float64)
        r = RADIUS_MARGIN + (size / 2 - 2 * RADIUS_MARGIN) * u[:, 2]
        cx = r + (size - 2 * r) * u[:, 0]
        cy = r + (size - 2 * r) * u[:, 1]
        theta = torch.stack([cx, cy, r, u[:, 3], u[:, 4]], dim=1)
        return disk_image(theta, size).float(), theta.float()

    return _chunked(n, seed, make)


def disk_jacobian(theta: torch.Tensor, size: int) -> torch.Tensor:
    """d x / d theta in closed form (checked against autograd in the tests): (5, size*size) for
    theta (5,), (n, 5, size*size) for (n, 5); float64.

    With m = sigmoid(k (r - d)), m' = m (1 - m), A = fg - bg: dx/dcx = A k m' (j + 1/2 - cx)/d,
    dx/dcy = A k m' (i + 1/2 - cy)/d, dx/dr = A k m', dx/dfg = m, dx/dbg = 1 - m. (Closed form
    rather than torch.func: the first functorch call costs seconds.)
    """
    dx, dy, dist, m, fg, bg = _disk_parts(torch.as_tensor(theta, dtype=torch.float64), size)
    edge = (fg - bg) * EDGE_SHARPNESS * m * (1 - m)
    rows = [edge * dx / dist, edge * dy / dist, edge.expand_as(m), m, 1 - m]
    return torch.stack([t.flatten(-2) for t in rows], dim=-2)


def disk_tangent_space(theta: torch.Tensor, size: int) -> torch.Tensor:
    """Orthonormal basis of the tangent space of the disk manifold at theta: (5, size*size)
    float32 (or (n, 5, size*size)). Row k spans d x/d theta_0..k (QR of the Jacobian, in the
    order cx, cy, r, fg, bg). Degenerate when fg == bg (the disk is invisible)."""
    q, _ = torch.linalg.qr(disk_jacobian(theta, size).transpose(-1, -2))
    return q.transpose(-1, -2).float()


# ---------------------------------------------------------------- face ray
def face_ray(face: torch.Tensor, n: int, seed: int,
             scales: tuple[float, float] = RAY_SCALES) -> tuple[torch.Tensor, torch.Tensor]:
    """n rescalings s*x of one image x (any shape with size*size pixels, >= 0): a 1-D manifold.

    s = U[low, high] / max(x), so that max(s*x) is uniform in [low, high] and every pixel stays
    in [0, 1]. Returns images (n, 1, size, size) float32 (exactly s * x) and s (n,) float32.
    """
    x = torch.as_tensor(face).detach().float().cpu()
    size = math.isqrt(x.numel())
    if size * size != x.numel():
        raise ValueError(f"face must have size*size pixels, got shape {tuple(x.shape)}")
    x = x.reshape(1, 1, size, size)
    peak = float(x.max())
    if peak <= 0 or float(x.min()) < 0:
        raise ValueError("face must be non-negative and not all zero")
    low, high = scales
    if not 0 < low <= high <= 1:
        raise ValueError(f"scales must satisfy 0 < low <= high <= 1, got {scales}")

    def make(g: torch.Generator, m: int) -> tuple:
        u = torch.rand(m, generator=g, dtype=torch.float64)
        return (((low + (high - low) * u) / peak).float(), )

    (s, ) = _chunked(n, seed, make)
    s = torch.where(s * peak > high, torch.nextafter(s, torch.zeros_like(s)), s)
    return s.view(-1, 1, 1, 1) * x, s


def ray_tangent(face: torch.Tensor) -> torch.Tensor:
    """The ray's tangent direction x / ||x||, as a (1, size*size) float32 basis."""
    x = torch.as_tensor(face).detach().double().reshape(1, -1)
    return (x / x.norm()).float()


# ---------------------------------------------------------------- sinusoid cone
def _sin_cos(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sin and cos of one horizontal cycle across the image, (size, size) float64."""
    phase = 2 * math.pi * torch.arange(size, dtype=torch.float64) / size
    return phase.sin().expand(size, size), phase.cos().expand(size, size)


def sinusoid_cone(n: int, size: int, seed: int, amplitude: float = CONE_AMPLITUDE,
                  offset: float = CONE_OFFSET) -> tuple[torch.Tensor, torch.Tensor]:
    """n unit-frequency sinusoids offset + r sin(2 pi j / size + phi) (j = column), with
    r ~ U[0, amplitude], phi ~ U[0, 2 pi). Returns images (n, 1, size, size) float32 and their
    coordinates (a, b) = (r cos phi, r sin phi) (n, 2), so x = offset + a sin + b cos.

    {a sin + b cos : a^2 + b^2 <= amplitude^2} is a 2-D cone of the plane span{sin, cos} (closed
    under positive scaling up to the amplitude bound). The constant offset (0.5) keeps pixels
    in [0, 1]; with it the manifold is an affine 2-D disk offset*1 + cone, whose tangent space is
    still span{sin, cos} (`cone_tangent`). offset=0 gives the cone itself (values in [-A, A]).
    """
    if size < 3:
        raise ValueError(f"size must be at least 3, got {size}")
    sin, cos = _sin_cos(size)

    def make(g: torch.Generator, m: int) -> tuple:
        u = torch.rand(m, 2, generator=g, dtype=torch.float64)
        r, phi = amplitude * u[:, 0], 2 * math.pi * u[:, 1]
        ab = torch.stack([r * phi.cos(), r * phi.sin()], dim=1)
        x = offset + ab[:, 0, None, None] * sin + ab[:, 1, None, None] * cos
        return x.unsqueeze(1).float(), ab.float()

    return _chunked(n, seed, make)


def cone_tangent(size: int) -> torch.Tensor:
    """Orthonormal basis (2, size*size) float32 of span{sin, cos} (exactly orthogonal on the
    periodic grid)."""
    sin, cos = _sin_cos(size)
    basis = torch.stack([sin.reshape(-1), cos.reshape(-1)])
    return (basis / basis.norm(dim=1, keepdim=True)).float()


# ---------------------------------------------------------------- pools for the zoo
def data_options(dataset: str, alpha: float | None = None, beta: float | None = None) -> tuple:
    """The canonical TrainConfig.data_options of a synthetic family (sorted (key, value) pairs).

    calpha: alpha = contour regularity, beta = background regularity (default alpha), variant;
    ray: the range of max(s*x); cone: amplitude bound and offset; disks: none.
    """
    if dataset == "calpha":
        if alpha is None:
            raise ValueError("calpha needs alpha")
        beta = alpha if beta is None else beta
        return (("alpha", float(alpha)), ("beta", float(beta)), ("variant", "code"))
    if dataset == "disks":
        return ()
    if dataset == "ray":
        return (("scale_max", RAY_SCALES[1]), ("scale_min", RAY_SCALES[0]))
    if dataset == "cone":
        return (("amplitude", CONE_AMPLITUDE), ("offset", CONE_OFFSET))
    raise ValueError(f"unknown synthetic family {dataset!r}; one of {', '.join(FAMILIES)}")


@dataclass
class SyntheticPool:
    """A synthetic data set with a face pool's interface (`split`, `test`, `source`,
    `substitute`); images are generated on demand from seeds and kept in memory."""

    name: str  # the family: one of FAMILIES
    size: int
    options: dict
    source: str
    face: torch.Tensor | None = None  # the ray's image
    face_id: str = ""  # where that face came from (enters the fingerprint)
    substitute: bool = False  # True when the ray's face is the synthetic stand-in
    _cache: dict = field(default_factory=dict, repr=False)

    def images(self, n: int, seed: int) -> torch.Tensor:
        key = (n, seed)
        if key not in self._cache:
            o = self.options
            if self.name == "calpha":
                x = calpha(n, self.size, o["alpha"], seed, background_alpha=o["beta"],
                           variant=o.get("variant", "code"))
            elif self.name == "disks":
                x = disks(n, self.size, seed)[0]
            elif self.name == "ray":
                x = face_ray(self.face, n, seed, (o["scale_min"], o["scale_max"]))[0]
            elif self.name == "cone":
                x = sinusoid_cone(n, self.size, seed, o["amplitude"], o["offset"])[0]
            else:
                raise ValueError(f"unknown synthetic family {self.name!r}")
            self._cache[key] = x
        return self._cache[key]

    def split(self, n: int, subset: str, n_test: int = 0) -> torch.Tensor:
        """n training images of subset S1 or S2 (disjoint seeds); n_test is not needed here."""
        if subset not in TRAIN_SEEDS:
            raise ValueError(f"subset must be 'S1' or 'S2', got {subset!r}")
        return self.images(n, TRAIN_SEEDS[subset])

    def test(self, n_test: int) -> torch.Tensor:
        return self.images(n_test, TEST_SEED)

    def fingerprint(self, n: int, subset: str) -> str:
        """Hash of what determines the training images (not of their float bytes)."""
        recipe = [
            SYNTHETIC_VERSION, self.name, self.size,
            sorted(self.options.items()), n, TRAIN_SEEDS[subset], self.face_id
        ]
        blob = json.dumps(recipe, sort_keys=True).encode()
        return f"synthetic-v{SYNTHETIC_VERSION}-" + hashlib.sha256(blob).hexdigest()[:16]


def pool(dataset: str, size: int, options: dict | tuple = (),
         substitute_ok: bool = True) -> SyntheticPool:
    """The pool of a synthetic family at `size` with its data_options.

    The ray's face is the first test face of the CelebA pool at `size` (data.face_pool) when the
    data exist, else the first image of the synthetic substitute (the pool then says
    substitute=True); without data and with substitute_ok=False, data.DataError.
    """
    options = dict(options)
    if dataset not in FAMILIES:
        raise ValueError(f"unknown synthetic family {dataset!r}; one of {', '.join(FAMILIES)}")
    if dataset != "ray":
        return SyntheticPool(dataset, size, options, f"synthetic {dataset} (generated from seeds)")
    from . import data

    faces = data.face_pool("celeba", size, substitute_ok=substitute_ok)
    face = faces.test(1)[0].clone()
    return SyntheticPool("ray", size, options, f"rescalings of {faces.ids[0]} ({faces.source})",
                         face=face, face_id=f"{faces.name}/{faces.ids[0]}",
                         substitute=faces.substitute)
