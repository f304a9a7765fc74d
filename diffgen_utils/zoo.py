"""Named models: load the checkpoint when its config and data match, else train (or say how).

    model = zoo.load(FACES.name(P, 13000, "S1"), P)

Names and their configs are declared per family in families.py. Synthetic sets (synthetic.py)
are generated from fixed seeds with the family's recipe; their data fingerprint hashes the
generating recipe (SYNTHETIC_VERSION). A profile's `train_missing` says whether a missing model
is trained on the spot (smoke, paper) or is an error that names the training command (book:
the shipped checkpoints). `missing` lists what a profile lacks, for the runner to check before
a chapter runs.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import config, data, distributed, synthetic
from .families import WATCHED, config_of, model_names
from .config import Profile, TrainConfig
from .models import build_model
from .train import Watch, load_checkpoint, train


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
    cfg = config_of(name, profile)
    return Spec(name, cfg, _make_pool(cfg) if with_data else None)


def eval_sigmas(cfg: TrainConfig) -> tuple:
    """Where a model is evaluated while it trains: the paper's validation grid, plus the
    chapters' analysis noise levels for synthetic sets."""
    if cfg.dataset in synthetic.FAMILIES:
        return tuple(sorted(set(config.EVAL_SIGMAS) | set(config.ANALYSIS_SIGMAS)))
    return config.EVAL_SIGMAS


def watch_of(name: str, profile: Profile) -> Watch | None:
    """Where a watched run draws samples while it trains (None for every other model)."""
    if WATCHED.config(name, profile) is None:
        return None
    return Watch.for_run(config_of(name, profile).steps, profile.watched.seeds)


def checkpoint_path(name: str, profile: Profile) -> Path:
    """checkpoints/<profile>/<name>.pt; a profile that `replaces` another reads the models it
    does not retrain from that profile's folder."""
    if profile.replaces and name not in model_names(profile, "all"):
        return config.checkpoint_dir(profile.replaces) / f"{name}.pt"
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


def missing(names, profile: str | Profile) -> dict[str, str]:
    """{name: status} of the names whose checkpoint is not complete with the right config.
    Cheap (no data is read): the runner checks a chapter's models with it before it runs."""
    p = config.get_profile(profile) if isinstance(profile, str) else profile
    states = {name: status(name, p) for name in names}
    return {name: state for name, state in states.items() if state != "done"}


def train_command(names, profile: str | Profile) -> str:
    p = profile if isinstance(profile, str) else profile.name
    return f"python -m diffgen_utils.train --profile {p} --only {' '.join(names)}"


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
            raise FileNotFoundError(f"checkpoint {path} {problem}. Train it with: "
                                    f"{train_command([name], p)}")
        if ckpt is not None and not problem.startswith("stopped") and distributed.is_main():
            set_aside(path, problem)  # another config or data set cannot resume: start again
        if pool is None:
            pool = _make_pool(s.config, substitute_ok=p.train_missing)
        s.pool = pool
        with distributed.main_holds(training_lock(path)):  # rank 0 locks for all ranks
            ckpt = train(s.config, s.train_images(p), s.test_images(p), path, device=device,
                         n_eval=p.n_eval, data_print=_fingerprint(pool, s.config, p),
                         sigmas=eval_sigmas(s.config), watch=watch_of(name, p))
        if not p.train_missing and distributed.is_main():  # shipped: keep the manifest
            update_manifest(name, p, ckpt)
    model = build_model(s.config)
    model.load_state_dict(ckpt["state_dict"])
    model.to(device).eval()
    meta = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "rng_state")}
    return LoadedModel(name, model, s.config, meta, data_checked=pool is not None,
                       substitute=pool is not None and pool.substitute)


def set_aside(path: Path, problem: str) -> Path:
    """Move a checkpoint that cannot be resumed to <name>.pt.old (never delete one: a shipped
    checkpoint is restored with git checkout)."""
    old = path.with_name(path.name + ".old")
    os.replace(path, old)
    print(f"{path} {problem}: moved to {old.name}, training {path.stem} afresh")
    return old


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


def _read_manifest(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _write_manifest(path: Path, manifest: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    os.replace(tmp, path)


def promote(names, source: str = "book-next") -> Path:
    """Move finished models of `source` into the profile it replaces (DESIGN.md, "Replacing a
    family's models"): each checkpoint file and its manifest entry. The target profile must
    already declare each name with the same config (move the config block first); a model that
    is not done, or that the target would train otherwise, stops the move before any file
    moves. Returns the target's checkpoint folder (stage it with `git add -A checkpoints`)."""
    src = config.get_profile(source)
    if src.replaces is None:
        raise ValueError(f"profile {source!r} replaces none; promote from one that does "
                         "(book-next)")
    dst = config.get_profile(src.replaces)
    src_dir, dst_dir = config.checkpoint_dir(src.name), config.checkpoint_dir(dst.name)
    problems = []
    for name in names:
        path = src_dir / f"{name}.pt"
        if not path.exists():
            problems.append(f"{name}: no checkpoint in {src_dir}")
            continue
        if name not in model_names(dst, "all"):
            problems.append(f"{name}: the {dst.name} profile does not declare it; move its "
                            f"config block from {src.name} into {dst.name} first")
            continue
        ckpt, cfg = load_checkpoint(path), spec(name, dst, with_data=False).config
        if TrainConfig.from_dict(ckpt["config"]) != cfg:
            problems.append(f"{name}: {dst.name} would train it with another config "
                            f"({diff_configs(ckpt['config'], cfg.to_dict())})")
        elif ckpt["step"] < cfg.steps:
            problems.append(f"{name}: at step {ckpt['step']} of {cfg.steps}")
    if problems:
        raise ValueError("nothing promoted:\n  " + "\n  ".join(problems))
    src_manifest = _read_manifest(src_dir / "manifest.json")
    dst_manifest = _read_manifest(dst_dir / "manifest.json")
    dst_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.replace(src_dir / f"{name}.pt", dst_dir / f"{name}.pt")
        if name in src_manifest:
            dst_manifest[name] = src_manifest.pop(name)
    _write_manifest(src_dir / "manifest.json", src_manifest)
    _write_manifest(dst_dir / "manifest.json", dst_manifest)
    return dst_dir


def update_manifest(name: str, profile: Profile, ckpt: dict) -> None:
    path = config.checkpoint_dir(profile.name) / "manifest.json"
    manifest = _read_manifest(path)
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
    _write_manifest(path, manifest)
