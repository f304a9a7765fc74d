"""Beyond the paper (chapter 07): what later work says generalization is, on the book's networks.

Local score machines (Kamb & Ganguli 2025), where samples commit (Biroli et al. 2024) and the
reproducibility of same-seed pairs (Zhang et al. 2024), measured on the face models of chapter
02:

    ls = LocalScore(train)                      # LS machine: x_hat(y, sigma, patch)
    els = EquivariantLocalScore(train, max_patches=40_000, seed=0)
    sizes = calibrate(ls, states, PATCH_SIZES)  # patch size per noise level, on other seeds
    out = follow(sizes.denoiser(ls), seeds, sigma_paths, shape)   # Algorithm 1, given sigma
    r = analysis.cosine_similarity(net_samples, out.images)       # Pearson correlation

The machines are written for variance-exploding noise, y = x + sigma z, as the book's denoisers
are: no rescaling of the training patches. Every correlation is the Pearson correlation of two
images (the cosine of the mean-subtracted images, `analysis.cosine_similarity`), unsquared.
Nothing here reads files or draws from a global random state: training images, models and
seeds are passed in, so every function runs on toy inputs in the tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import analysis, sampling
from ..config import Profile
from ..families import FACES, SUBSETS
from ..models import denoise, model_device

# Odd patch sizes a local machine may use: up to 17, the largest odd square inside the 18x18
# receptive field of the book's one-block UNet (Table 1), so that a machine never sees more of
# the image than the network it is compared with.
PATCH_SIZES = tuple(range(1, 18, 2))
SPLIT_COSINE = 0.9  # two runs have parted when the cosine of their f(y_t) falls below this
REPRO_THRESHOLDS = (0.6, 0.9)  # Zhang et al.'s threshold (on SSCD features), and a strict one

# Published numbers the chapter compares with (Kamb & Ganguli 2025, CelebA 32x32; their tables
# report a median over about 100 seeds).
KG_CELEBA = {
    "UNet vs LS": 0.90, "UNet vs ELS": 0.85, "UNet vs IS": 0.55, "ResNet vs ELS": 0.96,
    "ResNet vs IS": 0.47
}


# ------------------------------------------------------------------ how much, per profile
@dataclass(frozen=True)
class Budget:
    """How many seeds and patches the chapter spends (the machines dominate its run time).

    pairs: same-seed S1/S2 sample pairs per N (the reproducibility curve); the first `scored`
    of those seeds are the ones the machines are scored on. calibration: the seeds of the
    patch-size calibration, apart from every scored seed. levels: noise levels at which the
    patch size is calibrated, from sigma0 down to sigma_L. els_max_n: the ELS machine runs at
    N up to this. els_patches: its candidates, every patch when N * H * W is at most this,
    else a random subset of this many. path_seeds: seeds of the two-path runs (where paths
    part).
    """

    pairs: int
    scored: int
    calibration: tuple
    levels: int
    els_max_n: int
    els_patches: int
    path_seeds: int


CALIBRATION_SEED = 10**6  # calibration seeds start here; scored seeds are 0, 1, ...
PATH_NOISE_SEED = 2 * 10**6  # noise seeds of the two-path runs


def budget(profile: Profile) -> Budget:
    """The chapter's budget at a profile: at `book` it keeps the page within 5 minutes on two
    CPU cores (the machines' samples cost about N * d operations per step and seed)."""
    if profile.name == "smoke":
        return Budget(pairs=profile.n_seeds, scored=4, calibration=_seeds(2), levels=3,
                      els_max_n=1000, els_patches=2_000, path_seeds=2)
    if profile.name == "paper":
        return Budget(pairs=profile.n_seeds, scored=100, calibration=_seeds(20), levels=10,
                      els_max_n=1000, els_patches=400_000, path_seeds=16)
    return Budget(pairs=profile.n_seeds // 2, scored=16, calibration=_seeds(4), levels=6,
                  els_max_n=100, els_patches=10_000, path_seeds=6)


def _seeds(count: int) -> tuple:
    return tuple(range(CALIBRATION_SEED, CALIBRATION_SEED + count))


# ------------------------------------------------------------------ the machines
def _band(n: int, patch: int) -> torch.Tensor:
    """(n, n) 0/1 matrix: 1 where |i - j| <= patch // 2 (a centred window, cut at the border)."""
    i = torch.arange(n)
    return ((i[:, None] - i[None, :]).abs() <= patch // 2).float()


def _check_patch(patch: int) -> int:
    if int(patch) != patch or patch < 1 or patch % 2 == 0:
        raise ValueError(f"a patch size is an odd number >= 1 (a window centred on its pixel), "
                         f"got {patch}")
    return int(patch)


def _inverse_variance(sigma, count: int) -> torch.Tensor:
    """1 / sigma^2 as a (count,) float tensor (sigma: a number or one value per image)."""
    sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1)
    if sigma.numel() == 1:
        sigma = sigma.expand(count)
    if len(sigma) != count or (sigma <= 0).any():
        raise ValueError(f"give one positive sigma per image ({count}), got {sigma.tolist()}")
    return (1 / sigma**2).float()


class _Posterior:
    """Running softmax-weighted mean over candidates that come in chunks: for logits L (rows,
    n) and values V (rows, n) it accumulates sum_j softmax(L)_j V_j over all chunks, in one pass
    per chunk and without ever holding every candidate."""

    def __init__(self):
        self.log_mass = None  # log sum_j exp(L_j) so far, per row
        self.mean = None  # the softmax-weighted mean so far, per row

    def add(self, logits: torch.Tensor, values: torch.Tensor) -> None:
        top = logits.amax(dim=-1)
        w = torch.softmax(logits, dim=-1)
        # the largest softmax weight is exp(0) / sum_j exp(L_j - top)
        log_mass = top - torch.log(w.amax(dim=-1))
        mean = (w * values).sum(dim=-1)
        if self.mean is None:
            self.log_mass, self.mean = log_mass, mean
            return
        both = torch.maximum(self.log_mass, log_mass)
        a, b = torch.exp(self.log_mass - both), torch.exp(log_mass - both)
        self.mean = (a * self.mean + b * mean) / (a + b)
        self.log_mass = both + torch.log(a + b)


class LocalScore:
    """The local score (LS) machine of a training set (Kamb & Ganguli): output pixel p is the
    posterior mean of that pixel over the training images, each weighted by how well its P x P
    patch around p matches the noisy image's patch there,

        x_hat(y)[p] = sum_i w_i(p) x_i[p],   w(p) = softmax_i(-||y_W(p) - x_i,W(p)||^2 / 2 sigma^2),

    with W(p) the window centred on p, cut at the image border (zero padding of both images).
    A patch of 2H - 1 or more covers the whole image from every pixel: the memorizer.

    The squared distance expands as ||y_W||^2 - 2 <y, x_i>_W + ||x_i||^2_W; the first term is
    the same for every i and drops out of the softmax, the last is kept per patch size, and the
    middle one is a box filter of y * x_i (two small matrix products). Training images are
    processed `chunk` at a time, so memory stays at a few MB whatever N.
    """

    def __init__(self, train: torch.Tensor, chunk: int = 128):
        if train.dim() != 4 or train.shape[1] != 1:
            raise ValueError(f"training images must be (N, 1, H, W), got {tuple(train.shape)}")
        self.x = train[:, 0].permute(1, 2, 0).contiguous().float()  # (H, W, N)
        self.chunk = chunk
        self._half_squares = {}

    @property
    def shape(self) -> tuple:
        return (1, *self.x.shape[:2])

    def _box(self, t: torch.Tensor, patch: int) -> torch.Tensor:
        """Window sums over (H, W) of t (B, H, W, n)."""
        b, h, w, n = t.shape
        t = (_band(w, patch) @ t.reshape(b * h, w, n)).reshape(b, h, w * n)
        return (_band(h, patch) @ t).reshape(b, h, w, n)

    def half_squares(self, patch: int) -> torch.Tensor:
        if patch not in self._half_squares:
            self._half_squares[patch] = self._box(self.x[None]**2, patch)[0] / 2
        return self._half_squares[patch]

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, sigma, patch: int) -> torch.Tensor:
        patch = _check_patch(patch)
        yy = y[:, 0].float()
        inv = _inverse_variance(sigma, len(y)).view(-1, 1, 1, 1)
        half = self.half_squares(patch)
        post = _Posterior()
        for start in range(0, self.x.shape[-1], self.chunk):
            xc = self.x[..., start:start + self.chunk]
            logits = self._box(yy[..., None] * xc, patch)
            logits.sub_(half[..., start:start + self.chunk]).mul_(inv)
            post.add(logits, xc)
        return post.mean.unsqueeze(1).to(y.dtype)


