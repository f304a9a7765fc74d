"""Named models: load the checkpoint when its config and data match, else train (or say how).

    model = zoo.load("celeba-N13000-S1", "book")

Names (families for `model_names` and `python -m diffgen_utils.train --family`):

- "faces": `celeba-N{n}-S{1|2}` (CelebA faces; N from the profile's n_values),
  `celeba_shuffled-N{n}-S1` (the same faces under one fixed pixel permutation),
  `celeba-N{n}-S1-{size}px` (Fig 15: the faces at another resolution, size from the
  profile's gap_sizes, UNet blocks from Table 1), `celeba-N{n}-S{1|2}-{b}blocks` (a UNet
  of b blocks instead of Table 1's; N from the profile's deeper_ns, S1 also deeper_gap_ns);
  also
  `fer2013-N{n}-S{1|2}` (loadable, not in the family's list).
- "calpha": `calpha{a}-N{n}`: C^alpha images whose contour and backgrounds have regularity a
  (Fig 4); `calpha-c{c}-b{b}-N{n}`: contour regularity c, background b (Figs 16-18; c != b, else
  the name is `calpha{c}-N{n}`). Numbers are written shortest (`1`, `1.5`, never `1.0`).
- "manifolds": `disks-N{n}` (Fig 5), `ray-N{n}` (rescalings of one face, Fig 19),
  `cone-N{n}` (unit-frequency sinusoids, Fig 20). The ray's face is the first test face of
  the CelebA pool at synthetic_size, or the substitute's first image where the profile allows
  substitutes (the model then says substitute=True).

Synthetic sets (synthetic.py) are generated from fixed seeds at the profile's synthetic_size
with the family's training recipe (config.Profile); their parameters are the config's
data_options, and their data fingerprint hashes the generating recipe (SYNTHETIC_VERSION).
A profile's `train_missing` says whether a missing model is trained on the spot (smoke, paper)
or is an error that names the training command (book: the shipped checkpoints).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from . import config, data, distributed, synthetic
from .config import Profile, TrainConfig
from .models import build_model
from .train import load_checkpoint, train

FACE_NAME = re.compile(
    r"^(celeba|celeba_shuffled|fer2013)-N(\d+)-(S1|S2)(?:-(\d+)px)?(?:-(\d+)blocks)?$")
_NUM = r"(\d+(?:\.\d+)?)"
CALPHA_NAME = re.compile(rf"^calpha{_NUM}-N(\d+)$")
CALPHA_CB_NAME = re.compile(rf"^calpha-c{_NUM}-b{_NUM}-N(\d+)$")
MANIFOLD_NAME = re.compile(r"^(disks|ray|cone)-N(\d+)$")
MODEL_FAMILIES = ("faces", "calpha", "manifolds", "all")
NAME_PATTERNS = ("celeba-N<n>-S1|S2[-<size>px][-<b>blocks], celeba_shuffled-N<n>-S1, "
                 "fer2013-N<n>-S1|S2, calpha<a>-N<n>, calpha-c<c>-b<b>-N<n>, disks-N<n>, "
                 "ray-N<n>, cone-N<n>")


@dataclass
class Spec:
    """What a named model is trained on."""

    name: str
    config: TrainConfig
    pool: data.FacePool | synthetic.SyntheticPool | None  # None while only the config is needed

    def train_images(self, profile: Profile) -> torch.Tensor:
        return self.pool.split(self.config.n_train, self.config.subset, profile.n_test)

    def test_images(self, profile: Profile) -> torch.Tensor:
        return self.pool.test(profile.n_test)


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module  # in eval mode
    config: TrainConfig
    checkpoint: dict  # history, fingerprint, versions, machine, wall_time, step
    data_checked: bool  # False when the data folder was absent: fingerprint not checked
    substitute: bool  # True when trained on the synthetic stand-in for missing faces (for the
    # face ray: its one face is the stand-in's first image)

    @property
    def history(self) -> list[dict]:
        return self.checkpoint["history"]


def model_names(profile: str | Profile, family: str | None = None) -> list[str]:
    """The models of a profile: family "faces" (default), "calpha", "manifolds" or "all". A
    profile that `replaces` another (book-next) has only the models it trains differently."""
    p = config.get_profile(profile) if isinstance(profile, str) else profile
    family = family or "faces"
    if family not in MODEL_FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(MODEL_FAMILIES)}")
    faces = [f"celeba-N{n}-{s}" for n in p.n_values for s in ("S1", "S2")]
    faces.append(f"celeba_shuffled-N{max(p.n_values)}-S1")
    faces += [gap_model_name(n, size) for size in p.gap_sizes for n in p.n_values]
    faces += [deeper_model_name(n, s, p.deeper_blocks) for n in p.deeper_ns for s in ("S1", "S2")]
    faces += [deeper_model_name(n, "S1", p.deeper_blocks) for n in p.deeper_gap_ns
              if n not in p.deeper_ns]
    n = p.synthetic_n
    calpha = [synthetic_name("calpha", n, synthetic.data_options("calpha", a))
              for a in p.calpha_alphas]
    for c in p.calpha_contours:  # contour c with the smoother background (Figs 16-18)
        name = synthetic_name("calpha", n, synthetic.data_options("calpha", c, p.calpha_background))
        if name not in calpha:
            calpha.append(name)
    manifolds = [f"{d}-N{n}" for d in ("disks", "ray", "cone")]
    names = {"faces": faces, "calpha": calpha, "manifolds": manifolds,
             "all": faces + calpha + manifolds}[family]
    if p.replaces:  # only the models whose config differs from the replaced profile's
        base = config.get_profile(p.replaces)
        names = [name for name in names if _config(name, p) != _config(name, base)]
    return names


def gap_model_name(n: int, size: int) -> str:
    """The S1 face model of Fig 15 at another resolution than the profile's."""
    return f"celeba-N{n}-S1-{size}px"


