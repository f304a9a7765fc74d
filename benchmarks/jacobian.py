"""Time the ways of computing the d x d Jacobian of a denoiser (diffgen_utils.jacobian).

For the Table-1 UNets of the paper (1 block at 20x20, 2 at 40x40, 3 at 80x80; width 64; random
init, BN running statistics from one train-mode forward on random data, then eval) it times

  loop            one torch.autograd.grad per output pixel (the authors' code): the baseline
  autograd_batch  y replicated `chunk` times, one backward with a basis chunk as grad_outputs
  vjp             torch.func.vmap over torch.func.vjp, chunks of basis vectors
  jvp             torch.func.vmap over torch.func.jvp (forward mode, columns)
  frozen          ReLU masks frozen at y, basis chunks pushed through the net without autograd
  local           the frozen net's adjoint on tiles of output pixels, on local windows

The library computes J with "local" or "frozen" only; the loop and the dense autodiff methods it
is compared with are defined here (`loop_rows` is also the reference of tools/gpu_oneshot.py).

and prints each time with its speed-up over the loop. A method whose full run is predicted (from
a timed pilot on an evenly spread subset of its chunks / rows) to take longer than
--full-limit-s is not run in full: its time is the pilot's extrapolation, marked "~" (estimate).

    python benchmarks/jacobian.py --sizes 20,40 --threads 1
    python benchmarks/jacobian.py --sizes 80 --methods loop,frozen:32,local:16 --device cuda

"local" and "frozen" include their built-in jvp check (about three forward passes). On a machine
where another job keeps a core busy, pass --threads 1: with two OpenMP threads each small op
waits for the busy core (~16 ms), which made the loop 50x slower at 20x20 in our runs.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from diffgen_utils import jacobian as jm  # noqa: E402
from diffgen_utils.models import UNet, denoise  # noqa: E402

BLOCKS = {20: 1, 40: 2, 80: 3, 160: 4}
DEFAULT_METHODS = ("loop,autograd_batch:64,vjp:64,vjp:256,jvp:64,frozen:32,frozen:128,"
                   "local:16,local:64")
DENSE_CHUNK = {"cpu": 64, "cuda": 256}  # default basis vectors per batch of a dense method


def loop_rows(model, y, rows=None) -> torch.Tensor:
    """Rows of J by one torch.autograd.grad per output pixel (the authors' loop; the reference).

    rows: output-pixel indices (default: all d); returns (len(rows), d).
    """
    model, y4 = jm._prepare(model, y, None)
    d = y4.numel()
    rows = range(d) if rows is None else list(rows)
    with jm._eval_mode(model), jm._no_tf32():
        yv = y4.clone().requires_grad_(True)
        out = denoise(model, yv).reshape(-1)
        J = torch.empty(len(rows), d, dtype=y4.dtype, device=y4.device)
        for k, j in enumerate(rows):
            (g, ) = torch.autograd.grad(out[j], yv, retain_graph=True)
            J[k] = g.reshape(-1)
    return J


def vjp_rows(model, y4, chunk, part=None):
    """Rows of J: torch.func.vmap over torch.func.vjp on chunks of basis vectors."""
    _, _, H, W = y4.shape
    d = H * W
    _, vjp_fn = torch.func.vjp(lambda v: denoise(model, v), y4)
    rows = torch.func.vmap(lambda u: vjp_fn(u)[0])
    J = torch.zeros(d, d, dtype=y4.dtype, device=y4.device)
    for start in jm._starts(d, chunk, part):
        stop = min(d, start + chunk)
        e = jm._basis(start, stop, d, (1, 1, H, W), y4.dtype, y4.device)
        J[start:stop] = rows(e).reshape(stop - start, d).detach()
    return J


def jvp_columns(model, y4, chunk, part=None):
    """Columns of J: torch.func.vmap over forward-mode torch.func.jvp."""
    _, _, H, W = y4.shape
    d = H * W
    cols = torch.func.vmap(lambda u: torch.func.jvp(lambda v: denoise(model, v), (y4, ), (u, ))[1])
    J = torch.zeros(d, d, dtype=y4.dtype, device=y4.device)
    for start in jm._starts(d, chunk, part):
        stop = min(d, start + chunk)
        e = jm._basis(start, stop, d, (1, 1, H, W), y4.dtype, y4.device)
        J[:, start:stop] = cols(e).reshape(stop - start, d).T.detach()
    return J


def autograd_batch_rows(model, y4, chunk, part=None):
    """Rows of J: y replicated `chunk` times (eval-mode BN does not mix the batch), one forward,
    one torch.autograd.grad with the basis chunk as grad_outputs."""
    _, _, H, W = y4.shape
    d = H * W
    J = torch.zeros(d, d, dtype=y4.dtype, device=y4.device)
    for start in jm._starts(d, chunk, part):
        stop = min(d, start + chunk)
        yb = y4.expand(stop - start, 1, H, W).clone().requires_grad_(True)
        e = jm._basis(start, stop, d, (1, H, W), y4.dtype, y4.device)
        (g, ) = torch.autograd.grad(denoise(model, yb), yb, grad_outputs=e)
        J[start:stop] = g.reshape(stop - start, d)
    return J


DENSE = {"vjp": vjp_rows, "jvp": jvp_columns, "autograd_batch": autograd_batch_rows}
METHODS = ("loop", *DENSE, *jm.METHODS)


def default_chunk(method: str, device: torch.device) -> int | None:
    if method == "loop":
        return None
    return DENSE_CHUNK[device.type] if method in DENSE else jm.default_chunk(method, device)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(device: torch.device) -> str:
    load = "n/a"
    if hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    dev = cpu_name()
    if device.type == "cuda":
        dev = f"{torch.cuda.get_device_name(device)} (host CPU: {cpu_name()})"
    return (f"device: {dev} | cpu count {os.cpu_count()} | torch threads "
            f"{torch.get_num_threads()} | load average {load} | torch {torch.__version__}")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_model(size: int, width: int, device: torch.device, seed: int = 0):
    torch.manual_seed(seed)
    model = UNet(blocks=BLOCKS[size], width=width)
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        model(torch.rand(16, 1, size, size, generator=g))  # BN running statistics
    model.eval().to(device)
    y = torch.rand(1, size, size, generator=g).to(device)
    return model, y


def n_units(method: str, d: int, side: int, chunk: int | None) -> int:
    """How many chunks (rows for the loop, tiles for local) a full run has."""
    if method == "loop":
        return d
    if method == "local":
        t = max(1, int(round(math.sqrt(chunk))))
        return math.ceil(side / t)**2
    return math.ceil(d / chunk)


def run_method(model, y, method: str, chunk: int | None, part: slice | None = None,
               check: bool = True):
    """The (possibly partial) Jacobian; `part` selects chunks / rows / tiles for a pilot."""
    if method == "loop":
        return loop_rows(model, y, rows=None if part is None else range(y.numel())[part])
    if method in jm.METHODS and part is None:
        return jm.jacobian(model, y, method=method, chunk=chunk, check=check)
    y4 = y.reshape(1, 1, *y.shape[-2:])
    with jm._eval_mode(model), jm._no_tf32():
        return {**DENSE, **jm._FUNCS}[method](model, y4, chunk, part=part)


def time_method(model, y, method, chunk, device, repeats, full_limit_s, pilot_fraction):
    d, side = y.numel(), y.shape[-1]
    total = n_units(method, d, side, chunk)
    pilot_units = max(1, round(total * pilot_fraction))
    stride = max(1, total // pilot_units)
    part = slice(0, None, stride)
    measured = len(range(total)[part])
    sync(device)
    t0 = time.perf_counter()
    run_method(model, y, method, chunk, part)
    sync(device)
    pilot = time.perf_counter() - t0
    predicted = pilot * total / measured
    if predicted > full_limit_s:
        unit = "rows" if method == "loop" else "tiles" if method == "local" else "chunks"
        return predicted, True, None, f"estimate from {measured}/{total} {unit}"
    times, J = [], None
    for _ in range(repeats):
        J = None
        sync(device)
        t0 = time.perf_counter()
        J = run_method(model, y, method, chunk)
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), False, J, f"median of {repeats}" if repeats > 1 else ""


def parse_methods(text: str):
    out = []
    for item in text.split(","):
        name, _, chunk = item.strip().partition(":")
        if name not in METHODS:
            raise SystemExit(f"unknown method {name!r}; choose from {METHODS}")
        out.append((name, int(chunk) if chunk else None))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="20,40,80", help="image sides, from 20,40,80,160")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--repeats", type=int, default=1, help="full runs per method (median)")
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help="comma-separated method[:chunk] (chunk = tile area for local)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--full-limit-s", type=float, default=120.0,
                   help="estimate a method from a pilot when its full run would take longer")
    p.add_argument("--pilot-fraction", type=float, default=1 / 64,
                   help="share of the chunks / rows / tiles timed in a pilot (at least one)")
    p.add_argument("--loop-full-max", type=int, default=40,
                   help="largest side at which the loop may run in full (above: estimate)")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    methods = parse_methods(args.methods)
    print(machine_line(device))
    print(
        f"UNet width {args.width}; float32; chunk = basis vectors per batch (local: tile area); "
        f"'~' = estimate from a pilot, not a full run;\nrel. diff = max|J - J_ref| / "
        f"max|J_ref - I| (J_ref: the first method run in full)\n", flush=True)
    header = f"{'size':>5} {'blocks':>6} {'method':>15} {'chunk':>6} {'time [s]':>10} " \
             f"{'vs loop':>8} {'rel. diff':>11}  note"
    results = {}
    for size in sizes:
        model, y = make_model(size, args.width, device)
        print(header)
        # warm-up: first convolutions, and torch.func.jvp's one-time setup (~1 s on a CPU) that
        # the built-in check of local / frozen would otherwise pay inside its timing
        torch.func.jvp(model, (y[None], ), (y[None], ))
        ref, loop_time = None, None
        for name, chunk in methods:
            chunk_eff = chunk or default_chunk(name, device)
            limit = args.full_limit_s
            if name == "loop" and size > args.loop_full_max:
                limit = 0.0  # always an estimate
            seconds, estimate, J, note = time_method(model, y, name, chunk_eff, device,
                                                     args.repeats, limit, args.pilot_fraction)
            diff = ""
            if J is not None:
                if ref is None:
                    ref = J.double().cpu()
                    eye = torch.eye(len(ref), dtype=ref.dtype)
                    scale = (ref - eye).abs().max().item()  # the net's part of J
                    diff = "(ref)"
                else:
                    diff = f"{(J.double().cpu() - ref).abs().max().item() / scale:.1e}"
            del J
            if name == "loop":
                loop_time = seconds
            speed = f"{loop_time / seconds:.2f}x" if loop_time else "-"
            shown = f"{'~' if estimate else ''}{seconds:.2f}"
            print(
                f"{size:>5} {BLOCKS[size]:>6} {name:>15} {str(chunk_eff or '-'):>6} "
                f"{shown:>10} {speed:>8} {diff:>11}  {note}", flush=True)
            results[(size, name, chunk_eff)] = (seconds, estimate)
        print(flush=True)
        del ref

    print("summary: time [s] (speed-up vs the loop at the same size; ~ = estimate)")
    keys = list(dict.fromkeys((n, c) for (_, n, c) in results))
    print(f"{'method':>22} " + " ".join(f"{f'{s}x{s}':>20}" for s in sizes))
    for name, chunk in keys:
        cells = []
        for s in sizes:
            if (s, name, chunk) not in results:
                cells.append(f"{'':>20}")
                continue
            sec, est = results[(s, name, chunk)]
            loop = results.get((s, "loop", None), (None, ))[0]
            ratio = f" ({loop / sec:.2f}x)" if loop else ""
            cells.append(f"{(('~' if est else '') + f'{sec:.1f}' + ratio):>20}")
        label = f"{name}:{chunk}" if chunk else name
        print(f"{label:>22} " + " ".join(cells))
    print("\n" + machine_line(device))


if __name__ == "__main__":
    main()