class EquivariantLocalScore:
    """The equivariant local score (ELS) machine (Kamb & Ganguli): as `LocalScore`, but the
    candidate patches come from every position of every training image (zero-padded at the
    borders), so the machine is translation-equivariant away from the border:

        x_hat(y)[p] = sum_c w_c(p) centre(c),   w(p) = softmax_c(-||y_W(p) - c||^2 / 2 sigma^2).

    With N * H * W candidates per pixel this costs N * H * W * P^2 per pixel and step; when
    that is more than `max_patches` candidates, a random subset of `max_patches` (training
    image, position) pairs, drawn once with `seed`, stands for all of them (the same subset
    for every patch size).
    """

    def __init__(self, train: torch.Tensor, max_patches: int | None = None, seed: int = 0,
                 chunk: int = 256):
        if train.dim() != 4 or train.shape[1] != 1:
            raise ValueError(f"training images must be (N, 1, H, W), got {tuple(train.shape)}")
        n, _, h, w = train.shape
        self.train, self.chunk = train.float(), chunk
        self.total = n * h * w
        pick = torch.arange(self.total)
        if max_patches is not None and self.total > max_patches:
            g = torch.Generator().manual_seed(seed)
            pick = torch.randperm(self.total, generator=g)[:max_patches].sort().values
        self.image, position = pick // (h * w), pick % (h * w)
        self.row, self.col = position // w, position % w
        self._candidates = {}

    @property
    def shape(self) -> tuple:
        return tuple(self.train.shape[1:])

    @property
    def n_candidates(self) -> int:
        return len(self.image)

    def candidates(self, patch: int):
        """(patches (M, P*P), half squared norms (M,), centre values (M,)) for a patch size."""
        if patch not in self._candidates:
            r = patch // 2
            padded = F.pad(self.train[:, 0], (r, r, r, r))
            dy, dx = torch.meshgrid(torch.arange(patch), torch.arange(patch), indexing="ij")
            rows = self.row[:, None] + dy.reshape(1, -1)
            cols = self.col[:, None] + dx.reshape(1, -1)
            patches = padded[self.image[:, None], rows, cols]  # (M, P*P), row-major window
            centres = self.train[self.image, 0, self.row, self.col]
            self._candidates[patch] = (patches, (patches**2).sum(dim=1) / 2, centres)
        return self._candidates[patch]

    @torch.no_grad()
    def __call__(self, y: torch.Tensor, sigma, patch: int) -> torch.Tensor:
        patch = _check_patch(patch)
        b, _, h, w = y.shape
        inv = _inverse_variance(sigma, b).repeat_interleave(h * w)[:, None]
        rows = F.unfold(y.float(), patch,
                        padding=patch // 2).transpose(1, 2).reshape(b * h * w, patch * patch)
        patches, half, centres = self.candidates(patch)
        post = _Posterior()
        for start in range(0, len(centres), self.chunk):
            stop = start + self.chunk
            logits = torch.addmm(half[start:stop], rows, patches[start:stop].T, beta=-1)
            post.add(logits.mul_(inv), centres[start:stop])
        return post.mean.reshape(b, 1, h, w).to(y.dtype)


# ------------------------------------------------------------------ patch-size calibration
@dataclass
class CalibrationStates:
    """Points on the network's own sampling paths at which machines are calibrated."""

    y: torch.Tensor  # (K, 1, H, W) iterates y_t
    sigma: torch.Tensor  # (K,) the network's noise estimate at each
    residual: torch.Tensor  # (K, 1, H, W) the network's f(y_t) - y_t
    level: torch.Tensor  # (K,) index of the target noise level each state stands for
    targets: np.ndarray  # the target noise levels, from sigma0 down to sigma_final


def calibration_states(model, seeds, shape, levels: int,
                       settings: sampling.SamplerSettings | None = None) -> CalibrationStates:
    """Run Algorithm 1 with `model` from `seeds` (apart from the scored ones) and keep, on each
    path, the iterate whose noise estimate is nearest (in log sigma) to each of `levels` noise
    levels spaced geometrically from sigma0 to sigma_final."""
    settings = settings or sampling.SamplerSettings()
    run = sampling.sample(model, list(seeds), shape=shape, settings=settings, record_every=1,
                          progress=False)
    targets = np.geomspace(settings.sigma0, settings.sigma_final, levels)
    ys, sigmas, residuals, level = [], [], [], []
    for traj, path in zip(run.trajectories, run.sigmas):
        logs = np.log(np.asarray(path))
        for k, target in enumerate(targets):
            j = int(np.argmin(np.abs(logs - np.log(target))))
            ys.append(traj["y"][j]), residuals.append(traj["denoised"][j] - traj["y"][j])
            sigmas.append(path[j]), level.append(k)
    return CalibrationStates(torch.stack(ys), torch.tensor(sigmas), torch.stack(residuals),
                             torch.tensor(level), targets)


@dataclass
class PatchSchedule:
    """A calibrated patch size per noise level: sigma -> the size at the nearest level (log)."""

    sigmas: np.ndarray  # the calibration levels
    sizes: np.ndarray  # the patch size chosen at each
    scores: np.ndarray = field(default=None)  # (levels, candidate sizes) median score cosine
    candidates: tuple = PATCH_SIZES

    def __call__(self, sigma: float) -> int:
        k = int(np.argmin(np.abs(np.log(self.sigmas) - math.log(float(sigma)))))
        return int(self.sizes[k])

    def denoiser(self, machine):
        """machine(y, sigma, patch) as a denoiser of (y, sigma per image) with this schedule:
        images whose sigma calls for the same size go through the machine together."""

        def run(y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            sizes = torch.tensor([self(s) for s in sigma.tolist()])
            out = torch.empty_like(y)
            for size in sizes.unique().tolist():
                rows = sizes == size
                out[rows] = machine(y[rows], sigma[rows], size)
            return out

        return run


def calibrate(machine, states: CalibrationStates, sizes=PATCH_SIZES) -> PatchSchedule:
    """Kamb & Ganguli's calibration: at each state, the patch size whose machine score is most
    aligned (raw cosine) with the network's, x_hat_P(y) - y against f(y) - y; at each noise
    level, the median of the sizes chosen on the calibration paths (the lower median of an
    even count: always one of `sizes`)."""
    net = states.residual.flatten(1).double()
    cos = torch.stack([
        torch.nn.functional.cosine_similarity(
            (machine(states.y, states.sigma, p) - states.y).flatten(1).double(), net, dim=1)
        for p in sizes
    ], dim=1)  # (K, len(sizes))
    best = torch.tensor(sizes)[cos.argmax(dim=1)]
    levels = len(states.targets)
    chosen = np.array([int(best[states.level == k].median()) for k in range(levels)])
    scores = np.array([cos[states.level == k].median(dim=0).values.numpy() for k in range(levels)])
    return PatchSchedule(states.targets, chosen, scores, tuple(sizes))


# ------------------------------------------------------------------ Algorithm 1, sigma given
@dataclass
class Followed:
    images: torch.Tensor  # (n, 1, H, W): f(y) at each path's last step
    states: list  # per seed: (T, 1, H, W) iterates y_{t-1} at which the denoiser was called


@torch.no_grad()
def follow(denoiser, seeds, sigma_paths, shape,
           settings: sampling.SamplerSettings | None = None) -> Followed:
    """Algorithm 1 (sampling.sample) with the noise level *given* instead of estimated from the
    residual: seed k runs len(sigma_paths[k]) steps, and step t uses sigma_paths[k][t - 1] both
    in the denoiser, denoiser(y, sigma per image), and in the injected noise. y0 and every z_t
    come from the seed's generator exactly as in `sampling.sample`, so with a network's own
    paths (`Samples.sigmas`) and that network as denoiser, this returns the network's samples;
    with a machine, the machine's samples from the same noise along the same schedule."""
    settings = settings or sampling.SamplerSettings()
    seeds = [int(s) for s in seeds]
    if len(sigma_paths) != len(seeds) or any(len(p) == 0 for p in sigma_paths):
        raise ValueError("give one non-empty sigma path per seed")
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    y = torch.stack(
        [settings.init_mean + settings.sigma0 * torch.randn(shape, generator=g) for g in gens])
    lengths = torch.tensor([len(p) for p in sigma_paths])
    out = torch.empty_like(y)
    states = [[] for _ in seeds]
    active = torch.arange(len(seeds))
    for t in range(1, int(lengths.max()) + 1):
        sigma = torch.tensor([float(sigma_paths[i][t - 1]) for i in active.tolist()])
        f_y = denoiser(y[active], sigma)
        for j, i in enumerate(active.tolist()):
            states[i].append(y[i].clone())
        last = lengths[active] == t
        out[active[last]] = f_y[last] if settings.final_denoise else y[active[last]]
        keep = ~last
        active, f_y, sigma = active[keep], f_y[keep], sigma[keep]
        if len(active) == 0:
            break
        h = sampling.step_size(t, settings.h0)
        gamma = sampling.noise_amplitude(h, settings.beta, sigma)
        z = torch.stack([torch.randn(shape, generator=gens[i]) for i in active.tolist()])
        y[active] = y[active] + h * (f_y - y[active]) + gamma.view(-1, 1, 1, 1) * z
    return Followed(out, [torch.stack(s) for s in states])


def network_denoiser(model):
    """A blind network as a denoiser of (y, sigma): it ignores the sigma it is given."""
    device = model_device(model)
    return lambda y, sigma: denoise(model, y.to(device)).to(y.device)


# ------------------------------------------------------------------ one N: machines vs network
@dataclass
class MachineStudy:
    """Samples of the network and of the machines from the same seeds and noise schedule."""

    n: int
    network: str  # the model's name
    seeds: list
    samples: dict  # name -> (n_seeds, 1, H, W); "network" and each machine
    corr: dict  # machine name -> (n_seeds,) Pearson correlation with the network's sample
    schedules: dict  # machine name -> PatchSchedule (local machines only)
    states: dict  # machine name -> per seed (T, 1, H, W) iterates (kept for the memorizer)
    sigma_paths: list  # the network's noise estimate per seed and step
    els_candidates: int | None = None  # candidates per pixel of the ELS machine (None: not run)
    els_total: int | None = None  # every patch of the training set

    def median(self, name: str) -> float:
        return float(self.corr[name].median())

    def best_local(self) -> tuple[str, float]:
        """The local machine (LS or ELS) with the higher median correlation, and that median."""
        return max(((m, self.median(m)) for m in ("LS", "ELS") if m in self.corr),
                   key=lambda item: item[1])

    def collapse_sigmas(self, train: torch.Tensor) -> np.ndarray:
        """Per seed, the noise level from which on the memorizer's path keeps the same nearest
        training image (Euclidean, = the posterior's most likely image) to the end: where the
        empirical score's trajectory has locked onto one training image."""
        return np.array([
            collapse_sigma(states, path, train)
            for states, path in zip(self.states["memorizer"], self.sigma_paths)
        ])


def study_machines(model, name: str, n: int, train: torch.Tensor, memorizer, samples, seeds,
                   calibration_seeds, shape, b: Budget,
                   settings: sampling.SamplerSettings | None = None) -> MachineStudy:
    """Calibrate the LS (and, at N <= b.els_max_n, ELS) machine on `calibration_seeds`, then
    draw the machines' and the memorizer's samples from the scored `seeds` along the network's
    own noise schedule (`samples`: the network's `sampling.Samples` of those seeds), and
    correlate each with the network's sample of the same seed.

    memorizer(y, sigma) is the ideal (memorizing) denoiser of `train`, sigma a column (B, 1)."""
    seeds = [int(s) for s in seeds]
    if list(samples.seeds[:len(seeds)]) != seeds:
        raise ValueError("the network's samples must start with the scored seeds")
    paths = samples.sigmas[:len(seeds)]
    net_images = samples.images[:len(seeds)]
    machines = {"LS": LocalScore(train)}
    els_total = None
    if n <= b.els_max_n:
        machines["ELS"] = EquivariantLocalScore(train, max_patches=b.els_patches, seed=n)
        els_total = machines["ELS"].total
    states = calibration_states(model, calibration_seeds, shape, b.levels, settings)
    schedules = {key: calibrate(m, states) for key, m in machines.items()}
    denoisers = {key: schedules[key].denoiser(m) for key, m in machines.items()}
    denoisers["memorizer"] = lambda y, sigma: memorizer(y, sigma.view(-1, 1))
    out = {key: follow(fn, seeds, paths, shape, settings) for key, fn in denoisers.items()}
    return MachineStudy(
        n=n, network=name, seeds=seeds,
        samples={"network": net_images, **{k: o.images
                                           for k, o in out.items()}},
        corr={k: analysis.cosine_similarity(net_images, o.images)
              for k, o in out.items()}, schedules=schedules,
        states={"memorizer": out["memorizer"].states}, sigma_paths=paths,
        els_candidates=machines["ELS"].n_candidates if "ELS" in machines else None,
        els_total=els_total)


# ------------------------------------------------------------------ memorization against time
MEMORIZED_RATIO = 1 / 3  # Bonnaire et al.: nearest training image < 1/3 of the second's distance
ONSET_SHARE = 0.05  # memorization has begun once at least this share of samples is memorized
# and stays so at every later step (a single stray sample of 64 does not set it)


def fit_distances(samples: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """(n_samples, N) distances that ignore brightness and contrast: the residual of the best
    fit a x_i + b of each training image to the sample, over the sample's own mean-removed norm
    (the sine of the angle between the mean-removed images). A bias-free network's copies are
    rescaled faces, which a plain Euclidean distance would call far."""
    unit = analysis.mean_removed_unit
    cos = unit(samples).double() @ unit(train).double().T
    return (1 - cos.clamp(-1, 1)**2).clamp_min(0).sqrt()


def memorized(samples: torch.Tensor, train: torch.Tensor,
              ratio: float = MEMORIZED_RATIO) -> torch.Tensor:
    """Per sample: whether its nearest training image is nearer than `ratio` times the second
    nearest (fit_distances)."""
    if len(train) < 2:
        raise ValueError("the one-third rule needs at least two training images")
    two = fit_distances(samples, train).topk(2, dim=1, largest=False).values
    return two[:, 0] < ratio * two[:, 1]


@dataclass
class MemorizationCurve:
    """The memorized share of one watched run's samples at each watched step, with a bootstrap
    interval over the seeds."""

    name: str
    n: int  # training images
    samples: int  # seeds drawn at each step
    steps: np.ndarray
    share: np.ndarray
    low: np.ndarray
    high: np.ndarray
    flags: np.ndarray | None = None  # (steps, seeds): memorized or not

    def onset(self, level: float = ONSET_SHARE) -> int | None:
        """The first watched step from which the share stays at or above `level` (None: it
        does not within the run)."""
        return onset_step(self.steps, self.share, level)


def onset_step(steps, share, level: float = ONSET_SHARE) -> int | None:
    """The first of `steps` from which `share` stays at or above `level` (None: never)."""
    below = np.flatnonzero(np.asarray(share) < level)
    if len(below) == 0:
        return int(steps[0])
    return None if below[-1] == len(steps) - 1 else int(steps[below[-1] + 1])


def memorization_curve(name: str, watched: list[dict], train: torch.Tensor, boot: int = 1000,
                       seed: int = 0, interval: float = 0.9) -> MemorizationCurve:
    """From a watched run's samples (the checkpoint's `watched` list) and its training images."""
    flags = torch.stack([memorized(w["images"].float(), train) for w in watched]).double()
    g = torch.Generator().manual_seed(seed)
    picks = torch.randint(flags.shape[1], (boot, flags.shape[1]), generator=g)
    shares = flags[:, picks].mean(dim=2).numpy()  # (steps, boot)
    tail = (1 - interval) / 2
    return MemorizationCurve(name, len(train), flags.shape[1],
                             np.array([w["step"] for w in watched]),
                             flags.mean(dim=1).numpy(), np.quantile(shares, tail, axis=1),
                             np.quantile(shares, 1 - tail, axis=1), flags.numpy())


def watched_grid(watched: list[dict], train: torch.Tensor, rows: int, count: int):
    """The first `count` seeds' samples at `rows` watched steps spread over the run (the last
    included), one row per step: (images, titles "copy" where memorized, row labels)."""
    picks = np.unique(np.linspace(0, len(watched) - 1, rows).round().astype(int))
    images, titles, labels = [], [], []
    for k in picks:
        x = watched[k]["images"][:count].float()
        images += list(x)
        titles += ["copy" if m else "" for m in memorized(x, train).tolist()]
        labels.append(f"step\n{watched[k]['step']:,}")
    return images, titles, labels


def onset_growth(curves: dict, small: int, large: int) -> tuple[float, bool]:
    """(onset step at N = large over onset step at N = small, whether that is only a lower
    bound): when the larger N has not begun by the end of its run, its last step stands in for
    its onset. NaN when the smaller N does not begin either."""
    return _growth(curves[small].steps, curves[small].share, curves[large].steps,
                   curves[large].share)


def _growth(steps_a, share_a, steps_b, share_b) -> tuple[float, bool]:
    a, b = onset_step(steps_a, share_a), onset_step(steps_b, share_b)
    if a is None:
        return math.nan, False
    if b is None:
        return float(steps_b[-1]) / a, True
    return b / a, False


def onset_growth_interval(curves: dict, small: int, large: int) -> tuple[float, float]:
    """Bootstrap interval of onset_growth over each run's seeds (a resample where the smaller N
    never begins counts as no growth, 0)."""
    a, b = curves[small], curves[large]

    def growth(flags_a, flags_b):
        ratio, _ = _growth(a.steps, flags_a.mean(axis=-1), b.steps, flags_b.mean(axis=-1))
        return 0.0 if math.isnan(ratio) else ratio

    return analysis.bootstrap_interval(growth, a.flags, b.flags)


# ------------------------------------------------------------------ where samples commit
def collapse_sigma(states: torch.Tensor, sigma_path, train: torch.Tensor) -> float:
    """The noise level of the first step after which the nearest training image (Euclidean) of
    the iterate y_t never changes again; sigma_path[0] when it never changes at all."""
    nearest = torch.cdist(states.flatten(1).double(), train.flatten(1).double()).argmin(dim=1)
    changed = torch.nonzero(nearest[1:] != nearest[:-1]).flatten()
    step = 0 if len(changed) == 0 else int(changed[-1]) + 1
    return float(sigma_path[step])


def top_eigenvalue(train: torch.Tensor) -> float:
    """Lambda: the largest eigenvalue of the training images' pixel covariance."""
    x = train.flatten(1).double()
    if len(x) < 2:
        raise ValueError("a covariance needs at least two images")
    return float(torch.linalg.eigvalsh(torch.cov(x.T))[-1])


def speciation_sigmas(lam: float) -> dict:
    """Biroli et al.'s speciation in the book's variance-exploding form. Their Ornstein-Uhlenbeck
    process x_t = e^-t x_0 + sqrt(1 - e^-2t) z is y = x_0 + sigma z divided by sqrt(1 + sigma^2),
    so e^2t = 1 + sigma^2; their criterion Lambda e^-2t_S = 1 then reads sigma_S^2 = Lambda - 1.
    Asking instead that the noise variance equal the signal variance along the top principal
    direction gives sigma_S^2 = Lambda; the two agree for Lambda >> 1."""
    return {"sqrt(Lambda - 1)": math.sqrt(max(lam - 1.0, 0.0)), "sqrt(Lambda)": math.sqrt(lam)}


def gaussian_collapse_sigma(n: int, d: int, variance: float) -> float:
    """Biroli et al.'s collapse for n points drawn from N(0, variance I_d), t_C =
    1/2 log(1 + variance / (n^(2/d) - 1)), in the variance-exploding form (e^2t = 1 + sigma^2):
    sigma_C^2 = variance / (n^(2/d) - 1). Infinite for n = 1 (always collapsed)."""
    gap = math.expm1(2 * math.log(n) / d)
    return math.inf if gap == 0 else math.sqrt(variance / gap)


def split_sigmas(paths: list, threshold: float = SPLIT_COSINE) -> dict:
    """From two-path runs (chapter 02's `two_paths`, one per seed): per seed, the noise level
    of run A when its f(y_t) first falls below `threshold` in cosine with run B's (same start,
    other noise) and with the partner model's (same start, same noise); NaN where they never
    do."""
    out = {"S1 noise A vs S1 noise B": [], "S1 vs S2, same noise": []}
    for p in paths:
        for key, (steps, cos) in zip(out, [(p["steps"], p["cos_ab"]),
                                           (p["partner_steps"], p["cos_partner"])]):
            k = analysis.first_below(cos, threshold)
            out[key].append(np.nan if k is None else float(p["sigmas"][0][int(steps[k])]))
    return {k: np.array(v) for k, v in out.items()}


# ------------------------------------------------------------------ reproducibility
def share_above(similarities: torch.Tensor, threshold: float) -> float:
    """The share of values above `threshold`."""
    return float((torch.as_tensor(similarities) > threshold).float().mean())


def reproducibility(pair: torch.Tensor, near: torch.Tensor, thresholds=REPRO_THRESHOLDS) -> dict:
    """Zhang et al.'s scores with the mean-removed pixel cosine in place of SSCD features:
    reproducibility = share of same-seed S1/S2 pairs above each threshold; generalization =
    1 - share of samples whose nearest training image is above it."""
    return {
        **{f"RP > {t:g}": share_above(pair, t)
           for t in thresholds}, **{f"GS at {t:g}": 1 - share_above(near, t)
                                    for t in thresholds}
    }


# ------------------------------------------------------------------ scorecard
def scorecard_measurements(profile: Profile, studies: dict, control: MachineStudy,
                           control_name: str, speciation: float, collapse: dict, repro: dict,
                           b: Budget, curves: dict) -> list[dict]:
    """The chapter's rows. studies[N]: the MachineStudy of the S1 model; control: the study
    used at N = 10 (the depth control where the profile has one); collapse[N]: median collapse
    sigma; repro[N]: `reproducibility` of the S1/S2 pairs; speciation: sqrt(Lambda - 1);
    curves[N]: the MemorizationCurve of the watched run at N (the two smallest N are compared)."""
    big = profile.faces.largest_n
    s = studies[big]
    best_name, best = s.best_local()
    seeds = (f"{len(s.seeds)} scored seeds {s.seeds[0]}-{s.seeds[-1]}, patch sizes calibrated "
             f"on seeds {b.calibration[0]}-{b.calibration[-1]}")
    pearson = "median Pearson correlation of mean-subtracted images (unsquared)"
    net = [FACES.name(profile, big, "S1")]
    ctl_best_name, ctl_best = control.best_local()
    med = analysis.median

    def difference(pair):  # median of the first machine's correlations minus the second's
        return med(pair[0]) - med(pair[1])

    def paired(study, first, second):
        return np.stack([study.corr[first].numpy(), study.corr[second].numpy()])

    return [
        dict(
            id="beyond.local_machine_corr_largest_N", paper=KG_CELEBA["UNet vs LS"],
            measure=f"{pearson}, network sample vs best local machine ({best_name}) sample "
            f"from the same noise, N={big}, {seeds}", measured=best, target=">= 0.8",
            interval=analysis.bootstrap_interval(med, s.corr[best_name].numpy()), checkpoints=net),
        dict(
            id="beyond.ls_vs_memorizer_largest_N",
            paper=round(KG_CELEBA["UNet vs LS"] - KG_CELEBA["UNet vs IS"], 2),
            measure=f"{pearson}: vs best local machine ({best_name}) minus vs memorizer, "
            f"N={big}, {seeds}", measured=best - s.median("memorizer"), target="> 0",
            checkpoints=net,
            interval=analysis.bootstrap_interval(difference, paired(s, best_name, "memorizer"))),
        dict(
            id="beyond.memorizer_vs_ls_N10",
            measure=f"{pearson}: vs memorizer minus vs best local machine ({ctl_best_name}), "
            f"N={control.n}, {control_name}, {len(control.seeds)} scored seeds, "
            f"calibration seeds {b.calibration[0]}-{b.calibration[-1]}",
            measured=control.median("memorizer") - ctl_best, target="> 0",
            checkpoints=[control_name],
            interval=analysis.bootstrap_interval(difference,
                                                 paired(control, "memorizer", ctl_best_name))),
        dict(
            id="beyond.memorizer_corr_largest_N", paper=KG_CELEBA["UNet vs IS"],
            measure=f"{pearson}, network sample vs memorizer sample from the same noise, "
            f"N={big}, {seeds}", measured=s.median("memorizer"), checkpoints=net),
        dict(
            id="beyond.collapse_sigma_largest_N",
            measure=f"median over the scored seeds of the sigma below which the memorizer's "
            f"path keeps its nearest training image, N={big}", measured=collapse[big],
            checkpoints=net),
        dict(
            id="beyond.speciation_sigma",
            measure=f"sqrt(Lambda - 1), Lambda = top eigenvalue of the covariance of the "
            f"N={big} S1 faces (pixels in [0, 1])", measured=speciation),
        dict(
            id="beyond.reproducibility_largest_N",
            measure=f"share of {b.pairs} same-seed S1/S2 sample pairs with mean-removed cosine "
            f"> {REPRO_THRESHOLDS[0]:g}, N={big}",
            measured=repro[big][f"RP > {REPRO_THRESHOLDS[0]:g}"],
            checkpoints=[FACES.name(profile, big, s_) for s_ in SUBSETS]),
        _onset_row(curves),
    ]


def _onset_row(curves: dict) -> dict:
    small, large = sorted(curves)[:2]
    growth, bound = onset_growth(curves, small, large)
    return dict(
        id="beyond.memorization_onset_growth", paper=large / small,
        measure=f"{'at least: ' if bound else ''}onset step of memorization at N={large} over "
        f"that at N={small} (first watched step from which >= {ONSET_SHARE:.0%} of "
        f"{curves[small].samples} samples are memorized: nearest training face < 1/3 "
        f"of the second's fit distance), watched runs {curves[small].name}, "
        f"{curves[large].name}", measured=growth, target="> 1",
        checkpoints=[curves[small].name,
                     curves[large].name], interval=onset_growth_interval(curves, small, large))


# ------------------------------------------------------------------ figures and tables
def plot_machine_corr(ax, studies: dict, pair_medians: dict | None = None,
                      control: MachineStudy | None = None) -> None:
    """Median (and quartiles) over the scored seeds of corr(network, machine) against N, per
    machine; hollow markers: a control network's (chapter 02's depth control); dashed grey:
    chapter 02's transition (median S1 vs S2 cosine); right: Kamb & Ganguli's medians on
    32x32 CelebA (their UNet)."""
    styles = {"LS": ("C0", "o"), "ELS": ("C2", "s"), "memorizer": ("C3", "^")}
    for name, (color, marker) in styles.items():
        ns = [n for n in sorted(studies) if name in studies[n].corr]
        if not ns:
            continue
        q = np.array([
            [
                np.quantile(studies[n].corr[name].numpy(), 0.25),
                studies[n].median(name),  # the tables' median (torch's lower median)
                np.quantile(studies[n].corr[name].numpy(), 0.75)
            ] for n in ns
        ])
        ax.errorbar(ns, q[:, 1], yerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]], color=color,
                    marker=marker, ms=4, capsize=2, label=f"network vs {name}")
        if control is not None and name in control.corr:
            ax.plot([control.n * 1.15], [control.median(name)], marker=marker, ms=6, mfc="none",
                    color=color, ls="none")
    if control is not None:
        ax.plot([], [], marker="o", mfc="none", color="0.3", ls="none",
                label=f"N={control.n}, control network")
    if pair_medians:
        ns = sorted(pair_medians)
        ax.plot(ns, [pair_medians[n] for n in ns], "--", color="0.5", lw=1.2,
                label="S1 vs S2 sample (ch. 02)")
    right = max(studies) * 3
    for key, color in [("UNet vs LS", "C0"), ("UNet vs ELS", "C2"), ("UNet vs IS", "C3")]:
        ax.plot([right], [KG_CELEBA[key]], marker="*", ms=9, color=color, ls="none")
    ax.text(right, KG_CELEBA["UNet vs IS"] - 0.05, "K&G\n32×32", ha="center", va="top", fontsize=7)
    ax.set_xscale("log"), ax.set_xlabel("N (training faces)")
    ax.set_ylabel("Pearson correlation (median)")
    ax.set_ylim(min(-0.1, ax.get_ylim()[0]), 1.02), ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")


def plot_commit(ax, ns, collapse: dict, splits: dict, gaussian: dict, speciation: dict,
                settings: sampling.SamplerSettings) -> None:
    """Noise levels against N: speciation (from Lambda), collapse of the empirical score
    (measured on the memorizer's paths; Gaussian theory), and where the network's two paths
    from one start part (medians and quartiles over seeds; never-parted seeds left out)."""

    def quartiles(values):
        v = np.asarray(values, float)
        v = v[np.isfinite(v)]
        return np.quantile(v, [0.25, 0.5, 0.75]) if len(v) else np.full(3, np.nan)

    ns = list(ns)
    for (label, value), ls in zip(speciation.items(), ["-", ":"]):
        shown = label.replace("sqrt(Lambda - 1)", "√(Λ − 1)").replace("sqrt(Lambda)", "√Λ")
        ax.axhline(value, color="C4", ls=ls, lw=1.2, label=f"speciation σ_S = {shown}")
    ax.axhline(settings.sigma0, color="k", lw=0.8, label="sampler start σ0")
    ax.axhline(settings.sigma_final, color="k", lw=0.8, ls="--", label="sampler end σ_L")
    finite = [n for n in ns if math.isfinite(gaussian[n])]
    ax.plot(finite, [gaussian[n] for n in finite], color="C3", ls=":", lw=1.2,
            label="collapse, Gaussian theory")
    curves = [("collapse, memorizer paths", collapse, "C3", "^"),
              *[(f"paths part: {k}", v, c, m)
                for (k, v), c, m in zip(splits.items(), ["C0", "C1"], ["o", "s"])]]
    for label, data, color, marker in curves:
        q = np.array([quartiles(data[n]) for n in ns])
        ax.errorbar(ns, q[:, 1], yerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]], color=color,
                    marker=marker, ms=4, capsize=2, label=label)
    ax.set_xscale("log"), ax.set_yscale("log")
    ax.set_xlabel("N (training faces)"), ax.set_ylabel("σ")
    ax.grid(alpha=0.3, which="both"), ax.legend(fontsize=7, loc="upper left",
                                                bbox_to_anchor=(1.01, 1.0))


