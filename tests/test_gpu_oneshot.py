"""tools/gpu_oneshot.py at smoke size on the CPU, with tqdm and PIL hidden as on a bare machine:
every stage's numbers, checkpoints within the device's file limits that the zoo loads."""
import importlib.util
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest
import torch

from diffgen_utils import config, families, zoo
from diffgen_utils.train import train

TOOL = config.REPO_ROOT / "tools" / "gpu_oneshot.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("gpu_oneshot", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke run of every stage; returns its output folder."""
    tmp = tmp_path_factory.mktemp("oneshot")
    hidden = tmp / "hidden"  # packages that raise ImportError: the machine has no tqdm, no PIL
    for package in ("tqdm", "PIL"):
        (hidden / package).mkdir(parents=True)
        (hidden / package / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    (tmp / "data").mkdir()
    env = {
        **os.environ, "PYTHONPATH": str(hidden), "DIFFGEN_DATA": str(tmp / "data"),
        "DIFFGEN_CACHE": str(tmp / "cache"), "OMP_NUM_THREADS": "1"
    }
    out = tmp / "out"
    done = subprocess.run([
        sys.executable,
        str(TOOL), "--profile-size", "smoke", "--budget-s", "240", "--out",
        str(out)
    ], env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_report_has_every_stage(smoke_run):
    report = json.loads((smoke_run / "gpu_oneshot.json").read_text())
    assert report["errors"] == {}
    assert report["env"]["torch"] == torch.__version__ and report["env"]["device"] == "cpu"
    assert report["env"]["stand_ins"] == ["tqdm", "PIL"]
    for path in ("fast", "plain", "bf16"):
        timing = report["speed"][path]
        assert timing["images_per_s"] > 0 and timing["warmup_s"] > 0
    assert report["speed"]["fast"]["speed"]["channels_last"]
    assert not report["speed"]["fast"]["speed"]["bf16"]  # bf16 is opt-in
    assert report["speed"]["speedup_fast"] > 0 and report["speed"]["speedup_bf16"] > 0
    jac = report["jacobian"]
    assert jac["pixels"] == 16 * 16 and jac["method"] == "local" and jac["full_s"] > 0
    assert jac["loop_estimate_s"] > 0 and jac["max_relative_difference"] < 1e-4
    models = report["train"]["models"]
    names = families.model_names("smoke", family="manifolds") + families.model_names(
        "smoke", family="calpha")
    assert list(models) == names
    assert "CelebA" in models["ray-N64"]["skipped"]
    trained = [name for name in names if name != "ray-N64"]
    assert all(models[name]["finished"] and models[name]["steps"] == 40 for name in trained)


def test_checkpoints_fit_the_device_limits_and_load(smoke_run, tmp_path, monkeypatch):
    files = [f for f in smoke_run.rglob("*") if f.is_file()]
    assert len(files) <= 8 and all(f.stat().st_size <= 16 * 2**20 for f in files)
    packs = sorted((smoke_run / "checkpoints").glob("*.tar"))
    assert packs
    for pack in packs:
        with tarfile.open(pack) as tar:
            tar.extractall(tmp_path / "unpacked", filter="data")
    for path in (tmp_path / "unpacked").glob("*.pt"):
        ckpt = torch.load(path, weights_only=True)
        assert config.TrainConfig.from_dict(ckpt["config"]).steps == ckpt["step"]
        assert ckpt["state_dict"] and ckpt["optimizer"] is None

    # brought home, every trained model is what the zoo expects (config and data fingerprint)
    monkeypatch.setenv("DIFFGEN_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("DIFFGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(config, "checkpoint_dir", lambda profile: tmp_path / "home" / profile)
    load_tool().bring_home(smoke_run)
    report = json.loads((smoke_run / "gpu_oneshot.json").read_text())
    trained = [name for name, entry in report["train"]["models"].items() if entry.get("finished")]
    assert len(trained) == 6
    for name in trained:
        loaded = zoo.load(name, "smoke", train_missing=False)
        assert loaded.data_checked and loaded.checkpoint["step"] == 40


def test_steps_that_fit_the_budget():
    tool = load_tool()
    cfg = config.TrainConfig("disks", 20, 10, steps=5000, eval_every=500)
    cost = tool.Cost(fixed_s=10, step_s=0.01)
    assert tool.steps_that_fit(cfg, cost, seconds_left=70) == 5000
    assert tool.steps_that_fit(cfg, cost, seconds_left=27) == 1500  # whole evaluation periods
    assert tool.steps_that_fit(cfg, cost, seconds_left=14) == 0


def test_the_model_that_does_not_fit_stops_resumable(data_env, tmp_path, monkeypatch):
    tool = load_tool()
    # every step timed at 0.8 s: 25 s left (after the reserve) fit 20 of disks' 40 steps
    monkeypatch.setattr(tool, "time_training", lambda *args: {"warmup_s": 0.0, "step_s": 0.8})
    report = {}
    deadline = time.perf_counter() + tool.RESERVE_S + 25
    tool.stage_train(tool.SCALES["smoke"], "cpu", deadline, tmp_path, report)
    models = report["train"]["models"]
    assert models["disks-N64"]["steps"] == 20 and not models["disks-N64"]["finished"]
    assert all(entry["skipped"] == "out of budget" for name, entry in models.items()
               if name != "disks-N64")
    with tarfile.open(tmp_path / models["disks-N64"]["pack"]) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    path = tmp_path / "unpacked" / "disks-N64.pt"
    assert torch.load(path, weights_only=True)["optimizer"] is not None

    p = config.get_profile("smoke")
    s = zoo.spec("disks-N64", p)
    resumed = train(s.config, s.train_images(p), s.test_images(p), path, n_eval=p.n_eval,
                    progress=False, data_print=s.pool.fingerprint(s.config.n_train, "S1"),
                    sigmas=zoo.eval_sigmas(s.config))
    assert resumed["step"] == 40 and [h["step"] for h in resumed["history"]] == [20, 40]


def test_training_that_fails_to_compile_runs_again_without():
    tool = load_tool()

    def train_with(speed):
        if speed.compile:
            raise RuntimeError("no C compiler")
        return {"step": 40}

    entry = {}
    fast = tool.SpeedFlags(compile=True, channels_last=True, bf16=True)
    ckpt, speed = tool.train_falling_back(train_with, fast, entry)
    assert ckpt == {"step": 40} and speed == tool.replace(fast, compile=False)
    assert "no C compiler" in entry["compile_error"] and "error" not in entry
    assert tool.train_falling_back(train_with, speed, {}) == (ckpt, speed)
