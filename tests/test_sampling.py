import math

import pytest
import torch

from diffgen_utils.models import UNet
from diffgen_utils.sampling import (SamplerSettings, effective_sigma, noise_amplitude, sample,
                                    step_size)


def model():
    torch.manual_seed(0)
    m = UNet(blocks=1, width=8)
    m(torch.rand(16, 1, 8, 8))
    return m.eval()


def test_a_seed_gives_the_same_sample_in_any_batch():
    m = model()
    alone = sample(m, [7], shape=(1, 8, 8), max_steps=30, progress=False)
    mixed = sample(m, [3, 7, 11, 12], shape=(1, 8, 8), max_steps=30, progress=False, batch=3)
    torch.testing.assert_close(alone.images[0], mixed.images[1], rtol=0, atol=1e-6)
    assert alone.steps[0] == mixed.steps[1]


def test_different_seeds_differ_and_settings_are_recorded():
    out = sample(model(), [1, 2], shape=(1, 8, 8), max_steps=20, init_mean=0.0, progress=False)
    assert not torch.allclose(out.images[0], out.images[1])
    assert out.settings == SamplerSettings(init_mean=0.0, max_steps=20)
    assert len(out.sigmas[0]) == int(out.steps[0])


class Shrink(torch.nn.Module):
    """A noise predictor for the data set {0}: f(y) = y / 2, so sigma_t halves-ish each step."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, y):
        return self.w * y


def test_sampler_converges_and_records_trajectories():
    out = sample(Shrink(), [0, 1], shape=(1, 4, 4), init_mean=0.0, record_every=5, progress=False)
    assert out.converged.all()
    assert out.sigmas[0][-1] <= 0.05 < out.sigmas[0][-2]
    traj = out.trajectories[0]
    assert traj["y"].shape[1:] == (1, 4, 4) and traj["step"][0] == 0
    assert traj["step"][-1] == int(out.steps[0]) - 1


def test_step_size_schedule_grows_from_h0_towards_one():
    assert step_size(1, 0.01) == 0.01
    assert 0.5 < step_size(200, 0.01) < step_size(2000, 0.01) < 1


def test_noise_seeds_keep_the_start_and_change_the_path():
    m = Shrink()
    base = sample(m, [5], shape=(1, 8, 8), max_steps=3, record_every=1, progress=False)
    other = sample(m, [5], shape=(1, 8, 8), max_steps=3, record_every=1, progress=False,
                   noise_seeds=[99])
    same = sample(m, [5], shape=(1, 8, 8), max_steps=3, progress=False, noise_seeds=[5])
    assert base.steps[0] == 3
    assert torch.equal(base.trajectories[0]["y"][0], other.trajectories[0]["y"][0])
    assert not torch.allclose(base.images, other.images)
    assert torch.equal(base.images, same.images)


# h_t = h0 t / (1 + h0 (t - 1)) at h0 = 0.01, by hand: 0.01, 0.02 / 1.01, 0.1 / 1.09
PAPER_STEPS = {1: 1 / 100, 2: 2 / 101, 10: 10 / 109}
# gamma_t^2 / sigma_t^2 = (1 - beta h_t)^2 - (1 - h_t)^2 at beta = 0.1, by hand:
# t = 1: 0.999^2 - 0.99^2;  t = 2: (100.8^2 - 99^2) / 101^2;  t = 10: (108^2 - 99^2) / 109^2
PAPER_GAMMA2 = {1: 0.017901, 2: 359.64 / 10201, 10: 1863 / 11881}


@pytest.mark.parametrize("t", [1, 2, 10])
def test_step_size_and_noise_amplitude_follow_the_papers_formulas(t):
    h = step_size(t, 0.01)
    assert h == pytest.approx(PAPER_STEPS[t], rel=1e-12)
    sigma = torch.tensor([1.0, 0.5], dtype=torch.float64)
    gamma = noise_amplitude(h, 0.1, sigma)
    expected = torch.tensor([1.0, 0.25], dtype=torch.float64) * PAPER_GAMMA2[t]
    torch.testing.assert_close(gamma**2, expected, rtol=1e-12, atol=0)


def test_effective_sigma_is_the_residual_norm_over_the_root_of_the_pixel_count():
    d = torch.tensor([[[[3.0, 4.0], [0.0, 0.0]]], [[[1.0, -1.0], [1.0, -1.0]]]])
    # ||d||^2 / N: 25 / 4 and 4 / 4
    torch.testing.assert_close(effective_sigma(d), torch.tensor([2.5, 1.0]), rtol=0, atol=0)


def test_the_first_two_steps_are_algorithm_1_by_hand():
    out = sample(Shrink(), [5], shape=(1, 4, 4), max_steps=3, record_every=1, progress=False)
    g = torch.Generator().manual_seed(5)
    y = 0.5 + torch.randn(1, 4, 4, generator=g)  # y0 = m + sigma0 z0
    expected = [y]
    for h, gamma2 in ((PAPER_STEPS[1], PAPER_GAMMA2[1]), (PAPER_STEPS[2], PAPER_GAMMA2[2])):
        d = -0.5 * y  # f(y) - y for f(y) = y / 2
        sigma = d.pow(2).sum().div(16).sqrt()
        y = y + h * d + math.sqrt(gamma2) * sigma * torch.randn(1, 4, 4, generator=g)
        expected.append(y)
    torch.testing.assert_close(out.trajectories[0]["y"], torch.stack(expected))
    torch.testing.assert_close(out.images[0], 0.5 * expected[2])  # f(y2), the last estimate


def test_the_run_cache_draws_each_seed_once_and_gives_what_sampling_gives(tmp_path, monkeypatch):
    from diffgen_utils import sampling

    m, shape = model(), (1, 8, 8)
    fresh = sample(m, [4, 1, 9], shape=shape, max_steps=30, progress=False)
    monkeypatch.setenv(sampling.SAMPLE_CACHE_ENV, str(tmp_path))
    first = sample(m, [1, 9], shape=shape, max_steps=30, progress=False)
    both = sample(m, [4, 1, 9], shape=shape, max_steps=30, progress=False)  # draws seed 4 only
    torch.testing.assert_close(both.images, fresh.images, rtol=0, atol=1e-6)
    assert both.steps.tolist() == fresh.steps.tolist() and both.seeds == [4, 1, 9]
    assert both.sigmas[1] == pytest.approx(fresh.sigmas[1]) and both.trajectories == []
    torch.testing.assert_close(first.images, fresh.images[1:], rtol=0, atol=1e-6)

    def no_sampling(*args, **kwargs):  # from here on, drawing anything is an error
        raise AssertionError("drew a seed although the cache holds it")

    monkeypatch.setattr(sampling, "_sample_chunk", no_sampling)
    again = sample(m, [9, 4], shape=shape, max_steps=30, progress=False)
    torch.testing.assert_close(again.images, fresh.images[[2, 0]], rtol=0, atol=0)
    with pytest.raises(AssertionError, match="cache holds"):  # other settings: another file
        sample(m, [9], shape=shape, max_steps=31, progress=False)
    other = model()
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    with pytest.raises(AssertionError, match="cache holds"):  # other weights: another file
        sample(other, [9], shape=shape, max_steps=30, progress=False)
    with pytest.raises(AssertionError, match="cache holds"):  # paths are never cached
        sample(m, [9], shape=shape, max_steps=30, progress=False, record_every=1)
    assert len(list(tmp_path.glob("*.pt"))) == 1


def test_model_digest_reads_every_kind_of_tensor_and_sees_a_change():
    from diffgen_utils.sampling import model_digest

    m = torch.nn.Module()
    m.register_buffer("scalar", torch.tensor(3.0))  # 0-dim, as a learned scale
    m.register_buffer("empty", torch.zeros(0))
    m.register_buffer("transposed", torch.ones(3, 4).t())  # not contiguous
    before = model_digest(m)
    assert model_digest(m) == before
    m.scalar += 1e-6
    assert model_digest(m) != before
