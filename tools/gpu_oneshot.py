"""Timings at the paper's scale, then the book's synthetic models trained: one lent-GPU run.

On the device machine (from the repository root):

    python tools/gpu_oneshot.py --out "$OUT"                 # about 8 minutes (--budget-s 480)

It needs only torch and numpy (tqdm and PIL get empty stand-ins where missing), no data folder
(synthetic images only) and no `pip install -e .`. Stages (`--stages`, default all), in order,
each adding its numbers to `$OUT/gpu_oneshot.json`, which is rewritten after every stage and
every model, so a run cut short still returns what it measured:

  env       torch, CUDA, the device and its capability
  speed     training img/s of the paper's UNet (80x80, 3 blocks, width 64, batch 512) on synthetic
            disks, with the fast path (SpeedFlags.fastest: channels_last, torch.compile), with
            bf16 autocast added (opt-in), and plain; warm-ups (compilation) timed apart
  jacobian  the full 6400 x 6400 Jacobian of that UNet (jacobian.jacobian, default method)
            against the authors' per-pixel loop (loop_rows of benchmarks/jacobian.py on a
            subset of rows, extrapolated to all rows); the rows of both are compared
  train     the manifold and C^alpha models of the profile book-next (the book's next recipes:
            only models trained differently from the shipped ones), with their exact configs, as long as the
            budget lasts: each model's time is estimated from a short timing of its
            own training step before it starts; the first one that does not fit is trained as
            far as it fits (a checkpoint that resumes, on a CUDA device), and no other starts.
            The ray is skipped: its face comes from CelebA, which does not travel.

Finished checkpoints are packed into `$OUT/checkpoints/checkpoints-<k>.tar` (each under 16 MiB),
so the device's limit of 8 returned files holds however many models finish; only the model in
training when a run is cut short stays a loose `.pt`. A model whose training fails under
torch.compile is trained again without it, and so are the models after it; DIFFGEN_FAST=0
trains every model in plain fp32 eager mode.

Bringing the results home (the folder the tool returned, `files_at`):

    python tools/gpu_oneshot.py --bring-home /path/to/returned/files
    python -m diffgen_utils.train --profile book-next --list

`--bring-home` copies the finished checkpoints into checkpoints/book-next/ (replacing those of
the same name) and records them in its manifest.json; DESIGN.md says how a finished family moves
into the book. The zoo loads a checkpoint only when its config and data fingerprint match, so
one trained for another config is simply not used. Unfinished checkpoints stay
in the returned folder: their random state is a CUDA generator's, so they resume on a CUDA
device only (extract one from its tar into checkpoints/book-next/, then `python -m
diffgen_utils.train --profile book-next --only NAME --device cuda`).

`--profile-size smoke` runs every stage tiny on the CPU (16x16 images, the smoke profile's
models, a few steps): tests/test_gpu_oneshot.py does.
"""
from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import sys
import tarfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

STARTED = time.perf_counter()
STAGES = ("env", "speed", "jacobian", "train")
MAX_FILE_BYTES = 16 * 2**20  # the device returns files up to 16 MiB ...
TAR_OVERHEAD_BYTES = 64 * 2**10  # ... a tar's headers and end blocks stay below this
RESERVE_S = 15  # budget kept for packing and the last report
COMPILE_WARMUP_S = 90  # torch.compile's warm-up where stage speed did not measure it
EVAL_MARGIN = 1.25  # a model's step time with its evaluations, over the bare timed step


