"""The training command: train (or resume) the named models of a profile.

    python -m diffgen_utils.train --profile book [--family faces|calpha|manifolds|all]
                                  [--only NAME ...] [--list] [--device cuda]
    python -m diffgen_utils.train --profile book-next --promote NAME ...   # into book

It lives apart from train.py because it names models through the zoo, which itself imports
train; `python -m diffgen_utils.train` runs `main` here.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from . import config, distributed, families, zoo


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Train (or resume) the named models of a "
                                     "profile. Checkpoints resume where they stopped.")
    parser.add_argument("--profile", default="book", choices=config.PROFILE_NAMES)
    parser.add_argument("--only", nargs="*", default=None,
                        help="model names (default: all models of --family)")
    parser.add_argument("--family", default="faces", choices=families.FAMILY_CHOICES,
                        help="which models (default: faces)")
    parser.add_argument("--device", default=None, help="default: the profile's device")
    parser.add_argument("--list", action="store_true", help="list the models and their state")
    parser.add_argument(
        "--promote", nargs="+", metavar="NAME",
        help="move these finished models of --profile (book-next) into the "
        "profile it replaces, whose config must already declare them")
    parser.add_argument("--no-fast-path", action="store_true",
                        help="train in plain fp32 eager mode (the same as DIFFGEN_FAST=0)")
    parser.add_argument(
        "--bf16", action="store_true",
        help="add bf16 autocast to the fast path (DIFFGEN_BF16=1): faster, but "
        "it costs up to 0.5 dB at small noise (tools/compare_training.py)")
    args = parser.parse_args(argv)
    if args.no_fast_path:
        os.environ["DIFFGEN_FAST"] = "0"
    if args.bf16:
        os.environ["DIFFGEN_BF16"] = "1"
    if args.promote:
        folder = zoo.promote(args.promote, args.profile)
        print(f"moved {len(args.promote)} models into {folder}; stage them with "
              "`git add -A checkpoints`")
        return
    names = args.only or families.model_names(args.profile, args.family)
    if args.list:
        for name in names:
            print(f"{name:32s} {zoo.status(name, args.profile)}")
        return
    with distributed.process_group(args.device or config.get_profile(args.profile).device):
        for name in names:  # under torchrun, every rank trains every model together
            t0 = time.perf_counter()
            try:
                zoo.load(name, args.profile, device=args.device, train_missing=True)
            except zoo.ModelBusy as busy:
                report = f"{name}: skipped, {busy}"
            else:
                report = f"{name}: ready ({time.perf_counter() - t0:.0f} s)"
            if distributed.is_main():
                print(report, file=sys.stderr)
