"""Training a blind denoiser: random noise level per image, noise-prediction target, checkpoints.

    loss = mean over the batch of  w(sigma) * || net(x + sigma n) - sigma n ||^2,
    sigma = U^2 (paper) or log-uniform,  w = 1 (paper) or 1 / sigma^2.

Checkpoints carry the config, the optimizer and RNG states, the history and the data
fingerprint; they are written atomically, and a resumed run ends bit-for-bit where an
uninterrupted one would (on CPU). A finished run drops its optimizer state (`optimizer` is
None): nothing resumes it, since another step count is another config.

Under torchrun (distributed.py) the ranks train one model with DistributedDataParallel: every
rank draws the same global batch, sigmas and noise from the shared generator and trains on its
slice, so that the run follows a single process's; rank 0 evaluates and writes checkpoints.
"""
from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__, config, distributed
from .analysis import evaluate_psnr
from .config import TrainConfig
from .data import fingerprint
from .models import build_model
from .sampling import sample

COMPILE_MIN_STEPS = 2_000  # torch.compile's warm-up (15-40 s on CPU) pays off only on longer runs


class TrainingDiverged(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint is kept."""


class CheckpointCorrupt(RuntimeError):
    """A checkpoint file is truncated or damaged (an interrupted copy, a full disk)."""


@dataclass(frozen=True)
class SpeedFlags:
    """How a model is trained, not what it learns: recorded beside its TrainConfig in the
    checkpoint (`speed`), never in it, so that no checkpoint goes stale when they change.
    Evaluation, Jacobians and sampling always run in fp32 without them."""

    compile: bool = False  # torch.compile the training forward pass
    channels_last: bool = False  # NHWC memory format for weights and inputs
    bf16: bool = False  # bf16 autocast of the forward pass (weights, optimizer, BN stats in fp32)

    @classmethod
    def fastest(cls, device, steps: int, bf16: bool = False) -> "SpeedFlags":
        """The fastest path that keeps results (benchmarks/train_speed.py,
        tools/compare_training.py): channels_last, and torch.compile for runs long enough to
        repay its warm-up (on CPU it needs a C compiler); all in fp32. `bf16` adds bf16 autocast
        where the hardware has it: 2.2-2.7x instead of 1.2-1.6x on these CPUs, but its disk model
        ended 0.3-0.5 dB below the fp32 one at sigma <= 0.02, so it is opt-in."""
        if str(device).startswith("cuda"):
            can_bf16, can_compile = torch.cuda.is_bf16_supported(), True
        else:
            can_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            can_compile = shutil.which(os.environ.get("CC", "cc")) is not None
        return cls(compile=can_compile and steps >= COMPILE_MIN_STEPS, channels_last=True,
                   bf16=bf16 and can_bf16)

    def autocast(self, device):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


# Where a watched run draws its samples, as fractions of its steps: about two per octave.
WATCH_FRACTIONS = tuple(k / 96 for k in (1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 80, 96))


@dataclass(frozen=True)
class Watch:
    """Samples drawn with Algorithm 1 from seeds 0 .. seeds-1 at chosen steps of a run
    (chapter 07: memorization against training time). Recorded beside the config, like the
    speed flags: sampling uses its own generators, so the run trains exactly as without it."""

    steps: tuple
    seeds: int

    @classmethod
    def for_run(cls, total_steps: int, seeds: int) -> "Watch":
        steps = sorted({round(f * total_steps) for f in WATCH_FRACTIONS} - {0})
        return cls(tuple(steps), seeds)

    def draw(self, model, size: int) -> torch.Tensor:
        was_training = model.training
        images = sample(model, range(self.seeds), shape=(1, size, size), progress=False).images
        model.train(was_training)
        return images.half().cpu()


def speed_flags(cfg: TrainConfig, device, fast: bool | None = None,
                bf16: bool | None = None) -> SpeedFlags:
    """The flags of a run: the fastest path that keeps results unless `fast` is False (or
    DIFFGEN_FAST=0); bf16 autocast too when `bf16` is True (or DIFFGEN_BF16=1)."""
    if fast is None:
        fast = os.environ.get("DIFFGEN_FAST", "1") != "0"
    if bf16 is None:
        bf16 = os.environ.get("DIFFGEN_BF16", "0") == "1"
    return SpeedFlags.fastest(device, cfg.steps, bf16=bf16) if fast else SpeedFlags()


def sample_sigmas(cfg: TrainConfig, n: int, g: torch.Generator, device) -> torch.Tensor:
    u = torch.rand(n, generator=g, device=device)
    if cfg.sigma_sampling == "uniform_squared":
        return u**2
    if cfg.sigma_sampling == "log_uniform":  # from sigma_min to 1
        return cfg.sigma_min**(1 - u)
    raise ValueError(f"unknown sigma_sampling {cfg.sigma_sampling!r}")


def learning_rate(cfg: TrainConfig, step: int) -> float:
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
    if cfg.lr_schedule == "halvings":
        return cfg.lr * 0.5**sum(step >= round(f * cfg.steps) for f in cfg.lr_halvings)
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}; use 'halvings' or 'cosine'")


def loss_fn(
    cfg: TrainConfig, model, x: torch.Tensor, g: torch.Generator, speed: SpeedFlags = SpeedFlags(),
    part: slice = slice(None)) -> torch.Tensor:
    """The loss on `x[part]`: sigmas and noise are drawn for the whole batch `x`, so that `g`
    and the images' noise are the same whichever part a process trains on."""
    sigma = sample_sigmas(cfg, len(x), g, x.device).view(-1, 1, 1, 1)
    noise = torch.randn(x.shape, generator=g, device=x.device) * sigma
    x, sigma, noise = x[part], sigma[part], noise[part]
    with speed.autocast(x.device):
        predicted = model(x + noise)
    per_image = (predicted.float() - noise).pow(2).sum(dim=(1, 2, 3))
    if cfg.loss_weighting == "inverse_variance":
        per_image = per_image / sigma.view(-1).clamp_min(cfg.sigma_min)**2
    elif cfg.loss_weighting != "none":
        raise ValueError(f"unknown loss_weighting {cfg.loss_weighting!r}")
    return per_image.mean()


def save_atomic(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """The checkpoint at `path`; CheckpointCorrupt, with the command that rebuilds it, when the
    file is truncated or damaged."""
    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as error:  # torch reports damage as RuntimeError, OSError, EOFError, ...
        if _is_intact_archive(path):
            raise  # a whole file that fails for another reason (e.g. a CUDA map_location)
        raise CheckpointCorrupt(f"checkpoint {path} is truncated or corrupt. "
                                f"{_rebuild_hint(path)}") from error


def _is_intact_archive(path: Path) -> bool:
    """Whether `path` is a complete zip archive (torch.save's format) whose every CRC matches."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def _rebuild_hint(path: Path) -> str:
    """How to rebuild a zoo checkpoint, checkpoints/<profile>/<name>.pt."""
    if path.parent.name in config.PROFILE_NAMES:
        return (f"Delete it and rebuild it with: python -m diffgen_utils.train --profile "
                f"{path.parent.name} --only {path.stem}")
    return "Delete it and train it again with the code that wrote it."


def environment() -> dict:
    return {
        "torch": str(torch.__version__), "numpy": np.__version__, "diffgen": __version__, "python":
        platform.python_version()
    }


def machine(device: str) -> str:
    name = f"{platform.machine()}, {os.cpu_count()} cpus, torch threads {torch.get_num_threads()}"
    if str(device).startswith("cuda") and torch.cuda.is_available():
        name += ", " + torch.cuda.get_device_name(device)
    if distributed.world_size() > 1:
        name += f", {distributed.world_size()} processes (torchrun)"
    return name


def train(cfg: TrainConfig, train_images: torch.Tensor, test_images: torch.Tensor, path: Path,
          device: str = "cpu", n_eval: int = 256, stop_at: int | None = None,
          progress: bool | None = None, data_print: str | None = None, sigmas=config.EVAL_SIGMAS,
          speed: SpeedFlags | None = None, watch: Watch | None = None) -> dict:
    """Train (or resume) the model of `cfg` on `train_images`; returns the final checkpoint.

    `stop_at` ends the run early after that many steps (the checkpoint then resumes).
    `data_print` names the data in the checkpoint (default: the images' fingerprint; synthetic
    sets pass a hash of their generating recipe). Train and test PSNR are evaluated at `sigmas`
    every `cfg.eval_every` steps. `speed`: default `speed_flags(cfg, device)`; with every flag
    off a resumed run is bit-exact on CPU. `watch` draws samples at its steps into the
    checkpoint's `watched` list ({"step", "images"} in fp16). Under torchrun every rank calls
    it with the same arguments (`device` "cuda" is the rank's GPU) and trains on its share of
    each batch.
    """
    if len(train_images) != cfg.n_train:
        raise ValueError(f"config says n_train={cfg.n_train}, got {len(train_images)} images")
    part = distributed.share(cfg.batch)
    data_print = data_print or fingerprint(train_images)
    speed = speed_flags(cfg, device) if speed is None else speed
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    state = {"step": 0, "history": [], "wall_time": 0.0, "watched": []}
    if path.exists():
        ckpt = load_checkpoint(path, map_location=device)
        if TrainConfig.from_dict(ckpt["config"]) != cfg or ckpt["data_fingerprint"] != data_print:
            raise ValueError(f"{path} belongs to another config or data set; move it away "
                             f"to retrain")
        model.load_state_dict(ckpt["state_dict"])
        if ckpt["optimizer"] is not None:  # None once finished
            optimizer.load_state_dict(ckpt["optimizer"])
        g.set_state(ckpt["rng_state"].cpu())
        state = {k: ckpt[k] for k in ("step", "history", "wall_time")}
        state["watched"] = ckpt.get("watched", [])
    x_all = train_images.to(device)
    forward = model
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
        x_all = x_all.contiguous(memory_format=torch.channels_last)
    if distributed.world_size() > 1:  # averages the gradients over the ranks; grads that are
        # views of its buckets keep their strides, also in channels_last, and save a copy
        forward = torch.nn.parallel.DistributedDataParallel(model, gradient_as_bucket_view=True)
    if speed.compile:
        forward = torch.compile(forward)
    eval_train = train_images[torch.arange(n_eval) % len(train_images)]
    eval_test = test_images[:n_eval]
    last = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
    show = (not config.batch_mode()) if progress is None else progress
    bar = tqdm(total=last, initial=state["step"], disable=not (show and distributed.is_main()),
               desc=f"train N={cfg.n_train}")
    model.train()
    start = time.perf_counter() - state["wall_time"]
    running = []
    for step in range(state["step"], last):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, step)
        idx = torch.randint(len(x_all), (cfg.batch, ), generator=g, device=device)
        loss = loss_fn(cfg, forward, x_all[idx], g, speed, part)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running.append(loss.detach())
        done = step + 1
        if watch is not None and done in watch.steps and distributed.is_main():
            state["watched"].append({"step": done, "images": watch.draw(model, cfg.size)})
        if done % cfg.eval_every == 0 or done == last:
            mean_loss = distributed.mean_over_ranks(torch.stack(running).mean()).item()
            running = []
            if not np.isfinite(mean_loss):
                raise TrainingDiverged(f"loss became {mean_loss} before step {done}; the last "
                                       f"good checkpoint {path} is kept. Lower lr or check data.")
            if distributed.is_main():  # one evaluator and writer; the other ranks wait
                state["history"].append({
                    "step":
                    done,
                    "loss":
                    mean_loss,
                    "lr":
                    learning_rate(cfg, step),
                    "sigmas": [float(v) for v in sigmas],
                    "train_psnr":
                    evaluate_psnr(model, eval_train, sigmas, seed=1).tolist(),
                    "test_psnr":
                    evaluate_psnr(model, eval_test, sigmas, seed=2).tolist(),
                })
                state["step"], state["wall_time"] = done, time.perf_counter() - start
                save_atomic(
                    {
                        "state_dict": {k: v.contiguous()
                                       for k, v in model.state_dict().items()},
                        "optimizer": optimizer.state_dict() if done < cfg.steps else None,
                        "rng_state": g.get_state(),
                        "config": cfg.to_dict(),
                        "data_fingerprint": data_print,
                        "versions": environment(),
                        "machine": machine(device),
                        "speed": asdict(speed),
                        "watch": asdict(watch) if watch else None,
                        **state,
                    }, path)
            distributed.barrier()
            bar.set_postfix(loss=f"{mean_loss:.3g}")
        bar.update(1)
    bar.close()
    return load_checkpoint(path)


if __name__ == "__main__":  # python -m diffgen_utils.train: the CLI (train_cli) needs zoo
    from diffgen_utils.train_cli import main

    main()
