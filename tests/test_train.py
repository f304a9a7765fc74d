import math

import pytest
import torch

from diffgen_utils import train as train_mod
from diffgen_utils.config import TrainConfig
from diffgen_utils.train import (CheckpointCorrupt, SpeedFlags, TrainingDiverged, Watch,
                                 learning_rate, load_checkpoint, loss_fn, train)

PLAIN = SpeedFlags()  # fp32 eager: resume is bit-exact


def tiny_config(**kw):
    base = dict(dataset="test", size=8, n_train=6, width=4, steps=8, batch=4, eval_every=4,
                lr_halvings=(0.5, ))
    base.update(kw)
    return TrainConfig(**base)


def images(n, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_resume_is_bit_for_bit(tmp_path):
    cfg = tiny_config()
    whole = train(cfg, images(6), images(4, 1), tmp_path / "whole.pt", n_eval=4, progress=False,
                  speed=PLAIN)
    part = tmp_path / "part.pt"
    first = train(cfg, images(6), images(4, 1), part, n_eval=4, stop_at=4, progress=False,
                  speed=PLAIN)
    assert first["step"] == 4
    resumed = train(cfg, images(6), images(4, 1), part, n_eval=4, progress=False, speed=PLAIN)
    assert resumed["step"] == 8
    for key, value in whole["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    assert [h["loss"] for h in whole["history"]] == [h["loss"] for h in resumed["history"]]


def test_a_watched_run_trains_as_an_unwatched_one_and_keeps_its_samples_across_a_resume(tmp_path):
    cfg, watch = tiny_config(), Watch(steps=(2, 3, 6), seeds=3)
    plain = train(cfg, images(6), images(4, 1), tmp_path / "plain.pt", n_eval=4, progress=False,
                  speed=PLAIN)
    path = tmp_path / "watched.pt"
    train(cfg, images(6), images(4, 1), path, n_eval=4, stop_at=4, progress=False, speed=PLAIN,
          watch=watch)
    watched = train(cfg, images(6), images(4, 1), path, n_eval=4, progress=False, speed=PLAIN,
                    watch=watch)
    for key, value in plain["state_dict"].items():
        assert torch.equal(value, watched["state_dict"][key]), key
    assert [w["step"] for w in watched["watched"]] == [2, 3, 6]
    assert watched["watch"] == {"steps": (2, 3, 6), "seeds": 3}
    assert watched["watched"][0]["images"].shape == (3, 1, 8, 8)
    assert not torch.equal(watched["watched"][0]["images"], watched["watched"][2]["images"])
    assert plain["watched"] == [] and plain["watch"] is None


def test_watch_steps_are_about_two_per_octave_and_end_at_the_last_step():
    steps = Watch.for_run(12_000, 64).steps
    assert steps[0] == 125 and steps[-1] == 12_000 and list(steps) == sorted(set(steps))
    assert all(1.2 <= b / a <= 2 for a, b in zip(steps, steps[1:]))
    assert 0 not in Watch.for_run(10, 1).steps


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
    monkeypatch.setattr(train_mod, "loss_fn",
                        lambda *a: torch.tensor(math.nan, requires_grad=True))
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


def test_fast_path_resumes_within_tolerance_and_is_recorded_beside_the_config(tmp_path):
    fast = SpeedFlags(channels_last=True, bf16=True)
    cfg = tiny_config(steps=12, eval_every=6)
    kw = dict(n_eval=4, progress=False, speed=fast)
    whole = train(cfg, images(6), images(4, 1), tmp_path / "whole.pt", **kw)
    train(cfg, images(6), images(4, 1), tmp_path / "part.pt", stop_at=6, **kw)
    resumed = train(cfg, images(6), images(4, 1), tmp_path / "part.pt", **kw)
    assert resumed["speed"] == {"compile": False, "channels_last": True, "bf16": True}
    assert "speed" not in resumed["config"] and TrainConfig.from_dict(resumed["config"]) == cfg
    for key, value in whole["state_dict"].items():
        assert value.is_contiguous(), key  # stored in the default layout, loadable anywhere
        assert torch.allclose(value, resumed["state_dict"][key], rtol=1e-2, atol=1e-4), key
    plain = train(cfg, images(6), images(4, 1), tmp_path / "plain.pt", n_eval=4, progress=False,
                  speed=PLAIN)
    assert plain["speed"] == {"compile": False, "channels_last": False, "bf16": False}
    for a, b in zip(whole["history"], plain["history"]):  # same run, other arithmetic
        assert max(abs(x - y) for x, y in zip(a["test_psnr"], b["test_psnr"])) < 0.5


def test_fast_path_is_chosen_per_machine_and_switched_off_by_the_environment(monkeypatch):
    cfg = tiny_config(steps=train_mod.COMPILE_MIN_STEPS)
    monkeypatch.setenv("DIFFGEN_FAST", "0")
    assert train_mod.speed_flags(cfg, "cpu") == PLAIN
    monkeypatch.setenv("DIFFGEN_FAST", "1")
    flags = train_mod.speed_flags(cfg, "cpu")
    assert flags.channels_last and not flags.bf16  # bf16 did not keep results: opt-in
    monkeypatch.setenv("DIFFGEN_BF16", "1")
    assert train_mod.speed_flags(cfg,
                                 "cpu").bf16 == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert not train_mod.speed_flags(tiny_config(steps=40), "cpu").compile  # smoke-length run


def test_cosine_schedule_keeps_half_the_peak_at_half_way():
    cfg = tiny_config(steps=100, lr=1e-3, lr_schedule="cosine")
    assert learning_rate(cfg, 0) == 1e-3
    assert math.isclose(learning_rate(cfg, 50), 5e-4)
    assert learning_rate(cfg, 99) < 1e-6
    with pytest.raises(ValueError, match="lr_schedule"):
        learning_rate(tiny_config(lr_schedule="linear"), 0)


def test_log_uniform_sigma_respects_its_floor():
    g = torch.Generator().manual_seed(0)
    s = train_mod.sample_sigmas(tiny_config(sigma_sampling="log_uniform", sigma_min=0.005), 10000,
                                g, "cpu")
    assert s.min() >= 0.005 and s.max() <= 1
    assert abs(torch.log(s).mean().item() - math.log(0.005) / 2) < 0.05  # uniform in log


def test_a_truncated_checkpoint_names_the_file_and_the_command_that_rebuilds_it(tmp_path):
    cfg = tiny_config()
    whole = tmp_path / "whole.pt"
    train(cfg, images(6), images(4, 1), whole, n_eval=4, progress=False, speed=PLAIN)
    truncated = tmp_path / "smoke" / "celeba-N10-S1.pt"  # checkpoints/<profile>/<name>.pt
    truncated.parent.mkdir()
    truncated.write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    with pytest.raises(CheckpointCorrupt) as caught:
        load_checkpoint(truncated)
    message = str(caught.value)
    assert f"checkpoint {truncated} is truncated or corrupt" in message
    assert message.endswith("Delete it and rebuild it with: python -m diffgen_utils.train "
                            "--profile smoke --only celeba-N10-S1")
    empty = tmp_path / "smoke" / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointCorrupt, match="--profile smoke --only empty$"):
        load_checkpoint(empty)
    with pytest.raises(CheckpointCorrupt, match="train it again with the code that wrote it"):
        train(cfg, images(6), images(4, 1), truncated.rename(tmp_path / "m.pt"), n_eval=4,
              progress=False)
    with pytest.raises(FileNotFoundError):  # a missing file is not a corrupt one
        load_checkpoint(tmp_path / "smoke" / "missing.pt")


class Identity(torch.nn.Module):
    """A noise predictor that returns its input: its error net(x + noise) - noise is x."""

    def forward(self, y):
        return y


# two 2x2 images with ||x_0||^2 = 4 and ||x_1||^2 = 1 + 4 + 9 + 16 = 30
TWO_IMAGES = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[1.0, 2.0], [3.0, 4.0]]]])