def deeper_model_name(n: int, subset: str, blocks: int) -> str:
    """A face model at the profile's resolution with `blocks` UNet blocks (chapter 02's depth
    control)."""
    return f"celeba-N{n}-{subset}-{blocks}blocks"


def _number(x: float) -> str:
    """Shortest spelling of a regularity in a name: 4.0 -> "4", 1.5 -> "1.5"."""
    return f"{float(x):g}"


def _parse_number(text: str, name: str) -> float:
    value = float(text)
    if _number(value) != text:
        raise KeyError(f"write {text} as {_number(value)} in model names ({name!r})")
    return value


def synthetic_name(dataset: str, n_train: int, data_options: tuple) -> str:
    """The canonical model name of a synthetic set (inverse of `spec(name).config`)."""
    if dataset == "calpha":
        o = dict(data_options)
        if o["alpha"] == o["beta"]:
            return f"calpha{_number(o['alpha'])}-N{n_train}"
        return f"calpha-c{_number(o['alpha'])}-b{_number(o['beta'])}-N{n_train}"
    if dataset in synthetic.FAMILIES:
        return f"{dataset}-N{n_train}"
    raise ValueError(f"{dataset!r} is not a synthetic family")


def _config(name: str, profile: Profile) -> TrainConfig:
    match = FACE_NAME.match(name)
    if match:
        dataset, n, subset = match.group(1), int(match.group(2)), match.group(3)
        size, blocks = profile.face_size, profile.blocks
        if match.group(4) is not None:
            size = int(match.group(4))
            if size == profile.face_size:
                raise KeyError(f"{name!r}: {size}px is the profile's own face size; leave "
                               f"'-{size}px' out of the name")
            if size < 4:
                raise KeyError(f"{name!r}: faces need at least 4x4 pixels")
            blocks = config.unet_blocks(size)
        if match.group(5) is not None:
            if int(match.group(5)) == blocks:
                raise KeyError(f"{name!r}: {blocks} blocks is the default at {size}x{size}; "
                               f"leave '-{blocks}blocks' out of the name")
            blocks = int(match.group(5))
            if not 1 <= blocks <= 4 or size % 2**blocks:
                raise KeyError(f"{name!r}: a UNet needs 1 to 4 blocks and a size divisible by "
                               f"2**blocks, got {blocks} blocks at {size}x{size}")
        return profile.train_config(dataset, n, subset=subset, size=size, blocks=blocks)
    if match := CALPHA_NAME.match(name):
        alpha = _parse_number(match.group(1), name)
        options, n = synthetic.data_options("calpha", alpha), match.group(2)
    elif match := CALPHA_CB_NAME.match(name):
        c, b = (_parse_number(match.group(i), name) for i in (1, 2))
        if c == b:
            raise KeyError(f"equal regularities: the model is called "
                           f"calpha{_number(c)}-N{match.group(3)}, not {name!r}")
        options, n = synthetic.data_options("calpha", c, b), match.group(3)
    elif match := MANIFOLD_NAME.match(name):
        options, n = synthetic.data_options(match.group(1)), match.group(2)
    else:
        raise KeyError(f"unknown model name {name!r}; known patterns: {NAME_PATTERNS}")
    dataset = "calpha" if name.startswith("calpha") else match.group(1)
    if int(n) < 1:
        raise KeyError(f"N must be at least 1 in {name!r}")
    return profile.synthetic_config(dataset, int(n), options)


