"""Images per second of a training step (forward, loss, backward, Adam): the authors' plain step
against the project's, with each of its speed flags (diffgen_utils.train.SpeedFlags).

Candidates:

  authors           "authors' step", a compact rewrite of it: their bias-free UNet (BF batch
                    norm dividing by x.var over (N, H, W), in-place ReLUs, no biases), Adam,
                    sigma = U^2, squared error summed per image and averaged over the batch;
                    fp32, eager
  eager             the project's step (loss_fn, build_model), fp32, eager: SpeedFlags()
  cl                channels_last (NHWC) weights and inputs
  bf16, bf16+cl     bf16 autocast of the forward pass; only where the CPU has native bf16
                    (AVX512-BF16 or AMX) or on a GPU that supports it
  compile, compile+cl, compile+bf16+cl
                    torch.compile of the forward pass; the last is SpeedFlags.fastest

Models: the book's face models (faces20: 20x20, one block; faces40: 40x40, two blocks), the
synthetic families' two-block 32x32 UNet (calpha32) and the manifolds' two-block 20x20 one
(manifolds20). For each model, width and batch the candidates run round-robin, a few steps each
per round (the first candidate moves on by one every round), so that whatever else the machine
does slows them all alike; a step's time is the median over rounds. Warm-up (the first three
steps, torch.compile's compilation included, less when inductor's on-disk cache already holds
the graph) is reported apart.

    python benchmarks/train_speed.py                          # faces20, manifolds20; batch 32, 64
    python benchmarks/train_speed.py --models manifolds20,calpha32 --batch 64 --widths 32,64
    python benchmarks/train_speed.py --candidates authors,eager,compile+bf16+cl --models faces40
    python benchmarks/train_speed.py --models manifolds20 --batch 64 --threads-split

--threads-split also runs the fastest flags (SpeedFlags.fastest) as one trainer with two threads
and as two concurrent trainers (processes) with one thread each, in alternating phases, and
prints the images per second of each setup. Ratios are what to compare: absolute times depend
on what else runs on the machine (the load average is printed).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from diffgen_utils import config  # noqa: E402
from diffgen_utils.models import build_model  # noqa: E402
from diffgen_utils.train import SpeedFlags, loss_fn  # noqa: E402

MODELS = {  # name: (image side, UNet blocks, what trains it)
    "faces20": (20, 1, "book faces"),
    "faces40": (40, 2, "faces, Table 1 at 40x40"),
    "calpha32": (32, 2, "synthetic families"),
    "manifolds20": (20, 2, "manifolds"),
}
CANDIDATES = {
    "authors": None,  # printed as "authors' step"
    "eager": SpeedFlags(),
    "cl": SpeedFlags(channels_last=True),
    "bf16": SpeedFlags(bf16=True),
    "bf16+cl": SpeedFlags(bf16=True, channels_last=True),
    "compile": SpeedFlags(compile=True),
    "compile+cl": SpeedFlags(compile=True, channels_last=True),
    "compile+bf16+cl": SpeedFlags(compile=True, bf16=True, channels_last=True),
}
POOL_IMAGES = 1024  # random training images each step draws its batch from
WARMUP_STEPS = 3

# --- the authors' step, rewritten ------------------------------------------------------------


class AuthorsBatchNorm(nn.Module):
    """Their bias-free batch norm, training mode: x / sqrt(x.var over (N, H, W) + 1e-5) * gamma."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("running_sd", torch.ones(1, channels, 1, 1))
        gammas = (torch.randn(1, channels, 1, 1) * 2 / 9 / 64).clamp(-0.025, 0.025)
        self.gammas = nn.Parameter(gammas)

    def forward(self, x):
        sd = torch.sqrt(x.var(dim=(0, 2, 3), keepdim=True, unbiased=False) + 1e-5)
        with torch.no_grad():
            self.running_sd.copy_(0.9 * self.running_sd + 0.1 * sd)
        return x / sd.expand_as(x) * self.gammas.expand_as(x)


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        AuthorsBatchNorm(c_out),
        nn.ReLU(inplace=True)
    ]


