"""Two side-by-side comparisons behind the synthetic models of chapters 05-06.

- Recipe: the shipped synthetic recipe ("shipped") against the steady one ("steady"), both in
  plain fp32 eager mode.
- bf16: the steady recipe trained again with bf16 autocast, channels_last and torch.compile
  ("steady_bf16"), which had to reach the fp32 model's test PSNR within 0.2 dB at every sigma to
  become the default fast path. It did not at sigma <= 0.02, so the default (`SpeedFlags.fastest`)
  stays in fp32 and bf16 is opt-in.

Every arm trains the two-block UNet on the book's disks (20x20, N = 20,000) for the same number
of training images, in its own process on one core; then each is measured where chapter 06
measures (test PSNR at every evaluated sigma; top-5 tangent overlap, directions kept and gain at
sigma = 0.04 on 8 held-out disks). The result is a small JSON that the book shows
(checkpoints/book/training_comparison.json); the models stay in cache/comparison/.

    OMP_NUM_THREADS=1 python tools/compare_training.py --arm shipped &
    OMP_NUM_THREADS=1 python tools/compare_training.py --arm steady &
    wait; OMP_NUM_THREADS=1 python tools/compare_training.py --arm steady_bf16
    python tools/compare_training.py --report
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from diffgen_utils import analysis, config, synthetic, zoo  # noqa: E402
from diffgen_utils.chapters import manifolds  # noqa: E402
from diffgen_utils.train import SpeedFlags, train  # noqa: E402

IMAGES = 400_000  # training images seen by each arm
EVALS = 10  # evaluations per arm
MODEL = "disks-N20000"
BF16_PATH = SpeedFlags(compile=True, channels_last=True, bf16=True)
ARMS = {  # arm: (recipe, speed flags)
    "shipped": (replace(config.BOOK_SYNTHETIC_RECIPE, blocks=2), SpeedFlags()),
    "steady": (config.STEADY_SYNTHETIC_RECIPE, SpeedFlags()),
    "steady_bf16": (config.STEADY_SYNTHETIC_RECIPE, BF16_PATH),
}
OUT = config.REPO_ROOT / "checkpoints" / "book" / "training_comparison.json"


def arm_profile(arm: str) -> config.Profile:
    recipe = ARMS[arm][0]
    steps = IMAGES // recipe.batch
    recipe = replace(recipe, size=20, steps=steps, eval_every=steps // EVALS)
    return config.get_profile("book", manifolds=config.ManifoldModels(recipe=recipe))


def arm_path(arm: str) -> Path:
    return config.cache_dir() / "comparison" / f"{MODEL}-{arm}.pt"


def train_arm(arm: str) -> None:
    p = arm_profile(arm)
    s = zoo.spec(MODEL, p)
    train(s.config, s.train_images(p), s.test_images(p), arm_path(arm), n_eval=p.n_eval,
          data_print=s.pool.fingerprint(s.config.n_train, s.config.subset),
          sigmas=zoo.eval_sigmas(s.config), speed=ARMS[arm][1])


def measure(arm: str) -> dict:
    p = arm_profile(arm)
    net = zoo.load(MODEL, p, train_missing=False, path=arm_path(arm))
    x, theta = manifolds.held_out_disks(8, p.manifold_size)
    fits = manifolds.analyze_all(net.model, x, manifolds.DISK_SIGMA, seed=0)
    rows = manifolds.disk_overlap_rows(fits, synthetic.disk_tangent_space(theta, p.manifold_size),
                                       theta)
    h = net.history
    return {
        "config":
        net.config.to_dict(),
        "speed":
        net.checkpoint["speed"],
        "wall_time_s":
        round(net.checkpoint["wall_time"], 1),
        "images": [e["step"] * net.config.batch for e in h],
        "sigmas":
        h[-1]["sigmas"],
        "test_psnr": [e["test_psnr"] for e in h],
        "loss": [e["loss"] for e in h],
        "tangent_overlap":
        float(np.mean([r[8] for r in rows])),
        "kept_directions":
        float(np.mean([r[9] for r in rows])),
        "gain_db":
        float(
            np.mean([
                analysis.psnr(a.x[None], a.fy[None]).item() -
                analysis.psnr(a.x[None], a.y[None]).item() for a in fits
            ])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=tuple(ARMS))
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.arm:
        train_arm(args.arm)
    if args.report:
        arms = {a: measure(a) for a in ARMS if arm_path(a).exists()}
        result = {"model": MODEL, "images": IMAGES, "arms": arms}
        OUT.write_text(json.dumps(result, indent=1) + "\n")
        for arm, r in result["arms"].items():
            print(f"{arm:8s} overlap {r['tangent_overlap']:.3f}  kept {r['kept_directions']:.1f}"
                  f"  gain {r['gain_db']:.2f} dB  wall {r['wall_time_s']:.0f} s")


if __name__ == "__main__":
    main()