def test_loss_is_the_per_image_sum_of_squared_errors_averaged_over_the_batch():
    g = torch.Generator().manual_seed(0)
    assert loss_fn(tiny_config(), Identity(), TWO_IMAGES, g).item() == pytest.approx((4 + 30) / 2,
                                                                                     rel=1e-6)


def test_loss_draws_sigma_then_noise_from_the_generator():

    class Half(torch.nn.Module):

        def forward(self, y):
            return 0.5 * y

    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    loss = loss_fn(tiny_config(), Half(), x, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    sigma = torch.rand(3, generator=g)**2  # the paper's sigma = U^2
    noise = torch.randn(3, 1, 4, 4, generator=g) * sigma.view(3, 1, 1, 1)
    per_image = ((0.5 * (x + noise) - noise)**2).sum(dim=(1, 2, 3))
    assert loss.item() == pytest.approx(per_image.mean().item(), rel=1e-6)


def test_inverse_variance_weighting_divides_by_sigma_squared_floored_at_sigma_min(monkeypatch):
    sigmas = torch.tensor([0.5, 0.001])  # the second is below the floor sigma_min = 0.01
    monkeypatch.setattr(train_mod, "sample_sigmas", lambda cfg, n, g, device: sigmas)
    g = torch.Generator().manual_seed(0)
    weighted = tiny_config(loss_weighting="inverse_variance", sigma_min=0.01)
    assert loss_fn(weighted, Identity(), TWO_IMAGES, g).item() == pytest.approx(
        (4 / 0.5**2 + 30 / 0.01**2) / 2, rel=1e-6)
    assert loss_fn(tiny_config(), Identity(), TWO_IMAGES, g).item() == pytest.approx(17, rel=1e-6)
    with pytest.raises(ValueError, match="loss_weighting"):
        loss_fn(tiny_config(loss_weighting="sigma"), Identity(), TWO_IMAGES, g)
