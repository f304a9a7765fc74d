"""Fixtures shared by the tests: one torch thread, and data/cache/checkpoint folders in tmp_path."""
import pytest
import torch

from diffgen_utils import config


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run faster on one thread; a second one only waits for a busy core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """DIFFGEN_DATA (empty) and DIFFGEN_CACHE in tmp_path; returns the data folder."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("DIFFGEN_DATA", str(root))
    monkeypatch.setenv("DIFFGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DIFFGEN_BATCH", "1")
    return root


@pytest.fixture
def zoo_env(data_env, tmp_path, monkeypatch):
    """data_env plus checkpoints under tmp_path; returns (data folder, checkpoint folder)."""
    ckpts = tmp_path / "checkpoints"
    monkeypatch.setattr(config, "checkpoint_dir", lambda profile: ckpts / profile)
    return data_env, ckpts
