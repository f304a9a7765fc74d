"""Named models: load the checkpoint when its config and data match, else train (or say how).

    model = zoo.load("celeba-N13000-S1", "book")

Names: `celeba-N{n}-S{1|2}` (CelebA faces; N from the profile's n_values) and
`celeba_shuffled-N{n}-S1` (the same faces under one fixed pixel permutation).
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

from . import config, data
from .config import Profile, TrainConfig
from .models import build_model
from .train import load_checkpoint, train

FACE_NAME = re.compile(r"^(celeba|celeba_shuffled|fer2013)-N(\d+)-(S1|S2)$")


@dataclass
class Spec:
    """What a named model is trained on."""

    name: str
    config: TrainConfig
    pool: data.FacePool | None  # None while only the config is needed

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
    substitute: bool  # True when trained on the synthetic stand-in for missing faces

    @property
    def history(self) -> list[dict]:
        return self.checkpoint["history"]


def model_names(profile: str | Profile) -> list[str]:
    p = config.get_profile(profile) if isinstance(profile, str) else profile
    faces = [f"celeba-N{n}-{s}" for n in p.n_values for s in ("S1", "S2")]
    return faces + [f"celeba_shuffled-N{max(p.n_values)}-S1"]


def spec(name: str, profile: Profile, with_data: bool = True) -> Spec:
    match = FACE_NAME.match(name)
    if not match:
        raise KeyError(f"unknown model name {name!r}; known patterns: "
                       f"celeba-N<n>-S1|S2, celeba_shuffled-N<n>-S1, fer2013-N<n>-S1|S2")
    dataset, n, subset = match.group(1), int(match.group(2)), match.group(3)
    cfg = profile.train_config(dataset, n, subset=subset)
    pool = data.face_pool(dataset, profile.face_size) if with_data else None
    return Spec(name, cfg, pool)


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
         train_missing: bool | None = None) -> LoadedModel:
    """The trained model `name` of `profile`; trains or resumes it when allowed."""
    p = config.get_profile(profile) if isinstance(profile, str) else profile
    device = device or ("cuda" if p.device == "cuda" and torch.cuda.is_available() else "cpu")
    allowed = p.train_missing if train_missing is None else train_missing
    path = checkpoint_path(name, p)
    s = spec(name, p, with_data=False)
    ckpt = load_checkpoint(path) if path.exists() else None
    pool = _pool_or_none(s, p, ckpt)
    problem = None
    if ckpt is None:
        problem = "is missing"
    elif TrainConfig.from_dict(ckpt["config"]) != s.config:
        problem = f"has another config ({diff_configs(ckpt['config'], s.config.to_dict())})"
    elif pool is not None and ckpt["data_fingerprint"] != data.fingerprint(
            pool.split(s.config.n_train, s.config.subset, p.n_test)):
        problem = f"was trained on other images than {name} of {pool.source}"
    elif ckpt["step"] < s.config.steps:
        problem = f"stopped at step {ckpt['step']} of {s.config.steps}"
    if problem:
        if not allowed:
            raise FileNotFoundError(f"checkpoint {path} {problem}. Train it with: python -m "
                                    f"diffgen_utils.train --profile {p.name} --only {name}")
        if ckpt is not None and not problem.startswith("stopped"):
            path.unlink()  # another config or data set cannot resume: start again
        if pool is None:
            pool = data.face_pool(s.config.dataset, p.face_size, substitute_ok=p.train_missing)
        s.pool = pool
        with training_lock(path):
            ckpt = train(s.config, s.train_images(p), s.test_images(p), path, device=device,
                         n_eval=p.n_eval)
        if p.name == "book":
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


def _pool_or_none(s: Spec, p: Profile, ckpt: dict | None) -> data.FacePool | None:
    """The data pool if its folder exists (or a substitute at profiles that train).

    None (data not checked) also when only the substitute is at hand but the checkpoint was
    trained on other images (the real data, absent here): such a checkpoint is loaded as it is,
    never deleted and replaced by a model of the synthetic stand-in.
    """
    try:
        pool = data.face_pool(s.config.dataset, p.face_size, substitute_ok=p.train_missing)
    except data.DataError:
        return None
    if pool.substitute and ckpt is not None:
        try:
            same = ckpt["data_fingerprint"] == data.fingerprint(
                pool.split(s.config.n_train, s.config.subset, p.n_test))
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