def _make_pool(cfg: TrainConfig, substitute_ok: bool = True):
    """The data a config is trained on: a face pool, or a synthetic pool (generated on demand)."""
    if cfg.dataset in synthetic.FAMILIES:
        return synthetic.pool(cfg.dataset, cfg.size, cfg.data_options, substitute_ok)
    return data.face_pool(cfg.dataset, cfg.size, substitute_ok=substitute_ok)


def _fingerprint(pool, cfg: TrainConfig, p: Profile) -> str:
    """The data fingerprint of cfg's training images (of their recipe for synthetic sets)."""
    if isinstance(pool, synthetic.SyntheticPool):
        return pool.fingerprint(cfg.n_train, cfg.subset)
    return data.fingerprint(pool.split(cfg.n_train, cfg.subset, p.n_test))


def spec(name: str, profile: Profile, with_data: bool = True) -> Spec:
    cfg = _config(name, profile)
    return Spec(name, cfg, _make_pool(cfg) if with_data else None)


def eval_sigmas(cfg: TrainConfig) -> tuple:
    """Where a model is evaluated while it trains: the paper's validation grid, plus the
    chapters' analysis noise levels for synthetic sets."""
    if cfg.dataset in synthetic.FAMILIES:
        return tuple(sorted(set(config.EVAL_SIGMAS) | set(config.ANALYSIS_SIGMAS)))
    return config.EVAL_SIGMAS


def checkpoint_path(name: str, profile: Profile) -> Path:
    return config.checkpoint_dir(profile.name) / f"{name}.pt"


def status(name: str, profile: str | Profile) -> str:
    p = config.get_profile(profile) if isinstance(profile, str) else profile
    path = checkpoint_path(name, p)
    if not path.exists():
        return "missing"
    ckpt = load_checkpoint(path)
    cfg = spec(name, p, with_data=False).config
    if TrainConfig.from_dict(ckpt["config"]) != cfg:
        return f"stale (config differs: {diff_configs(ckpt['config'], cfg.to_dict())})"
    return "done" if ckpt["step"] >= cfg.steps else f"at step {ckpt['step']} of {cfg.steps}"


def available(names, profile: str | Profile) -> list[str]:
    """The names (in the given order) whose checkpoint is complete and has the right config.

    Cheap (no data is read): pages use it to show what exists while the rest is still training.
    """
    p = config.get_profile(profile) if isinstance(profile, str) else profile
    return [name for name in names if status(name, p) == "done"]


def diff_configs(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys)


