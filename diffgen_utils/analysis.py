"""Measurements: PSNR, similarities, nearest neighbours, slope fits, convergence of a run."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import mean_removed_unit
from .models import denoise, model_device


def psnr(clean: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image (images in [0, 1]): 10 log10(1 / MSE)."""
    mse = (clean - estimate).reshape(len(clean), -1).pow(2).mean(dim=1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-20))


def input_psnr(sigma: float | np.ndarray) -> np.ndarray:
    """PSNR of y = x + z with z ~ N(0, sigma^2 I): 10 log10(1 / sigma^2)."""
    return -20 * np.log10(np.asarray(sigma, dtype=float))


@torch.no_grad()
def psnr_per_image(estimate, images: torch.Tensor, sigmas, seed: int = 0, batch: int | None = None,
                   max_db: float | None = None) -> torch.Tensor:
    """PSNR of `estimate(y, sigma)` on each of `images` at each sigma, (len(sigmas), len(images)):
    y = x + sigma z with seeded z drawn `batch` images at a time (default: all at once). `max_db`
    caps each image's PSNR (a perfect recovery would otherwise count as 200 dB)."""
    images = images.cpu()
    batch = batch or len(images)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for sigma in np.asarray(sigmas, dtype=float):
        values = []
        for start in range(0, len(images), batch):
            x = images[start:start + batch]
            y = x + torch.randn(x.shape, generator=g) * sigma
            values.append(psnr(x, estimate(y, float(sigma)).cpu()))
        per_image = torch.cat(values)
        rows.append(per_image if max_db is None else per_image.clamp(max=max_db))
    return torch.stack(rows)


def image_means(per_image: torch.Tensor) -> np.ndarray:
    """The mean over the images of each row (sigma) of `psnr_per_image`: the PSNR curve."""
    return np.array([row.mean().item() for row in per_image])


def psnr_curve(estimate, images: torch.Tensor, sigmas, seed: int = 0, batch: int | None = None,
               max_db: float | None = None) -> np.ndarray:
    """Mean PSNR of `estimate(y, sigma)` on `images` at each sigma (`psnr_per_image`)."""
    return image_means(psnr_per_image(estimate, images, sigmas, seed, batch, max_db))


def evaluate_psnr_per_image(model: torch.nn.Module, images: torch.Tensor, sigmas, seed: int = 0,
                            batch: int = 256) -> torch.Tensor:
    """Output PSNR of a blind denoiser on each image at each sigma, (len(sigmas), len(images)),
    with fixed noise (seeded)."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        return psnr_per_image(lambda y, sigma: denoise(model, y.to(device)), images, sigmas,
                              seed=seed, batch=batch)
    finally:
        model.train(was_training)


def evaluate_psnr(model: torch.nn.Module, images: torch.Tensor, sigmas, seed: int = 0,
                  batch: int = 256) -> np.ndarray:
    """Mean output PSNR of a blind denoiser at each sigma, with fixed noise (seeded)."""
    return image_means(evaluate_psnr_per_image(model, images, sigmas, seed, batch))


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, mean_removed: bool = True) -> torch.Tensor:
    """Row-wise cosine of two equally long image batches (mean-removed by default)."""
    if mean_removed:
        return (mean_removed_unit(a) * mean_removed_unit(b)).sum(dim=1).float()
    fa, fb = a.reshape(len(a), -1).double(), b.reshape(len(b), -1).double()
    return (torch.nn.functional.cosine_similarity(fa, fb, dim=1)).float()


def nearest_neighbors(queries: torch.Tensor, pool: torch.Tensor, mean_removed: bool = True,
                      block: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """For each query, the index of the most similar pool image and that cosine similarity."""
    if mean_removed:
        q, p = mean_removed_unit(queries).float(), mean_removed_unit(pool).float()
    else:
        q = torch.nn.functional.normalize(queries.reshape(len(queries), -1).float(), dim=1)
        p = torch.nn.functional.normalize(pool.reshape(len(pool), -1).float(), dim=1)
    best = torch.full((len(q), ), -2.0)
    index = torch.zeros(len(q), dtype=torch.long)
    for start in range(0, len(p), block):
        sims = q @ p[start:start + block].T
        value, arg = sims.max(dim=1)
        better = value > best
        best[better], index[better] = value[better], arg[better] + start
    return index, best


def first_below(values, threshold: float) -> int | None:
    """Index of the first value below `threshold` (None if none is)."""
    below = np.flatnonzero(np.asarray(values) < threshold)
    return int(below[0]) if len(below) else None


# ------------------------------------------------------------------ bootstrap intervals

BOOTSTRAP_RESAMPLES = 1000  # resamples behind each interval
BOOTSTRAP_SEED = 0  # fixed: the same values always give the same interval
INTERVAL_QUANTILES = (0.05, 0.95)  # the interval's ends: a 90% percentile interval


def bootstrap_interval(statistic, *samples, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """The INTERVAL_QUANTILES of `statistic(*samples)` over bootstrap resamples: each sample
    (an array (..., n), its last axis running over the images or seeds the statistic averages)
    is drawn again with replacement along that axis, independently of the other samples
    (stack paired values into one sample). `statistic` is the function the measured value
    uses (a median, a mean, a slope fitted to the mean curve, ...)."""
    rng = np.random.default_rng(seed)
    samples = [np.asarray(s) for s in samples]
    values = [
        statistic(*(s[..., rng.integers(0, s.shape[-1], s.shape[-1])] for s in samples))
        for _ in range(resamples)
    ]
    lo, hi = np.quantile(np.asarray(values, dtype=float), INTERVAL_QUANTILES)
    return float(lo), float(hi)


def median(values) -> float:
    """The median as torch computes it (the lower middle value of an even count, over all
    entries), the statistic of the rows that report a median."""
    return torch.as_tensor(np.asarray(values)).median().item()


def fit_slope(x: np.ndarray, y: np.ndarray, x_range: tuple[float, float] | None = None):
    """Least-squares line y = slope * x + intercept over x in x_range (inclusive)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.ones_like(x, bool) if x_range is None else (x >= x_range[0]) & (x <= x_range[1])
    if keep.sum() < 2:
        raise ValueError(f"need at least two points in {x_range} to fit a slope")
    slope, intercept = np.polyfit(x[keep], y[keep], 1)
    return float(slope), float(intercept)


