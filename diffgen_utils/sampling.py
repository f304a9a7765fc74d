"""Algorithm 1 of the paper: sampling by stochastic ascent of log p, using the denoiser residual.

    y0 = m + sigma0 * z0
    repeat t = 1, 2, ...:
        d_t = f(y_{t-1}) - y_{t-1}                  (= sigma^2 * score, by Tweedie/Miyasawa)
        sigma_t = ||d_t|| / sqrt(dim);  stop when sigma_t <= sigma_final
        h_t = h0 t / (1 + h0 (t - 1))
        gamma_t^2 = ((1 - beta h_t)^2 - (1 - h_t)^2) sigma_t^2
        y_t = y_{t-1} + h_t d_t + gamma_t z_t
    return f(y_last)        (one last denoising step, as the authors' code)

Every sample owns a generator seeded with its seed, so sample i with seed s is the same in any
batch, and two models sampled with the same seeds share y0 and every z_t.

Within one book run, chapters that sample the same model with the same seeds share the samples:
the runner names a folder in $DIFFGEN_SAMPLE_CACHE (cleared when the run starts), and `sample`
keeps every seed's result there, keyed by the model's weights, the image shape, the settings and
the device (`sample_cache_file`). Without the variable (interactive use, tests) nothing is kept.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import config
from .models import denoise, model_device


@dataclass(frozen=True)
class SamplerSettings:
    h0: float = 0.01
    beta: float = 0.1
    sigma0: float = 1.0
    sigma_final: float = 0.05
    init_mean: float = 0.5  # the mean m of y0: the paper's code uses 0 (earlier code 0.5)
    max_steps: int = 1000
    final_denoise: bool = True


@dataclass
class Samples:
    images: torch.Tensor  # (n, 1, H, W)
    seeds: list[int]
    settings: SamplerSettings
    steps: torch.Tensor  # iterations each sample took
    converged: torch.Tensor  # False where max_steps ran out first
    sigmas: list[list[float]]  # effective sigma_t of each sample at each step
    trajectories: list[dict] = field(default_factory=list)  # per sample: y and f(y) snapshots


def step_size(t: int, h0: float) -> float:
    """h_t = h0 t / (1 + h0 (t - 1)): h0 at t = 1, growing towards 1."""
    return h0 * t / (1 + h0 * (t - 1))


def effective_sigma(d: torch.Tensor) -> torch.Tensor:
    """sigma_t = ||d_t|| / sqrt(N) of each residual d_t (n, ...), N its number of pixels."""
    return d.flatten(1).norm(dim=1) / d[0].numel()**0.5


def noise_amplitude(h: float, beta: float, sigma: torch.Tensor) -> torch.Tensor:
    """gamma_t = sqrt((1 - beta h_t)^2 - (1 - h_t)^2) sigma_t: the injected noise that leaves
    the next step at noise level (1 - beta h_t) sigma_t."""
    return ((1 - beta * h)**2 - (1 - h)**2)**0.5 * sigma


@torch.no_grad()
def sample(model: torch.nn.Module, seeds, shape=None, settings: SamplerSettings | None = None,
           record_every: int | None = None, batch: int = 256, progress: bool | None = None,
           noise_seeds=None, **overrides) -> Samples:
    """Draw one sample per seed with Algorithm 1. `shape` = (1, H, W) of one image.

    `record_every=k` keeps y_t and f(y_t) every k steps (and the last) for every sample.
    `noise_seeds` (one per seed) draws the injected noise z_t from other generators than y0:
    the same start with different paths.
    """
    settings = settings or SamplerSettings()
    if overrides:
        settings = SamplerSettings(**{**settings.__dict__, **overrides})
    if shape is None:
        raise ValueError("give the image shape, e.g. shape=(1, 20, 20)")
    seeds = [int(s) for s in seeds]
    noise_seeds = seeds if noise_seeds is None else [int(s) for s in noise_seeds]
    if len(noise_seeds) != len(seeds):
        raise ValueError("give one noise seed per seed")
    model.eval()
    device = model_device(model)
    show = (not config.batch_mode()) if progress is None else progress
    cache = sample_cache_file(model, shape, settings) if (record_every is None
                                                          and noise_seeds == seeds) else None
    if cache is not None:
        return _sample_cached(model, seeds, tuple(shape), settings, batch, show, device, cache)
    parts = [
        _sample_chunk(model, seeds[i:i + batch], noise_seeds[i:i + batch], tuple(shape), settings,
                      record_every, device)
        for i in tqdm(range(0, len(seeds), batch), disable=not show, desc="sampling")
    ]
    return Samples(
        images=torch.cat([p["images"] for p in parts]),
        seeds=seeds,
        settings=settings,
        steps=torch.cat([p["steps"] for p in parts]),
        converged=torch.cat([p["converged"] for p in parts]),
        sigmas=[s for p in parts for s in p["sigmas"]],
        trajectories=[t for p in parts for t in p["trajectories"]],
    )


SAMPLE_CACHE_ENV = "DIFFGEN_SAMPLE_CACHE"


def model_digest(model: torch.nn.Module) -> str:
    """A digest of a model's class, weights and buffers (batch-norm statistics included)."""
    h = hashlib.sha1(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def sample_cache_file(model: torch.nn.Module, shape, settings: SamplerSettings) -> Path | None:
    """Where `sample` keeps this model's samples in the folder $DIFFGEN_SAMPLE_CACHE (None when
    it is unset): one file per model weights, image shape, settings and device type."""
    folder = os.environ.get(SAMPLE_CACHE_ENV)
    if not folder:
        return None
    key = f"{model_digest(model)}|{tuple(shape)}|{settings!r}|{model_device(model).type}"
    return Path(folder) / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.pt"


def _sample_cached(model, seeds, shape, settings, batch, show, device, path: Path) -> Samples:
    """`sample` through the cache file `path`: only the seeds not in it are drawn, then kept."""
    kept = torch.load(path, weights_only=True) if path.exists() else {}
    new = [seed for seed in dict.fromkeys(seeds) if seed not in kept]
    for i in tqdm(range(0, len(new), batch), disable=not show or not new, desc="sampling"):
        part = _sample_chunk(model, new[i:i + batch], new[i:i + batch], shape, settings, None,
                             device)
        for j, seed in enumerate(new[i:i + batch]):
            kept[seed] = {
                "image": part["images"][j], "steps": part["steps"][j], "converged":
                part["converged"][j], "sigmas": torch.tensor(part["sigmas"][j],
                                                             dtype=torch.float64)
            }
    if new:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(kept, tmp)
        os.replace(tmp, path)
    rows = [kept[seed] for seed in seeds]
    return Samples(images=torch.stack([r["image"] for r in rows]), seeds=list(seeds),
                   settings=settings, steps=torch.stack([r["steps"] for r in rows]),
                   converged=torch.stack([r["converged"] for r in rows]),
                   sigmas=[r["sigmas"].tolist() for r in rows], trajectories=[])


def _sample_chunk(model, seeds, noise_seeds, shape, s: SamplerSettings, record_every,
                  device) -> dict:
    n = len(seeds)
    gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    y = torch.stack([s.init_mean + s.sigma0 * torch.randn(shape, generator=g) for g in gens])
    if noise_seeds != seeds:
        gens = [torch.Generator().manual_seed(seed) for seed in noise_seeds]
    y = y.to(device)
    out = torch.empty_like(y)
    steps = torch.zeros(n, dtype=torch.long)
    converged = torch.zeros(n, dtype=torch.bool)
    sigmas = [[] for _ in range(n)]
    trajectories = [{"step": [], "y": [], "denoised": []} for _ in range(n)] \
        if record_every else []
    active = torch.arange(n)
    for t in range(1, s.max_steps + 1):
        f_y = denoise(model, y[active])
        d = f_y - y[active]
        sigma = effective_sigma(d)
        h = step_size(t, s.h0)
        gamma = noise_amplitude(h, s.beta, sigma)
        done = (sigma <= s.sigma_final).cpu()
        for j, i in enumerate(active.tolist()):
            sigmas[i].append(float(sigma[j]))
            if record_every and ((t - 1) % record_every == 0 or done[j]):
                trajectories[i]["step"].append(t - 1)
                trajectories[i]["y"].append(y[i].cpu().clone())
                trajectories[i]["denoised"].append(f_y[j].cpu().clone())
        finished = active[done]
        out[finished] = f_y[done] if s.final_denoise else y[finished]
        steps[finished], converged[finished] = t, True
        keep = ~done
        active, f_y, d, gamma = active[keep], f_y[keep], d[keep], gamma[keep]
        if len(active) == 0:
            break
        z = torch.stack([torch.randn(shape, generator=gens[i]) for i in active.tolist()])
        y[active] = y[active] + h * d + gamma.view(-1, 1, 1, 1) * z.to(device)
        if t == s.max_steps:  # ran out of steps: return the current estimate
            out[active] = f_y if s.final_denoise else y[active]
            steps[active] = t
    for traj in trajectories:
        traj["y"], traj["denoised"] = torch.stack(traj["y"]), torch.stack(traj["denoised"])
    return {
        "images": out.cpu(), "steps": steps, "converged": converged, "sigmas": sigmas,
        "trajectories": trajectories
    }
