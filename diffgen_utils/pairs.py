"""Two denoisers trained on disjoint sets, compared as in the paper's Figs 1-2: the train - test
PSNR gap of each, and the samples both draw from the same seeds.

    s1, s2 = pair_samples(model_s1, model_s2, seeds, shape)       # same seeds: same y0 and z_t
    stats = similarity_stats(s1.images, s2.images, train_s1, train_s2)
    gap = psnr_gap(model, train_s1, test, config.EVAL_SIGMAS, n_eval=256)

Every similarity is the mean-removed cosine (`data.mean_removed_unit`), the measure the pool's
de-duplication uses too. Nothing here reads files: models and images are passed in, so every
function runs on tiny toy inputs in the tests. Chapters 02 and 03 build on it.
"""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from . import analysis, sampling
from .data import mean_removed_unit
from .models import model_device
from .plotting import psnr_axes

# The noise levels Algorithm 1 visits (sigma_final to sigma_0), where samples are made: the range
# at which a model behind a sample measure must have finished training.
SAMPLER_RANGE = (sampling.SamplerSettings().sigma_final, sampling.SamplerSettings().sigma0)
MEMORIZING_N = 10  # models of N up to this are meant to memorize: judged on training PSNR


def judged_on(net) -> str:
    """Which PSNR shows whether a face model finished training: "train" for a model meant to
    memorize (N <= MEMORIZING_N), "test" for the others (for plotting.convergence_table)."""
    return "train" if net.config.n_train <= MEMORIZING_N else "test"


def convergence_summary(nets, sigma_range) -> dict:
    """How far a chapter's face models were from finishing (`analysis.convergence_at`, each on
    `judged_on`'s split): for the memorizing ones, the range of their largest gains; for the
    others, how many meet the rule and their largest gain; for all, how many meet it."""
    conv = {
        net.name: (net, analysis.convergence_at(net, sigma_range, judged_on(net)))
        for net in nets
    }
    memo = [c.gain.max() for net, c in conv.values() if judged_on(net) == "train"]
    wide = [c for net, c in conv.values() if judged_on(net) == "test"]
    return {
        "memo_lo": float(min(memo)) if memo else None, "memo_hi":
        float(max(memo)) if memo else None, "wide_ok": sum(c.converged for c in wide), "wide_n":
        len(wide), "wide_max": float(max(c.gain.max() for c in wide)) if wide else None, "all_ok":
        sum(c.converged for _, c in conv.values()), "all_n": len(conv), "all_max":
        float(max(c.gain.max() for _, c in conv.values())) if conv else None
    }


PAIR_ROWS = ("nearest S1", "S1 sample", "S2 sample", "nearest S2")  # rows of Comparison.columns


# ---------------------------------------------------------------- PSNR: train versus test
def eval_images(images: torch.Tensor, n: int) -> torch.Tensor:
    """The first n images, cycling through them again when there are fewer (as training does)."""
    return images[torch.arange(n) % len(images)]


def mean_gap(train: np.ndarray, test: np.ndarray) -> float:
    """Train minus test output PSNR (dB), averaged over the noise levels."""
    return float(np.mean(train - test))


@dataclass
class PsnrGap:
    sigmas: np.ndarray
    train: np.ndarray  # mean output PSNR on training images, per sigma
    test: np.ndarray  # the same on held-out test images
    # (sigmas, images): each image's PSNR, where measured here (a stored evaluation has none)
    train_each: np.ndarray | None = None
    test_each: np.ndarray | None = None

    @classmethod
    def from_history(cls, entry: dict) -> "PsnrGap":
        """The evaluation a checkpoint stored when training ended (`net.history[-1]`): the
        protocol of `psnr_gap` with n_eval training and test images and seeds (1, 2)."""
        return cls(np.asarray(entry["sigmas"], float), np.asarray(entry["train_psnr"], float),
                   np.asarray(entry["test_psnr"], float))

    @property
    def input_psnr(self) -> np.ndarray:
        return analysis.input_psnr(self.sigmas)

    @property
    def gap(self) -> float:
        """Train minus test output PSNR (dB), averaged over the noise levels."""
        return mean_gap(self.train, self.test)

    def gap_interval(self) -> tuple[float, float] | None:
        """Bootstrap interval of `gap` over the training and the test images (drawn apart);
        None without per-image values."""
        if self.train_each is None or self.test_each is None:
            return None
        return analysis.bootstrap_interval(lambda tr, te: mean_gap(tr.mean(-1), te.mean(-1)),
                                           self.train_each, self.test_each)


