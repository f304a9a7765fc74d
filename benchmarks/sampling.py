"""Batched sampling (Algorithm 1, diffgen_utils.sampling) against one seed at a time.

With the shipped book model celeba-N13000-S1 (20x20), draws `--seeds` samples in one batch and
the first `--single-seeds` of them one at a time, alternating the two arms for `--rounds`
rounds, and prints the seconds per sample of each arm (median over rounds) and their ratio.
Each sample runs until its own noise estimate reaches sigma_final, so the mean number of
iterations of each arm is printed beside its time.

    python benchmarks/sampling.py --threads 1
    python benchmarks/sampling.py --seeds 256 --single-seeds 16 --rounds 3

The model loads without the face data; with DIFFGEN_DATA pointing at it (CI: ../shared/data)
the zoo also checks the checkpoint's data fingerprint.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from diffgen_utils import zoo  # noqa: E402
from diffgen_utils.sampling import sample  # noqa: E402

MODEL = "celeba-N13000-S1"


def timed_samples(model, seed_groups: list[list[int]], shape) -> tuple[float, float]:
    """(seconds, mean iterations per sample) of sampling each group of seeds in one batch."""
    start = time.perf_counter()
    steps = torch.cat([sample(model, seeds, shape, progress=False).steps for seeds in seed_groups])
    return time.perf_counter() - start, steps.float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=64, help="samples of the batched arm")
    parser.add_argument("--single-seeds", type=int, default=8,
                        help="samples of the one-at-a-time arm (its time is per sample)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = zoo.load(MODEL, "book")
    shape = (1, loaded.config.size, loaded.config.size)
    arms = {
        f"batch of {args.seeds}": ([list(range(args.seeds))], args.seeds), "one at a time":
        ([[s] for s in range(args.single_seeds)], args.single_seeds)
    }
    per_sample = {arm: [] for arm in arms}
    iterations = {}
    for _ in range(args.rounds):
        for arm, (groups, n) in arms.items():
            seconds, iterations[arm] = timed_samples(loaded.model, groups, shape)
            per_sample[arm].append(seconds / n)
    print(f"{MODEL} ({shape[1]}x{shape[2]}, width {loaded.config.width}), torch threads "
          f"{args.threads}, median of {args.rounds} rounds")
    print(f"{'arm':<16} {'samples':>7} {'iterations':>10} {'ms/sample':>10}")
    for arm, (_, n) in arms.items():
        print(f"{arm:<16} {n:>7} {iterations[arm]:>10.1f} "
              f"{1e3 * statistics.median(per_sample[arm]):>10.1f}")
    batched, single = (statistics.median(per_sample[arm]) for arm in arms)
    print(f"batched sampling is {single / batched:.1f}x faster per sample")


if __name__ == "__main__":
    main()