class SilentBar:
    """The part of a tqdm bar that diffgen_utils.train uses; shows nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        pass


def stand_in(package: str, submodule: str, **attributes) -> bool:
    """Register empty modules `package` and `package.submodule` (holding `attributes`) when the
    real ones cannot be imported; True if it did."""
    try:
        importlib.import_module(f"{package}.{submodule}")
        return False
    except ImportError:
        pass
    # with a spec (of no file), as importlib.util.find_spec, called by torch._dynamo, expects
    top, sub = (importlib.util.module_from_spec(importlib.machinery.ModuleSpec(name, None))
                for name in (package, f"{package}.{submodule}"))
    sub.__dict__.update(attributes)
    setattr(top, submodule, sub)
    sys.modules.update({package: top, f"{package}.{submodule}": sub})
    return True


# diffgen_utils imports tqdm (progress bars, silent here) and PIL (reading image files, which
# this script never does) at module level; the device machine may lack either. Stand-ins go in
# before the package is imported, and the repository root goes on the path (no install needed).
STAND_INS = [
    name for name, missing in (("tqdm", stand_in("tqdm", "auto", tqdm=SilentBar)),
                               ("PIL", stand_in("PIL", "Image"))) if missing
]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks.jacobian import loop_rows  # noqa: E402
from diffgen_utils import config, families, jacobian, synthetic, zoo  # noqa: E402
from diffgen_utils.models import build_model  # noqa: E402
from diffgen_utils.train import (
    SpeedFlags,
    environment,
    load_checkpoint,
    loss_fn,  # noqa: E402
    speed_flags,
    train)


@dataclass(frozen=True)
class Scale:
    """How big a run is: the profile whose face model is timed, the one whose models are trained."""

    bench_profile: str
    train_profile: str
    device: str
    timed_steps: int  # training steps timed after the warm-up
    loop_rows: int  # Jacobian rows computed by the per-pixel loop


SCALES = {
    "full": Scale("paper", "book-next", "cuda", timed_steps=30, loop_rows=256),
    "smoke": Scale("smoke", "smoke", "cpu", timed_steps=3, loop_rows=16),
}
WARMUP_STEPS = 3  # the first steps, compilation included, timed apart


def elapsed() -> float:
    return time.perf_counter() - STARTED


def log(message: str) -> None:
    print(f"[{elapsed():5.0f} s] {message}", flush=True)


def synchronize(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def bench_config(scale: Scale, n_train: int) -> config.TrainConfig:
    """The face model of the bench profile (paper: 80x80, 3 blocks, width 64, batch 512)."""
    return config.get_profile(scale.bench_profile).train_config("disks", n_train)


def disks(n: int, size: int) -> torch.Tensor:
    return synthetic.disks(n, size, seed=0)[0]


# ------------------------------------------------------------------------------------- stages


def stage_env(scale: Scale, device: str) -> dict:
    info = {
        **environment(), "device": device, "cpus": os.cpu_count(), "stand_ins": STAND_INS, "cuda":
        torch.version.cuda
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(device)
        info.update(name=props.name, capability=list(torch.cuda.get_device_capability(device)),
                    memory_gib=round(props.total_memory / 2**30,
                                     1), bf16=torch.cuda.is_bf16_supported())
    else:
        info.update(name="cpu", capability=None)
    return info


def time_training(cfg: config.TrainConfig, images: torch.Tensor, speed: SpeedFlags, device: str,
                  steps: int) -> dict:
    """Seconds of the first WARMUP_STEPS training steps (compilation included) and of each step
    after them, run as diffgen_utils.train.train runs them (same loss, flags and optimizer)."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device)
    x = images.to(device)
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if speed.compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator(device=device).manual_seed(cfg.seed)

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            idx = torch.randint(len(x), (cfg.batch, ), generator=g, device=device)
            loss = loss_fn(cfg, forward, x[idx], g, speed)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        synchronize(device)
        return time.perf_counter() - start

    warmup_s = run(WARMUP_STEPS)
    step_s = run(steps) / steps
    return {
        "speed": asdict(speed), "warmup_s": round(warmup_s, 3), "step_s": round(step_s, 6),
        "images_per_s": round(cfg.batch / step_s, 1)
    }


def stage_speed(scale: Scale, device: str) -> dict:
    cfg = bench_config(scale, n_train=2 * config.get_profile(scale.bench_profile).batch)
    images = disks(cfg.n_train, cfg.size)
    result = {"config": cfg.to_dict(), "timed_steps": scale.timed_steps}
    paths = {
        "fast": SpeedFlags.fastest(device, cfg.steps), "plain": SpeedFlags(), "bf16":
        SpeedFlags.fastest(device, cfg.steps, bf16=True)
    }  # bf16: opt-in
    for label, speed in paths.items():
        result[label] = time_training(cfg, images, speed, device, scale.timed_steps)
        log(f"speed {label}: {result[label]['images_per_s']} img/s, "
            f"warm-up {result[label]['warmup_s']} s")
    for label in ("fast", "bf16"):
        result[f"speedup_{label}"] = round(
            result[label]["images_per_s"] / result["plain"]["images_per_s"], 2)
    return result