class AuthorsUNet(nn.Module):
    """Two 3x3 convs per block (the first encoder conv has no BN), 2x2 average pooling with
    channel doubling, transposed-conv upsampling, skip concatenation, a last linear conv."""

    def __init__(self, blocks: int, width: int):
        super().__init__()
        ch = [width * 2**b for b in range(blocks + 1)]
        self.encoder = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.ReLU(
                inplace=True), *conv_bn_relu(width, width))
        ] + [
            nn.Sequential(*conv_bn_relu(ch[b - 1], ch[b]), *conv_bn_relu(ch[b], ch[b]))
            for b in range(1, blocks)
        ])
        self.mid = nn.Sequential(*conv_bn_relu(ch[-2], ch[-1]), *conv_bn_relu(ch[-1], ch[-1]))
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(ch[b + 1], ch[b], 2, stride=2, bias=False) for b in range(blocks))
        self.decoder = nn.ModuleList([
            nn.Sequential(*conv_bn_relu(2 * width, width),
                          nn.Conv2d(width, 1, 3, padding=1, bias=False))
        ] + [
            nn.Sequential(*conv_bn_relu(2 * ch[b], ch[b]), *conv_bn_relu(ch[b], ch[b]))
            for b in range(1, blocks)
        ])
        self.pool = nn.AvgPool2d(2, stride=2)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x):
        skips = []
        for block in self.encoder:
            skips.append(block(x))
            x = self.pool(skips[-1])
        x = self.mid(x)
        for b in reversed(range(len(self.decoder))):
            x = self.decoder[b](torch.cat([self.upsample[b](x), skips[b]], dim=1))
        return x


