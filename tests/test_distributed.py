"""One model trained by two processes joined as torchrun joins them (gloo on CPU)."""
import os
import socket
from dataclasses import replace

import pytest
import torch
import torch.multiprocessing as mp

from diffgen_utils import config, distributed, zoo
from diffgen_utils.config import TrainConfig
from diffgen_utils.models import build_model
from diffgen_utils.train import SpeedFlags, load_checkpoint, loss_fn, train

CFG = TrainConfig(dataset="test", size=8, n_train=6, width=4, steps=8, batch=4, eval_every=4,
                  lr_halvings=(0.5, ))
NAME = "celeba-N4-S1"


def images(n, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def fit(path, stop_at=None):
    """CFG trained in fp32 eager mode (SpeedFlags()), resumed from `path` if it exists."""
    return train(CFG, images(6), images(4, 1), path, n_eval=4, stop_at=stop_at, progress=False,
                 speed=SpeedFlags())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_two_processes(job, *args):
    """Run job(*args) in two processes with torchrun's environment; a failure in either is
    raised here."""
    mp.spawn(_as_rank, args=(free_port(), job, args), nprocs=2)


def _as_rank(rank, port, job, args):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    with distributed.process_group("cpu"):
        assert distributed.world_size() == 2 and distributed.rank() == rank
        job(*args)


def whole_and_stopped_runs(folder):
    fit(folder / "whole.pt")
    assert fit(folder / "part.pt", stop_at=4)["step"] == 4
    fit(folder / "part.pt")  # resumed by both ranks


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """Checkpoints of two-process runs: whole.pt uninterrupted, part.pt stopped and resumed."""
    folder = tmp_path_factory.mktemp("two_processes")
    in_two_processes(whole_and_stopped_runs, folder)
    return folder


def test_two_processes_train_as_one(two_process_runs, tmp_path):
    one = fit(tmp_path / "one.pt")
    two = load_checkpoint(two_process_runs / "whole.pt")
    assert "2 processes" in two["machine"]
    assert any(key.endswith("running_sd") for key in one["state_dict"])
    for key, value in one["state_dict"].items():  # weights, gammas and running sds
        torch.testing.assert_close(two["state_dict"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert [h["step"] for h in two["history"]] == [h["step"] for h in one["history"]]
    for h1, h2 in zip(one["history"], two["history"]):
        assert h2["loss"] == pytest.approx(h1["loss"], rel=1e-5)
        assert h2["test_psnr"] == pytest.approx(h1["test_psnr"], rel=1e-4)


def test_stopped_two_process_run_resumes_to_the_same_end(two_process_runs):
    whole = load_checkpoint(two_process_runs / "whole.pt")
    resumed = load_checkpoint(two_process_runs / "part.pt")
    assert resumed["step"] == whole["step"] == CFG.steps
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert resumed["history"] == whole["history"]
    assert not list(two_process_runs.glob("*.tmp"))


def test_the_ranks_parts_of_a_batch_make_the_one_process_loss(monkeypatch):
    """Every rank draws the global batch's sigmas and noise and keeps its slice: the parts are
    disjoint, their mean loss is one process's loss, and the generator stays in step."""
    model = build_model(CFG).eval()  # running sd: no batch statistics to share
    x = images(4)
    g_one = torch.Generator().manual_seed(0)
    one = loss_fn(CFG, model, x, g_one)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    losses, parts = [], []
    for r in (0, 1):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        g = torch.Generator().manual_seed(0)
        parts.append(distributed.share(4))
        losses.append(loss_fn(CFG, model, x, g, SpeedFlags(), parts[-1]))
        assert torch.equal(g.get_state(), g_one.get_state())
    assert parts == [slice(0, 2), slice(2, 4)]
    torch.testing.assert_close(torch.stack(losses).mean(), one)


def test_a_batch_the_processes_cannot_share_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    with pytest.raises(ValueError, match="batch of 4 cannot be shared by 3 processes"):
        fit(tmp_path / "m.pt")


def tiny_profile():
    return replace(config.get_profile("smoke"), name="tiny", face_size=8, width=4, steps=4,
                   batch=4, n_test=4, n_eval=4, eval_every=2, lr_halvings=(0.5, ),
                   train_missing=True, faces=config.FaceModels(n_values=(4, )))


def zoo_load_on_every_rank(folder):
    """A model locked by another trainer is skipped by every rank; once free, all ranks
    train it together and each saves what it loaded."""
    os.environ.update(DIFFGEN_DATA=str(folder / "data"), DIFFGEN_CACHE=str(folder / "cache"),
                      DIFFGEN_BATCH="1", DIFFGEN_FAST="0")
    config.checkpoint_dir = lambda profile: folder / "checkpoints" / profile  # this process
    with pytest.raises(zoo.ModelBusy, match="being trained by process"):
        zoo.load(NAME, tiny_profile())
    distributed.barrier()
    if distributed.is_main():
        (folder / "checkpoints" / "tiny" / f"{NAME}.pt.lock").unlink()
    loaded = zoo.load(NAME, tiny_profile())
    torch.save(loaded.model.state_dict(), folder / f"rank{distributed.rank()}.pt")


def test_zoo_lock_is_taken_by_rank_0_for_all_ranks(tmp_path):
    (tmp_path / "data").mkdir()  # empty: the synthetic stand-in faces
    lock = tmp_path / "checkpoints" / "tiny" / f"{NAME}.pt.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(str(os.getpid()))  # a live trainer of the model
    in_two_processes(zoo_load_on_every_rank, tmp_path)
    assert not lock.exists()
    checkpoint = load_checkpoint(lock.with_name(f"{NAME}.pt"))
    assert checkpoint["step"] == 4
    for rank in (0, 1):
        loaded = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for key, value in checkpoint["state_dict"].items():
            assert torch.equal(loaded[key], value), (rank, key)