def plot_memorization(ax, curves: dict, book_steps: int) -> None:
    """The memorized share against the training step, one curve per N with its bootstrap band;
    a marker at each onset; the dotted line: the steps every model of the book trains for."""
    for i, (n, c) in enumerate(sorted(curves.items())):
        color = f"C{i}"
        ax.plot(c.steps, c.share, marker="o", ms=3, color=color, label=f"N = {n}")
        ax.fill_between(c.steps, c.low, c.high, color=color, alpha=0.15, lw=0)
        if c.onset() is not None:
            ax.axvline(c.onset(), color=color, ls="--", lw=0.9)
    ax.axvline(book_steps, color="k", ls=":", lw=1, label="the book's steps")
    ax.axhline(ONSET_SHARE, color="grey", lw=0.8)
    ax.set_xscale("log"), ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training step"), ax.set_ylabel("memorized share of samples")
    ax.grid(alpha=0.3, which="both"), ax.legend(fontsize=7, loc="upper left")


def plot_reproducibility(ax, repro: dict) -> None:
    """Zhang et al.'s scores against N (mean-removed pixel cosine as the similarity)."""
    ns = sorted(repro)
    for (key, color), ls in zip([(k, f"C{i}") for i, k in enumerate(repro[ns[0]])],
                                ["-", "-", "--", "--"]):
        ax.plot(ns, [repro[n][key] for n in ns], marker="o", ms=4, ls=ls, color=color, label=key)
    ax.set_xscale("log"), ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("N (training faces)"), ax.set_ylabel("share of samples or pairs")
    ax.grid(alpha=0.3), ax.legend(fontsize=7)