def add_noise(x: torch.Tensor, sigma, seed: int = 0) -> torch.Tensor:
    """y = x + sigma * z with a seeded generator; sigma a float or one value per image."""
    g = torch.Generator().manual_seed(seed)
    sigma = torch.as_tensor(sigma, dtype=x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
    return x + sigma * torch.randn(x.shape, generator=g, dtype=x.dtype)


@torch.no_grad()
def residual_noise_level(model: torch.nn.Module, y: torch.Tensor) -> torch.Tensor:
    """sigma estimated from the residual, ||f(y) - y|| / sqrt(d): what Algorithm 1 uses."""
    residual = denoise(model, y) - y
    return residual.flatten(1).norm(dim=1) / residual[0].numel()**0.5


# ------------------------------------------------------------------ convergence of a training run

CONVERGED_GAIN_DB = 0.3  # most a converged model may gain at any claimed sigma over its 2nd half
MIN_HALFWAY_LR = 0.25  # lr at half-way over the peak: a plateau must not come from the schedule


@dataclass
class Convergence:
    """Did a run finish learning at the noise levels a claim uses? Compares the evaluation
    stored at half-way with the final one (train or test PSNR, each sigma)."""

    sigmas: np.ndarray
    halfway: np.ndarray  # PSNR at the half-way evaluation
    final: np.ndarray
    halfway_step: int
    steps: int
    halfway_lr_ratio: float  # lr used at half-way / peak lr

    @property
    def gain(self) -> np.ndarray:
        return self.final - self.halfway

    @property
    def converged(self) -> bool:
        return bool(
            np.all(self.gain < CONVERGED_GAIN_DB) and self.halfway_lr_ratio >= MIN_HALFWAY_LR)

    def summary(self) -> str:
        worst = int(np.argmax(self.gain))
        verdict = "converged" if self.converged else "NOT converged"
        return (f"{verdict}: largest gain over steps {self.halfway_step}-{self.steps} is "
                f"{self.gain[worst]:+.2f} dB at sigma = {self.sigmas[worst]:.3g} (limit "
                f"{CONVERGED_GAIN_DB} dB); lr at half-way {self.halfway_lr_ratio:.2f} of its peak "
                f"(limit {MIN_HALFWAY_LR})")


def evaluated_sigmas(history: list[dict], lo: float, hi: float) -> list[float]:
    """The noise levels in [lo, hi] at which a run was evaluated (its last evaluation's grid)."""
    return [s for s in history[-1]["sigmas"] if lo <= s <= hi]


def matching_sigmas(stored, wanted) -> list[int]:
    """Indices into `stored` of each of `wanted` (a clear error when one was not evaluated)."""
    stored = np.asarray(stored, dtype=float)
    index = []
    for s in wanted:
        hits = np.flatnonzero(np.isclose(stored, s, rtol=1e-6))
        if not len(hits):
            raise ValueError(f"sigma = {s:g} was not evaluated during training (evaluated: "
                             f"{np.round(stored, 4).tolist()}); retrain with it in the grid")
        index.append(int(hits[0]))
    return index


def convergence_at(net, sigma_range, split: str = "test") -> Convergence:
    """`convergence` of a trained model (a zoo model: .history, .config) at every noise level
    in `sigma_range` (lo, hi) it was evaluated at."""
    return convergence(net.history, net.config.lr, evaluated_sigmas(net.history, *sigma_range),
                       split)


def convergence(history: list[dict], peak_lr: float, sigmas, split: str = "test") -> Convergence:
    """The second-half gain of a checkpoint's `history` at `sigmas` (split "test" or "train":
    train PSNR for a model meant to memorize). Needs an evaluation at half-way or earlier."""
    steps = history[-1]["step"]
    before = [e for e in history if e["step"] <= steps / 2]
    if not before:
        raise ValueError(f"no evaluation at or before half-way (step {steps // 2}) in the history")
    half, last = before[-1], history[-1]
    idx = matching_sigmas(last["sigmas"], sigmas)
    key = f"{split}_psnr"
    return Convergence(np.asarray(sigmas, dtype=float),
                       np.asarray(half[key])[idx],
                       np.asarray(last[key])[idx], half["step"], steps, half["lr"] / peak_lr)
