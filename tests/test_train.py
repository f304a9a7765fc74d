import math

import pytest
import torch

from diffgen_utils import train as train_mod
from diffgen_utils.config import TrainConfig
from diffgen_utils.train import TrainingDiverged, learning_rate, load_checkpoint, train


def tiny_config(**kw):
    base = dict(dataset="test", size=8, n_train=6, width=4, steps=8, batch=4, eval_every=4,
                lr_halvings=(0.5,))
    base.update(kw)
    return TrainConfig(**base)


def images(n, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_resume_is_bit_for_bit(tmp_path):
    cfg = tiny_config()
    whole = train(cfg, images(6), images(4, 1), tmp_path / "whole.pt", n_eval=4, progress=False)
    part = tmp_path / "part.pt"
    first = train(cfg, images(6), images(4, 1), part, n_eval=4, stop_at=4, progress=False)
    assert first["step"] == 4
    resumed = train(cfg, images(6), images(4, 1), part, n_eval=4, progress=False)
    assert resumed["step"] == 8
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert [h["loss"] for h in whole["history"]] == [h["loss"] for h in resumed["history"]]


def test_checkpoint_contents_load_weights_only(tmp_path):
    cfg = tiny_config(loss_weighting="inverse_variance", sigma_sampling="log_uniform")
    train(cfg, images(6), images(4, 1), tmp_path / "m.pt", n_eval=4, progress=False)
    ckpt = load_checkpoint(tmp_path / "m.pt")  # weights_only=True inside
    for key in ("state_dict", "optimizer", "rng_state", "step", "config", "history",
                "data_fingerprint", "versions", "machine", "wall_time"):
        assert key in ckpt, key
    assert TrainConfig.from_dict(ckpt["config"]) == cfg
    assert len(ckpt["history"][-1]["test_psnr"]) == len(ckpt["history"][-1]["sigmas"])
    assert not list(tmp_path.glob("*.tmp"))
    assert ckpt["optimizer"] is None  # finished: nothing resumes it
    train(cfg, images(6), images(4, 1), tmp_path / "m.pt", n_eval=4, progress=False)  # loads
    train(cfg, images(6), images(4, 1), tmp_path / "p.pt", n_eval=4, stop_at=2, progress=False)
    assert load_checkpoint(tmp_path / "p.pt")["optimizer"] is not None  # unfinished: resumable


def test_resume_refuses_other_data(tmp_path):
    cfg = tiny_config()
    train(cfg, images(6), images(4, 1), tmp_path / "m.pt", n_eval=4, stop_at=4, progress=False)
    with pytest.raises(ValueError, match="another config or data"):
        train(cfg, images(6, seed=5), images(4, 1), tmp_path / "m.pt", n_eval=4, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    cfg = tiny_config()
    path = tmp_path / "m.pt"
    train(cfg, images(6), images(4, 1), path, n_eval=4, stop_at=4, progress=False)
    good = path.read_bytes()
    monkeypatch.setattr(train_mod, "loss_fn", lambda *a: torch.tensor(math.nan, requires_grad=True))
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        train(cfg, images(6), images(4, 1), path, n_eval=4, progress=False)
    assert path.read_bytes() == good


def test_learning_rate_halves_at_fractions():
    cfg = tiny_config(steps=100, lr_halvings=(0.5, 0.75))
    assert [learning_rate(cfg, s) for s in (0, 49, 50, 74, 75, 99)] == \
        [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4]


def test_sigma_distributions_cover_their_ranges():
    g = torch.Generator().manual_seed(0)
    for mode, low in (("uniform_squared", 0.0), ("log_uniform", 1e-3)):
        s = train_mod.sample_sigmas(tiny_config(sigma_sampling=mode), 10000, g, "cpu")
        assert s.min() >= low and s.max() <= 1 and s.median() < 0.5