def machine_grid(study: MachineStudy, count: int):
    """The first `count` scored seeds (all, if fewer), one column each: rows network, then each
    machine, with the correlation to the network's sample. Returns (images, titles, row
    labels)."""
    count = min(count, len(study.seeds))
    names = ["network"] + [k for k in ("LS", "ELS", "memorizer") if k in study.samples]
    images = torch.cat([study.samples[k][:count] for k in names])
    titles = [f"seed {s}" for s in study.seeds[:count]]
    for k in names[1:]:
        titles += [f"r {v:.2f}" for v in study.corr[k][:count].tolist()]
    return images.clamp(0, 1), titles, names


def schedule_rows(studies: dict) -> list[list]:
    """Table rows: N, machine, patch size per calibration level (sigma0 first)."""
    return [[n, name, " ".join(str(p) for p in sch.sizes)] for n, s in studies.items()
            for name, sch in s.schedules.items()]


def crossover(studies: dict) -> int | None:
    """The smallest N from which on the best local machine's median correlation stays above the
    memorizer's (None if it never does)."""
    ahead = [(n, studies[n].best_local()[1] > studies[n].median("memorizer"))
             for n in sorted(studies)]
    for k, (n, _) in enumerate(ahead):
        if all(a for _, a in ahead[k:]):
            return n
    return None