def load(name: str, profile: str | Profile = "book", device: str | None = None,
         train_missing: bool | None = None, path: Path | None = None) -> LoadedModel:
    """The trained model `name` of `profile`; trains or resumes it when allowed.

    `path`: another checkpoint file than the profile's (experiments outside the book's zoo)."""
    p = config.get_profile(profile) if isinstance(profile, str) else profile
    device = device or ("cuda" if p.device == "cuda" and torch.cuda.is_available() else "cpu")
    allowed = p.train_missing if train_missing is None else train_missing
    path = path or checkpoint_path(name, p)
    s = spec(name, p, with_data=False)
    ckpt = load_checkpoint(path) if path.exists() else None
    pool = _pool_or_none(s, p, ckpt)
    problem = None
    if ckpt is None:
        problem = "is missing"
    elif TrainConfig.from_dict(ckpt["config"]) != s.config:
        problem = f"has another config ({diff_configs(ckpt['config'], s.config.to_dict())})"
    elif pool is not None and ckpt["data_fingerprint"] != _fingerprint(pool, s.config, p):
        problem = f"was trained on other images than {name} of {pool.source}"
    elif ckpt["step"] < s.config.steps:
        problem = f"stopped at step {ckpt['step']} of {s.config.steps}"
    problem = distributed.broadcast_object(problem)  # torchrun: every rank decides as rank 0
    if problem:
        if not allowed:
            raise FileNotFoundError(f"checkpoint {path} {problem}. Train it with: python -m "
                                    f"diffgen_utils.train --profile {p.name} --only {name}")
        if ckpt is not None and not problem.startswith("stopped") and distributed.is_main():
            path.unlink()  # another config or data set cannot resume: start again
        if pool is None:
            pool = _make_pool(s.config, substitute_ok=p.train_missing)
        s.pool = pool
        with distributed.main_holds(training_lock(path)):  # rank 0 locks for all ranks
            ckpt = train(s.config, s.train_images(p), s.test_images(p), path, device=device,
                         n_eval=p.n_eval, data_print=_fingerprint(pool, s.config, p),
                         sigmas=eval_sigmas(s.config))
        if not p.train_missing and distributed.is_main():  # shipped: keep the manifest
            update_manifest(name, p, ckpt)
    model = build_model(s.config)
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "rng_state")}
    return LoadedModel(name, model, s.config, meta, data_checked=pool is not None,
                       substitute=pool is not None and pool.substitute)


class ModelBusy(RuntimeError):
    """Another live process is training this model."""


@contextlib.contextmanager
def training_lock(path: Path):
    """A `<checkpoint>.lock` file holding our pid while we train; a dead owner's lock is taken
    over, a live owner's is an error (two processes must never write one checkpoint)."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            owner = int(lock.read_text() or 0)
            if owner and _alive(owner):
                raise ModelBusy(f"{path.name} is being trained by process {owner}") from None
            lock.unlink(missing_ok=True)
    else:
        raise ModelBusy(f"could not take {lock}")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pool_or_none(s: Spec, p: Profile, ckpt: dict | None):
    """The data pool if its folder exists (or a substitute at profiles that train).

    None (data not checked) also when only the substitute is at hand but the checkpoint was
    trained on other images (the real data, absent here): such a checkpoint is loaded as it is,
    never deleted and replaced by a model of the synthetic stand-in.
    """
    try:
        pool = _make_pool(s.config, substitute_ok=p.train_missing)
    except data.DataError:
        return None
    if pool.substitute and ckpt is not None:
        try:
            same = ckpt["data_fingerprint"] == _fingerprint(pool, s.config, p)
        except data.DataError:  # the substitute is too small for this N
            same = False
        if not same:
            return None
    return pool


def update_manifest(name: str, profile: Profile, ckpt: dict) -> None:
    path = config.checkpoint_dir(profile.name) / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    last = ckpt["history"][-1]
    manifest[name] = {
        "file": f"{name}.pt",
        "config_digest": TrainConfig.from_dict(ckpt["config"]).digest(),
        "config": ckpt["config"],
        "data_fingerprint": ckpt["data_fingerprint"],
        "steps": ckpt["step"],
        "wall_time_s": round(ckpt["wall_time"], 1),
        "machine": ckpt["machine"],
        "versions": ckpt["versions"],
        "final_train_psnr": [round(v, 3) for v in last["train_psnr"]],
        "final_test_psnr": [round(v, 3) for v in last["test_psnr"]],
        "sigmas": [round(v, 6) for v in last["sigmas"]],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    os.replace(tmp, path)