def psnr_gap(model: torch.nn.Module, train: torch.Tensor, test: torch.Tensor, sigmas,
             n_eval: int | None = None, seeds=(1, 2)) -> PsnrGap:
    """Output PSNR of `model` on its training images and on test images at each sigma.

    With `n_eval`, train = the first n_eval training images (repeated when N is smaller) and
    test = the first n_eval test images. The default noise seeds (1 for train, 2 for test) are
    the ones training used for its own evaluations, so the numbers match the checkpoint's.
    """
    if n_eval is not None:
        train, test = eval_images(train, n_eval), test[:n_eval]
    device = model_device(model)
    sigmas = np.asarray(sigmas, dtype=float)
    each = [
        analysis.evaluate_psnr_per_image(model, x.to(device), sigmas, seed=seed)
        for x, seed in ((train, seeds[0]), (test, seeds[1]))
    ]
    return PsnrGap(sigmas, *(analysis.image_means(e) for e in each),
                   *(e.double().numpy() for e in each))


# ---------------------------------------------------------------- paired samples, similarities
def pair_samples(model_s1: torch.nn.Module, model_s2: torch.nn.Module, seeds, shape,
                 settings: sampling.SamplerSettings | None = None, parallel: bool = True,
                 **kwargs):
    """Samples of both models from the same seeds: the same initial noise y0 and the same
    injected noise z_t at every step. Returns (samples of model_s1, samples of model_s2).

    `parallel` runs the two samplers side by side in two threads with one torch thread each
    (on CPU): the small convolutions of these networks scale better that way than with two
    torch threads per model. The samples are the same either way (per-seed generators).
    """
    settings = settings or sampling.SamplerSettings()
    seeds = [int(s) for s in seeds]

    def run(model):
        return sampling.sample(model, seeds, shape=shape, settings=settings, **kwargs)

    on_cpu = all(model_device(m).type == "cpu" for m in (model_s1, model_s2))
    if not (parallel and on_cpu):
        return run(model_s1), run(model_s2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.submit(run, model_s1), pool.submit(run, model_s2)
            return first.result(), second.result()
    finally:
        torch.set_num_threads(threads)


def seed_similarities(images: torch.Tensor) -> torch.Tensor:
    """Mean-removed cosine between the images of every pair of distinct seeds (i < j)."""
    unit = mean_removed_unit(images).float()
    sims = unit @ unit.T
    i, j = torch.triu_indices(len(unit), len(unit), offset=1)
    return sims[i, j]


@dataclass
class PairStats:
    """Per seed (index k): similarities of the S1 and S2 samples drawn from seed k."""

    pair: torch.Tensor  # S1 sample vs S2 sample
    near1: torch.Tensor  # S1 sample vs its nearest S1 training image
    near1_index: torch.Tensor  # index of that image in the S1 training set
    near2: torch.Tensor
    near2_index: torch.Tensor
    next1: torch.Tensor  # S1 sample of seed k vs S1 sample of seed k+1 (cyclic)
    next2: torch.Tensor
    seeds1: torch.Tensor  # all pairs of distinct seeds, S1 model (i < j)
    seeds2: torch.Tensor

    def __len__(self) -> int:
        return len(self.pair)

    @property
    def near(self) -> torch.Tensor:
        """Sample vs nearest training image, both models pooled."""
        return torch.cat([self.near1, self.near2])

    @property
    def seeds(self) -> torch.Tensor:
        """Samples of distinct seeds of one model, both models pooled."""
        return torch.cat([self.seeds1, self.seeds2])

    def medians(self) -> dict:
        return {
            "S1 vs S2 sample": self.pair.median().item(), "sample vs nearest training image":
            self.near.median().item(), "samples of distinct seeds": self.seeds.median().item()
        }


def similarity_stats(samples1: torch.Tensor, samples2: torch.Tensor, train1: torch.Tensor,
                     train2: torch.Tensor) -> PairStats:
    """Similarities of paired samples (row k of samples1 and samples2 share a seed)."""
    if samples1.shape != samples2.shape:
        raise ValueError(f"paired samples differ in shape: {tuple(samples1.shape)} vs "
                         f"{tuple(samples2.shape)}")
    idx1, near1 = analysis.nearest_neighbors(samples1, train1)
    idx2, near2 = analysis.nearest_neighbors(samples2, train2)
    roll = lambda x: torch.roll(x, -1, dims=0)  # noqa: E731
    return PairStats(pair=analysis.cosine_similarity(samples1, samples2), near1=near1,
                     near1_index=idx1, near2=near2, near2_index=idx2,
                     next1=analysis.cosine_similarity(samples1, roll(samples1)),
                     next2=analysis.cosine_similarity(samples2, roll(samples2)),
                     seeds1=seed_similarities(samples1), seeds2=seed_similarities(samples2))


@dataclass
class Comparison:
    """The S1 and S2 models of one N sampled from the same seeds, with their training sets."""

    samples1: sampling.Samples
    samples2: sampling.Samples
    train1: torch.Tensor
    train2: torch.Tensor
    stats: PairStats

    def four(self, k: int) -> torch.Tensor:
        return four_images(k, self.samples1.images, self.samples2.images, self.train1, self.train2,
                           self.stats)

    def titles(self, k: int) -> list[str]:
        return four_titles(k, self.stats)

    def png(self, k: int) -> bytes:
        """Seed k's four images as one PNG row (for the explorer)."""
        titles = self.titles(k)
        titles[1] += f"\nseed {self.samples1.seeds[k]}"
        return row_png(self.four(k), titles)

    def columns(self, count: int) -> tuple[torch.Tensor, list[str]]:
        """Figure 7's layout for seeds 0..count-1, one seed per column: rows PAIR_ROWS, titled
        with the cosines (to the nearest training face; of the pair). Returns (images, titles)
        in row order, for `plotting.image_grid(images, titles=titles, ncols=count, ...)`."""
        images = torch.stack([self.four(k) for k in range(count)], dim=1)
        s = self.stats
        titles = ([f"cos {s.near1[k]:.2f}" for k in range(count)] + [""] * count +
                  [f"pair {s.pair[k]:.2f}"
                   for k in range(count)] + [f"cos {s.near2[k]:.2f}" for k in range(count)])
        return images.reshape(-1, *images.shape[2:]), titles

    def brightness(self) -> dict:
        """Medians of the pixel mean and standard deviation (contrast) of the samples of both
        models and of the images of both training sets."""
        samples = torch.cat([self.samples1.images, self.samples2.images])
        train = torch.cat([self.train1, self.train2])
        mean = lambda x: x.mean(dim=(1, 2, 3)).median().item()  # noqa: E731
        std = lambda x: x.std(dim=(1, 2, 3)).median().item()  # noqa: E731
        return {
            "sample mean": mean(samples), "train mean": mean(train), "sample std": std(samples),
            "train std": std(train)
        }

    @property
    def converged(self) -> float:
        """Fraction of the samples of both models that reached sigma_final."""
        return torch.cat([self.samples1.converged, self.samples2.converged]).float().mean().item()


def compare(model1, model2, train1: torch.Tensor, train2: torch.Tensor, seeds, shape,
            settings: sampling.SamplerSettings | None = None, **kwargs) -> Comparison:
    """`pair_samples` then `similarity_stats`, kept together."""
    s1, s2 = pair_samples(model1, model2, seeds, shape, settings, **kwargs)
    return Comparison(s1, s2, train1, train2, similarity_stats(s1.images, s2.images, train1,
                                                               train2))


def pair_matrix(similarities, n: int) -> np.ndarray:
    """The (n, n) matrix of the i < j similarities of n seeds (`seed_similarities`), symmetric,
    NaN on the diagonal."""
    m = np.full((n, n), np.nan)
    i, j = np.triu_indices(n, 1)  # the order of torch.triu_indices
    m[i, j] = m[j, i] = np.asarray(similarities, dtype=float)
    return m


def distinct_seed_median(matrices, picks) -> float:
    """The median similarity over every pair of the seeds `picks` (indices, repeats allowed)
    in each of `matrices` (`pair_matrix`), pooled; a seed drawn twice is not paired with itself.
    With picks = all seeds it is `PairStats.seeds`'s median."""
    i, j = np.triu_indices(len(picks), 1)
    values = np.concatenate([m[picks[i], picks[j]] for m in matrices])
    return analysis.median(values[~np.isnan(values)])


# The measures of the chapter's rows: measured value, bootstrap interval over the images or
# seeds it averages, and |S1 - S2| where the measure exists for each model of the pair.
def gap_measures(gap: PsnrGap, s2_gap: float | None = None) -> dict:
    """The S1 model's train - test gap, its interval over the images, and its distance from the
    S2 model's gap `s2_gap`."""
    return dict(measured=gap.gap, interval=gap.gap_interval(),
                spread=None if s2_gap is None else abs(gap.gap - s2_gap))


def pair_measures(stats: PairStats) -> dict:
    """Median cos(S1 sample, S2 sample) over the seeds: measured on the pair, so no spread."""
    return dict(measured=stats.pair.median().item(),
                interval=analysis.bootstrap_interval(analysis.median, stats.pair))


def nearest_measures(stats: PairStats) -> dict:
    """Median cos(sample, nearest training image), both models pooled; the seeds resampled
    with their two samples."""
    return dict(
        measured=stats.near.median().item(),
        interval=analysis.bootstrap_interval(analysis.median,
                                             torch.stack([stats.near1, stats.near2])),
        spread=abs(stats.near1.median().item() - stats.near2.median().item()))


def seed_measures(stats: PairStats) -> dict:
    """Median cos between samples of distinct seeds, both models pooled; the seeds resampled."""
    matrices = [pair_matrix(s, len(stats)) for s in (stats.seeds1, stats.seeds2)]
    return dict(
        measured=stats.seeds.median().item(),
        interval=analysis.bootstrap_interval(lambda picks: distinct_seed_median(matrices, picks),
                                             np.arange(len(stats))),
        spread=abs(stats.seeds1.median().item() - stats.seeds2.median().item()))


def four_images(k: int, samples1, samples2, train1, train2, stats: PairStats) -> torch.Tensor:
    """Seed k as (4, 1, H, W): nearest S1 training image, S1 sample, S2 sample, nearest S2 one."""
    return torch.stack(
        [train1[stats.near1_index[k]], samples1[k], samples2[k],
         train2[stats.near2_index[k]]]).clamp(0, 1)


def four_titles(k: int, stats: PairStats) -> list[str]:
    return [
        f"nearest S1 image\ncos {stats.near1[k]:.2f}", "S1 sample",
        f"S2 sample\ncos(S1,S2) {stats.pair[k]:.2f}", f"nearest S2 image\ncos {stats.near2[k]:.2f}"
    ]


# ---------------------------------------------------------------- tables and figures
def key_label(key) -> str:
    """A curve's legend: "N=100" for a number N, else the key itself ("FER2013, N=10")."""
    return f"N={key}" if isinstance(key, (int, np.integer)) else str(key)


def n_colors(ns) -> dict:
    """One colour per N (or other key), ordered along a colour map."""
    cmap = matplotlib.colormaps["viridis"]
    ns = list(ns)
    return {n: cmap(0.85 * k / max(len(ns) - 1, 1)) for k, n in enumerate(ns)}


def plot_psnr_curves(gaps: dict, axes) -> None:
    """Fig 1: output vs input PSNR per N on two axes (train, test), with the identity line."""
    colors = n_colors(gaps)
    for ax, part in zip(axes, ("train", "test")):
        first = next(iter(gaps.values()))
        psnr_axes(ax, sigmas=first.sigmas, title=f"{part} images")
        for n, g in gaps.items():
            ax.plot(g.input_psnr, getattr(g, part), "o-", ms=3, color=colors[n],
                    label=key_label(n))
        ax.legend(fontsize=8)


def similarity_histograms(stats: dict, axes) -> None:
    """Fig 2 (bottom): per N (or other key), histograms of S1-vs-S2 similarity and of
    sample-vs-nearest-training-image similarity."""
    colors = n_colors(stats)
    parts = [("pair", "S1 sample vs S2 sample (same seed)"),
             ("near", "sample vs nearest training image")]
    lo = min(min(getattr(s, k).min().item() for s in stats.values()) for k, _ in parts)
    bins = np.linspace(min(0.0, np.floor(lo * 10) / 10), 1.0, 45)
    for ax, (key, title) in zip(axes, parts):
        for n, s in stats.items():
            ax.hist(
                getattr(s, key).numpy(), bins=bins, histtype="step", lw=1.6, density=True,
                color=colors[n], label=key_label(n))
        ax.set_xlabel("mean-removed cosine similarity")
        ax.set_ylabel("density")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")


def row_png(images: torch.Tensor, titles: list[str], width_in: float = 6.4,
            dpi: int = 100) -> bytes:
    """PNG bytes of one row of gray images with titles (no pyplot: nothing is displayed)."""
    n = len(images)
    fig = Figure(figsize=(width_in, width_in / n * 1.4), dpi=dpi)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, im, title in zip(axes, images, titles):
        ax.imshow(
            im.reshape(im.shape[-2:]).cpu().numpy(), cmap="gray", vmin=0, vmax=1,
            interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.78, wspace=0.06)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", pad_inches=0.05)
    return buf.getvalue()