def published_comparison(profile: Profile, studies: dict, control: MachineStudy, speciation: dict,
                         sigma0: float, collapse: dict, gaussian: dict, repro: dict,
                         curves: dict) -> list[list[str]]:
    """The closing note's rows: (what, published and where, measured here, agreement)."""
    big = profile.faces.largest_n
    s = studies[big]
    best_name, best = s.best_local()
    mem = s.median("memorizer")
    els_ns = [n for n in sorted(studies) if "ELS" in studies[n].corr and n > 1]
    els_n = els_ns[-1] if els_ns else None
    cross = crossover(studies)
    ctl_name, ctl_best = control.best_local()
    ctl_mem = control.median("memorizer")
    yes_no = lambda ok: "agrees" if ok else "differs"  # noqa: E731
    rp = repro[big][f"RP > {REPRO_THRESHOLDS[0]:g}"]
    rp_small = repro[min(repro)][f"RP > {REPRO_THRESHOLDS[0]:g}"]
    rows = [
        [
            "UNet sample vs LS sample", f"{KG_CELEBA['UNet vs LS']:.2f} (K&G, CelebA 32×32)",
            f"{s.median('LS'):.2f} (N = {big})",
            yes_no(s.median("LS") >= 0.8) + " (target ≥ 0.8)"
        ],
        [
            "UNet sample vs ELS sample", f"{KG_CELEBA['UNet vs ELS']:.2f} (K&G, CelebA 32×32)",
            "not run at this N" if els_n is None else
            f"{studies[els_n].median('ELS'):.2f} (N = {els_n}, the largest N with ELS)",
            "not comparable (other N)"
        ],
        [
            "UNet sample vs memorizer (IS) sample",
            f"{KG_CELEBA['UNet vs IS']:.2f} (K&G, CelebA 32×32)", f"{mem:.2f} (N = {big})",
            yes_no(mem < best) + f" in order: {'below' if mem < best else 'above'} the local "
            "machine"
        ],
        [
            "local machine minus memorizer, largest N",
            f"{KG_CELEBA['UNet vs LS'] - KG_CELEBA['UNet vs IS']:.2f} (K&G)",
            f"{best - mem:+.2f} ({best_name})",
            yes_no(best > mem) + " in sign"
        ],
        [
            "memorizer minus local machine, N = 10", "> 0 expected (issue)",
            f"{ctl_mem - ctl_best:+.2f} ({control.network}, vs {ctl_name})",
            yes_no(ctl_mem > ctl_best) + " in sign"
        ],
        [
            "N from which a local machine beats the memorizer", "—",
            "never" if cross is None else f"{cross}", "—"
        ],
        [
            "speciation σ_S vs the sampler's start σ0", "σ_S² ≈ Λ − 1 (Biroli et al., converted)",
            f"σ_S = {speciation['sqrt(Lambda - 1)']:.2f} vs σ0 = {sigma0:g}",
            "σ_S above σ0: samples start after speciation"
            if speciation["sqrt(Lambda - 1)"] > sigma0 else "σ_S below σ0"
        ],
        [
            f"collapse σ, N = {big}", f"{gaussian[big]:.2f} (Gaussian theory, Biroli et al.)",
            f"{collapse[big]:.2f} (memorizer paths, median)",
            f"ratio {collapse[big] / gaussian[big]:.2f}: " +
            ("agrees within a factor 1.5" if abs(math.log(collapse[big] / gaussian[big]))
             < math.log(1.5) else "differs by more than a factor 1.5")
        ],
        [
            f"reproducibility (share > {REPRO_THRESHOLDS[0]:g})",
            "high in the generalization regime (Zhang et al., SSCD features)",
            f"{rp_small:.2f} at N = {min(repro)}, {rp:.2f} at N = {big}",
            ("agrees" if rp > 0.5 else "differs") + f": {'above' if rp > 0.5 else 'below'} "
            "one half at the largest N"
        ],
    ]
    small, large = sorted(curves)[:2]
    growth, bound = onset_growth(curves, small, large)
    onsets = ", ".join(f"{'none' if c.onset() is None else c.onset()} at N = {n}"
                       for n, c in sorted(curves.items()))
    rows.append([
        f"memorization onset, N = {large} over N = {small}",
        f"∝ N: {large / small:g} (Bonnaire et al., CelebA 32×32)",
        f"{'≥ ' if bound else ''}{growth:.2f} (onset steps: {onsets})",
        "not measured: no onset at the smaller N" if math.isnan(growth) else yes_no(growth > 1) +
        " in direction (grows with N)"
    ])
    return rows