def authors_step(cfg: config.TrainConfig, images: torch.Tensor, g: torch.Generator):
    model = AuthorsUNet(cfg.blocks, cfg.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def step():
        clean = images[torch.randint(len(images), (cfg.batch, ), generator=g)]
        sigma = torch.rand(cfg.batch, 1, 1, 1, generator=g)**2
        noise = torch.randn(clean.shape, generator=g) * sigma
        optimizer.zero_grad()
        loss = (model(clean + noise) - noise).pow(2).sum() / cfg.batch
        loss.backward()
        optimizer.step()

    return step


# --- the project's step ----------------------------------------------------------------------


def project_step(cfg: config.TrainConfig, images: torch.Tensor, g: torch.Generator,
                 speed: SpeedFlags):
    """The body of diffgen_utils.train.train's loop, set up as train() sets it up."""
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    forward = model
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    if speed.compile:  # one input shape per trainer, as in training: no dynamic shapes
        forward = torch.compile(model, dynamic=False)
    model.train()

    def step():
        idx = torch.randint(len(images), (cfg.batch, ), generator=g)
        loss = loss_fn(cfg, forward, images[idx], g, speed)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def make_step(name: str, cfg: config.TrainConfig):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(POOL_IMAGES, 1, cfg.size, cfg.size, generator=g)
    if CANDIDATES[name] is None:
        return authors_step(cfg, images, g)
    return project_step(cfg, images, g, CANDIDATES[name])


def train_config(model: str, width: int, batch: int) -> config.TrainConfig:
    size, blocks, _ = MODELS[model]
    return config.get_profile("book").train_config("celeba", 1, size=size, blocks=blocks,
                                                   width=width, batch=batch)


# --- timing ----------------------------------------------------------------------------------


def timed(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - start


def race(cfg: config.TrainConfig, names: list[str], rounds: int, round_s: float) -> dict:
    """{name: (seconds per step, warm-up seconds)}, the candidates interleaved round-robin."""
    torch._dynamo.reset()  # each model, width and batch compiles afresh
    steps, warmup, per_round = {}, {}, {}
    for name in names:
        steps[name] = make_step(name, cfg)
        warmup[name] = timed(steps[name], WARMUP_STEPS)
        per_round[name] = max(1, round(round_s / (timed(steps[name], 2) / 2)))
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(timed(steps[name], per_round[name]) / per_round[name])
    return {name: (statistics.median(times[name]), warmup[name]) for name in names}


def split_worker(conn, model: str, width: int, batch: int, speed: SpeedFlags, threads: int):
    """A trainer in its own process: warms up, then runs for as many seconds as it is sent and
    answers (images, seconds) until it is sent None."""
    torch.set_num_threads(threads)
    cfg = train_config(model, width, batch)
    step = project_step(cfg, torch.rand(POOL_IMAGES, 1, cfg.size, cfg.size), torch.Generator(),
                        speed)
    timed(step, WARMUP_STEPS)
    conn.send("ready")
    while (seconds := conn.recv()) is not None:
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            done += 1
        conn.send((done * batch, time.perf_counter() - start))


def threads_split(model: str, width: int, batch: int, speed: SpeedFlags, rounds: int,
                  phase_s: float) -> dict:
    """Images/s of one 2-thread trainer and of two concurrent 1-thread trainers (their sum),
    measured in alternating phases."""
    context = multiprocessing.get_context("spawn")  # forking after OpenMP has started can hang
    setups = {"one trainer, 2 threads": [2], "two trainers, 1 thread each": [1, 1]}
    workers = {}
    for setup, threads in setups.items():
        workers[setup] = []
        for n in threads:
            ours, theirs = context.Pipe()
            process = context.Process(target=split_worker,
                                      args=(theirs, model, width, batch, speed, n))
            process.start()
            workers[setup].append((ours, process))
    for ours, _ in sum(workers.values(), []):
        ours.recv()  # ready
    rates = {setup: [] for setup in setups}
    for _ in range(rounds):
        for setup, pairs in workers.items():
            for ours, _ in pairs:
                ours.send(phase_s)
            rates[setup].append(
                sum(images / seconds for images, seconds in (ours.recv() for ours, _ in pairs)))
    for ours, process in sum(workers.values(), []):
        ours.send(None)
        process.join()
    return {setup: statistics.median(r) for setup, r in rates.items()}


# --- report ----------------------------------------------------------------------------------


def machine_line() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip()
                  for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor())
    amx = sorted({flag for flag in cpuinfo.split() if flag.startswith("amx")})
    return (f"{model}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}; torch "
            f"{torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}, "
            f"native bf16 {bf16_supported()}, AMX {' '.join(amx) or 'no'}")


def bf16_supported() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def ratio(seconds: float, reference: float | None) -> str:
    return f"{reference / seconds:.2f}x" if reference else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="faces20,manifolds20",
                        help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--widths", default="32", help="base channels (book 32, paper 64)")
    parser.add_argument("--batch", default="32,64", help="batch sizes (book 32)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES),
                        help=f"comma-separated, of {', '.join(CANDIDATES)}")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--round-s", type=float, default=0.25,
                        help="seconds each candidate runs per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--threads-split", action="store_true",
                        help="also compare one 2-thread trainer with two 1-thread trainers")
    parser.add_argument("--phase-s", type=float, default=2.0,
                        help="seconds of each --threads-split phase")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.candidates.split(",")
    unknown = set(names) - set(CANDIDATES) | set(args.models.split(",")) - set(MODELS)
    if unknown:
        parser.error(f"unknown models or candidates: {', '.join(sorted(unknown))}")
    if not bf16_supported():
        names = [name for name in names if "bf16" not in name]
    print(machine_line())
    print(
        f"torch threads {args.threads}; {args.rounds} rounds of ~{args.round_s} s per candidate; "
        f"warm-up = first {WARMUP_STEPS} steps")
    groups = [(model, int(width), int(batch)) for model in args.models.split(",")
              for width in args.widths.split(",") for batch in args.batch.split(",")]
    header = (f"{'model':<12} {'width':>5} {'batch':>5}  {'candidate':<16} {'ms/step':>8} "
              f"{'img/s':>7} {'vs eager':>9} {'vs authors':>10} {'warm-up s':>9}")
    print(header)
    for model, width, batch in groups:
        results = race(train_config(model, width, batch), names, args.rounds, args.round_s)
        eager, authors = (results.get(n, (None, ))[0] for n in ("eager", "authors"))
        for name, (seconds, warmup) in results.items():
            label = "authors' step" if name == "authors" else name
            print(f"{model:<12} {width:>5} {batch:>5}  {label:<16} {1e3 * seconds:>8.1f} "
                  f"{batch / seconds:>7.0f} {ratio(seconds, eager):>9} "
                  f"{ratio(seconds, authors):>10} {warmup:>9.1f}")
    if args.threads_split:
        speed = SpeedFlags.fastest("cpu", steps=config.get_profile("book").steps)
        print(f"\nthreads split, {speed} (images/s, median of {args.rounds} alternating "
              f"phases of {args.phase_s:g} s)")
        for model, width, batch in groups:
            rates = threads_split(model, width, batch, speed, args.rounds, args.phase_s)
            (one, one_rate), (two, two_rate) = rates.items()
            print(f"{model:<12} {width:>5} {batch:>5}  {one}: {one_rate:.0f}   {two}: "
                  f"{two_rate:.0f}   ({two_rate / one_rate:.2f}x)")


if __name__ == "__main__":
    main()
