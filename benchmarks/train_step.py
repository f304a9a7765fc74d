"""Time one training step (forward, loss, backward, Adam) of the book's UNets at several face sizes.

For each size, the UNet of Table 1 (config.unet_blocks: 1 block at 10x10 and 20x20, 2 at 40x40)
at the book's width and batch, on random images, plus the depth control of chapter 02 (the
book's face size with Profile.faces.deeper_blocks); prints ms per step, the time of a whole book
run (profile steps), and the ratio to the book's 20x20 one-block model ("vs book"), all from
the same run.

    python benchmarks/train_step.py --sizes 10,20,40 --threads 1

The ratios are what to compare: absolute times depend on what else the machine is doing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from diffgen_utils import config  # noqa: E402
from diffgen_utils.models import build_model  # noqa: E402
from diffgen_utils.train import loss_fn  # noqa: E402


def step_time(cfg: config.TrainConfig, steps: int, warmup: int = 3) -> float:
    """Median seconds per training step of cfg's model on random images."""
    model = build_model(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(cfg.batch, 1, cfg.size, cfg.size, generator=g)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(cfg, model, x, g).backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,20,40")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    book = config.get_profile("book")
    sizes = [int(s) for s in args.sizes.split(",")]
    models = [(size, config.unet_blocks(size)) for size in sizes]
    models.append((book.face_size, book.faces.deeper_blocks))
    times = {}
    for size, blocks in models:
        cfg = book.train_config("celeba", 1, size=size, blocks=blocks)
        times[size, blocks] = step_time(cfg, args.steps)
    reference = times.get((book.face_size, book.blocks), next(iter(times.values())))
    print(f"book profile: width {book.width}, batch {book.batch}, {book.steps} steps per face "
          f"model; torch threads {args.threads}")
    print(f"{'size':>6} {'blocks':>6} {'ms/step':>8} {'book run (min)':>15} {'vs book':>9}")
    for (size, blocks), seconds in times.items():
        print(f"{size:>4}px {blocks:>6} {1e3 * seconds:>8.1f} {seconds * book.steps / 60:>15.1f} "
              f"{seconds / reference:>8.2f}x")


if __name__ == "__main__":
    main()