def stage_jacobian(scale: Scale, device: str) -> dict:
    cfg = bench_config(scale, n_train=1)
    torch.manual_seed(0)
    model = build_model(cfg).to(device).eval()
    y = disks(1, cfg.size)[0] + 0.1 * torch.randn(1, cfg.size, cfg.size,
                                                  generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # first CUDA / cuDNN calls, kept out of the timings
        model(y[None].to(device))
    d = cfg.size**2
    rows = torch.linspace(0, d - 1, scale.loop_rows).long().tolist()
    loop_rows(model, y, rows=rows[:2])  # warm-up of the loop

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        synchronize(device)
        return out, time.perf_counter() - start

    J, full_s = timed(lambda: jacobian.jacobian(model, y))
    J_rows, loop_s = timed(lambda: loop_rows(model, y, rows=rows))
    loop_estimate_s = loop_s * d / len(rows)
    log(f"jacobian of {d} pixels: {full_s:.1f} s; the loop {loop_estimate_s:.1f} s (estimate)")
    difference = ((J[rows] - J_rows).abs().max() / J_rows.abs().max()).item()
    return {
        "size": cfg.size, "blocks": cfg.blocks, "width": cfg.width, "pixels": d, "method":
        jacobian.resolve_method(model), "full_s": round(full_s, 3), "loop_rows": len(rows),
        "loop_rows_s": round(loop_s, 3), "loop_estimate_s": round(loop_estimate_s, 2), "speedup":
        round(loop_estimate_s / full_s, 2), "max_relative_difference": difference
    }


@dataclass
class Cost:
    """Predicted seconds of training a model: fixed_s (warm-up) + steps * step_s."""

    fixed_s: float
    step_s: float


def steps_that_fit(cfg: config.TrainConfig, cost: Cost, seconds_left: float) -> int:
    """The steps of cfg to train in seconds_left: all if they fit, else whole evaluation periods
    (a checkpoint that resumes), else 0."""
    fit = int((seconds_left - cost.fixed_s) / cost.step_s)
    if fit >= cfg.steps:
        return cfg.steps
    return max(0, fit // cfg.eval_every * cfg.eval_every)


def pack(checkpoint: Path) -> Path:
    """Append a checkpoint to the last checkpoints-<k>.tar beside it (a new one when it would
    pass MAX_FILE_BYTES) and delete it; returns the tar."""
    packs = sorted(checkpoint.parent.glob("checkpoints-*.tar"),
                   key=lambda tar: int(tar.stem.rpartition("-")[2]))
    target = packs[-1] if packs else checkpoint.parent / "checkpoints-1.tar"
    if target.exists() and (target.stat().st_size + checkpoint.stat().st_size + TAR_OVERHEAD_BYTES
                            > MAX_FILE_BYTES):
        target = checkpoint.parent / f"checkpoints-{len(packs) + 1}.tar"
    with tarfile.open(target, "a") as tar:
        tar.add(checkpoint, arcname=checkpoint.name)
    checkpoint.unlink()
    return target


def train_falling_back(train_with, speed: SpeedFlags, entry: dict):
    """train_with(speed), and once more without torch.compile where it failed with it (the error
    noted in entry). Returns (the checkpoint, or None after an error; the flags last used)."""
    try:
        return train_with(speed), speed
    except Exception as err:  # recorded; the next model may still train
        entry["compile_error" if speed.compile else "error"] = f"{type(err).__name__}: {err}"
        if not speed.compile:
            return None, speed
    return train_falling_back(train_with, replace(speed, compile=False), entry)


def stage_train(scale: Scale, device: str, deadline: float, out: Path, report: dict) -> None:
    """Train the models into report["train"], rewriting the report after each.

    A model's step is timed without torch.compile (one compilation per model is enough); where
    its run compiles, the fast path's warm-up of stage speed (a larger model) stands for it."""
    p = config.get_profile(scale.train_profile)
    names = families.model_names(p, "manifolds") + families.model_names(p, "calpha")
    folder = out / "checkpoints"
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty; give an empty --out")
    folder.mkdir(parents=True, exist_ok=True)
    result = report["train"] = {"profile": p.name, "models": {}}
    costs = {}  # by model shape: every model of one shape trains at the same speed
    compile_warmup_s = report.get("speed", {}).get("fast", {}).get("warmup_s", COMPILE_WARMUP_S)
    use_compile = True  # until torch.compile fails once
    stopped = False
    for name in names:
        entry = result["models"][name] = {}
        if stopped:
            entry["skipped"] = "out of budget"
            continue
        t0 = time.perf_counter()
        s = zoo.spec(name, p)
        if s.pool.substitute:
            entry["skipped"] = "needs the CelebA faces, which do not travel"
            continue
        cfg, train_x, test_x = s.config, s.train_images(p), s.test_images(p)
        entry["data_s"] = round(time.perf_counter() - t0, 1)
        speed = speed_flags(cfg, device)
        speed = replace(speed, compile=speed.compile and use_compile)
        shape = (cfg.arch, cfg.size, cfg.blocks, cfg.width, cfg.batch)
        if shape not in costs:
            timing = time_training(cfg, train_x, replace(speed, compile=False), device,
                                   scale.timed_steps)
            warmup_s = compile_warmup_s if speed.compile else timing["warmup_s"]
            costs[shape] = Cost(warmup_s, timing["step_s"] * EVAL_MARGIN)
        cost = costs[shape]
        steps = steps_that_fit(cfg, cost, deadline - time.perf_counter() - RESERVE_S)
        entry["predicted_s"] = round(cost.fixed_s + cfg.steps * cost.step_s, 1)
        if steps == 0:
            entry["skipped"] = "out of budget"
            stopped = True
            continue
        log(f"train {name}: {steps} of {cfg.steps} steps, predicted "
            f"{cost.fixed_s + steps * cost.step_s:.0f} s")
        path = folder / f"{name}.pt"
        t0 = time.perf_counter()
        ckpt, speed = train_falling_back(
            lambda flags: train(cfg, train_x, test_x, path, device=device, n_eval=p.n_eval, stop_at
                                =steps, progress=False, speed=flags, data_print=s.pool.fingerprint(
                                    cfg.n_train, cfg.subset), sigmas=zoo.eval_sigmas(cfg)), speed,
            entry)
        entry["speed"] = asdict(speed)
        use_compile = use_compile and "compile_error" not in entry
        if ckpt is not None:
            wall = time.perf_counter() - t0
            cost.step_s = max(cost.step_s, (wall - cost.fixed_s) / steps)
            last = ckpt["history"][-1]
            entry.update(steps=ckpt["step"], finished=ckpt["step"] >= cfg.steps,
                         wall_s=round(wall, 1), sigmas=last["sigmas"],
                         final_test_psnr=[round(v, 3) for v in last["test_psnr"]])
        if path.exists():
            entry["pack"] = f"checkpoints/{pack(path).name}"
        stopped = steps < cfg.steps
        write_report(report, out)
    failed = [name for name, entry in result["models"].items() if "error" in entry]
    if failed:
        raise RuntimeError(f"training failed for {', '.join(failed)} (see their entries)")


# ------------------------------------------------------------------------------ report, CLI


def write_report(report: dict, out: Path) -> None:
    report["elapsed_s"] = round(elapsed(), 1)
    tmp = out / "gpu_oneshot.json.tmp"
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, out / "gpu_oneshot.json")


def run(scale: Scale, device: str, budget_s: float, out: Path, stages) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    deadline = STARTED + budget_s
    report = {
        "scale": asdict(scale), "device": device, "budget_s": budget_s, "stages": list(stages),
        "errors": {}
    }
    functions = {"env": stage_env, "speed": stage_speed, "jacobian": stage_jacobian}
    for stage in stages:
        log(f"stage {stage}")
        try:
            if stage == "train":
                stage_train(scale, device, deadline, out, report)
            else:
                report[stage] = functions[stage](scale, device)
        except Exception as err:  # recorded; the next stage still runs
            report["errors"][stage] = f"{type(err).__name__}: {err}"
            log(f"stage {stage} failed: {report['errors'][stage]}")
        write_report(report, out)
    return report


def bring_home(results: Path) -> None:
    """Copy the finished checkpoints of a returned run into checkpoints/<profile>/, record them
    in the book's manifest.json, and print each model's state in the zoo."""
    report = json.loads((results / "gpu_oneshot.json").read_text())
    if "train" not in report:
        raise SystemExit(f"{results} holds no trained models (stages: {report['stages']})")
    p = config.get_profile(report["train"]["profile"])
    home = config.checkpoint_dir(p.name)
    home.mkdir(parents=True, exist_ok=True)
    for name, entry in report["train"]["models"].items():
        if not entry.get("finished"):
            why = entry.get("skipped") or entry.get("error") or f"stopped at step {entry['steps']}"
            print(f"{name:32s} not brought home: {why}")
            continue
        with tarfile.open(results / entry["pack"]) as tar:
            tar.extract(f"{name}.pt", home, filter="data")
        if not p.train_missing:  # a shipped profile's manifest
            zoo.update_manifest(name, p, load_checkpoint(home / f"{name}.pt"))
        print(f"{name:32s} {zoo.status(name, p)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"),
                        help="folder for the report and checkpoints (default: $OUT)")
    parser.add_argument(
        "--budget-s", type=float, default=480,
        help="wall seconds for the whole run; training stops starting models "
        "that would pass it (default 480)")
    parser.add_argument(
        "--profile-size", choices=tuple(SCALES), default="full",
        help="full: paper-size timings and the book's models on the GPU; "
        "smoke: everything tiny, on the CPU")
    parser.add_argument("--device", default=None, help="default: cuda (full) or cpu (smoke)")
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma list of {', '.join(STAGES)} (default: all, in that order)")
    parser.add_argument("--bring-home", type=Path, metavar="RESULTS",
                        help="copy a returned run's finished checkpoints into checkpoints/")
    args = parser.parse_args(argv)
    if args.bring_home:
        bring_home(args.bring_home)
        return 0
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown or args.out is None:
        parser.error(f"unknown stages {sorted(unknown)}" if unknown else "give --out or set $OUT")
    scale = SCALES[args.profile_size]
    device = args.device or scale.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here; use --profile-size smoke or --device cpu")
    report = run(scale, device, args.budget_s, args.out, [s for s in STAGES if s in stages])
    log(f"done; report in {args.out / 'gpu_oneshot.json'}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
