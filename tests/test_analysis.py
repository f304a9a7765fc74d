import numpy as np
import pytest
import torch

from diffgen_utils import analysis


def rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_psnr_known_values():
    clean = torch.zeros(3, 1, 4, 4)
    est = clean + torch.tensor([0.1, 0.01, 1.0]).view(3, 1, 1, 1)  # MSE 1e-2, 1e-4, 1
    assert torch.allclose(analysis.psnr(clean, est), torch.tensor([20.0, 40.0, 0.0]), atol=1e-4)
    assert torch.isfinite(analysis.psnr(clean, clean)).all()  # no division by zero


def test_input_psnr():
    assert np.allclose(analysis.input_psnr([1.0, 0.1, 0.01]), [0.0, 20.0, 40.0])
    assert np.isclose(analysis.input_psnr(25 / 255), 10 * np.log10(255**2 / 25**2))


def test_cosine_mean_removed_invariant_to_affine_maps():
    a = rand(6, 1, 8, 8)
    b = 2.5 * a + 0.7
    mr = analysis.cosine_similarity(a, b)
    assert torch.allclose(mr, torch.ones(6), atol=1e-6)
    raw = analysis.cosine_similarity(a, b, mean_removed=False)
    assert (raw < 0.999).all()
    assert torch.allclose(analysis.cosine_similarity(a, 3 * a, mean_removed=False), torch.ones(6),
                          atol=1e-6)
    assert torch.allclose(analysis.cosine_similarity(a, -a + 1), -torch.ones(6), atol=1e-6)


def test_cosine_matches_formula():
    a, b = rand(5, 1, 6, 6), rand(5, 1, 6, 6, seed=1)
    fa, fb = a.flatten(1).double(), b.flatten(1).double()
    fa, fb = fa - fa.mean(1, keepdim=True), fb - fb.mean(1, keepdim=True)
    expected = (fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1))
    assert torch.allclose(analysis.cosine_similarity(a, b), expected.float(), atol=1e-6)


@pytest.mark.parametrize("mean_removed", [True, False])
def test_nearest_neighbors_equals_brute_force(mean_removed):
    queries, pool = rand(7, 1, 5, 5, seed=2), rand(23, 1, 5, 5, seed=3)
    index, best = analysis.nearest_neighbors(queries, pool, mean_removed=mean_removed, block=4)
    sims = torch.stack(
        [analysis.cosine_similarity(q.expand_as(pool), pool, mean_removed) for q in queries])
    value, arg = sims.max(dim=1)
    assert torch.equal(index, arg)
    assert torch.allclose(best, value, atol=1e-5)


def test_nearest_neighbors_finds_affine_copy():
    pool = rand(10, 1, 6, 6, seed=4)
    queries = 0.5 * pool[[7, 2]] + 0.2
    index, best = analysis.nearest_neighbors(queries, pool, block=3)
    assert index.tolist() == [7, 2] and torch.allclose(best, torch.ones(2), atol=1e-5)


def test_fit_slope():
    x = np.linspace(0, 10, 11)
    y = -0.75 * x + 4
    y[[0, 10]] = 100  # outside the range
    slope, intercept = analysis.fit_slope(x, y, (1, 9))
    assert slope == pytest.approx(-0.75) and intercept == pytest.approx(4)
    assert analysis.fit_slope(x[1:10], y[1:10]) == pytest.approx((-0.75, 4))
    assert analysis.fit_slope([2, 3], [1, 3], (2, 3)) == pytest.approx((2, -3))  # inclusive
    with pytest.raises(ValueError, match="at least two points"):
        analysis.fit_slope(x, y, (1.5, 1.9))
    with pytest.raises(ValueError, match="at least two points"):
        analysis.fit_slope(x, y, (4.5, 5.5))


class Zero(torch.nn.Module):
    """Predicts no noise: the denoiser f(y) = y - 0 is the identity."""

    def forward(self, y):
        return torch.zeros_like(y)


class ZeroWithParameter(Zero):

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))


@pytest.mark.parametrize("net", [Zero, ZeroWithParameter])
def test_evaluate_psnr_of_identity_denoiser_is_input_psnr(net):
    images = rand(64, 1, 8, 8, seed=5)
    sigmas = [0.02, 0.1, 0.4]
    model = net().train()
    out = analysis.evaluate_psnr(model, images, sigmas, batch=24)
    assert out.shape == (3, )
    assert np.allclose(out, analysis.input_psnr(sigmas), atol=0.3)
    assert model.training  # mode restored
    assert np.array_equal(out, analysis.evaluate_psnr(model, images, sigmas, batch=24))  # seeded


def test_psnr_curve_sees_the_noisy_image_and_its_sigma_and_caps():
    images = rand(16, 1, 8, 8, seed=6)
    seen = []

    def oracle(y, sigma):  # returns the clean image, recovered from y and the seeded noise
        seen.append(sigma)
        return images

    out = analysis.psnr_curve(oracle, images, [0.1, 0.3], seed=3, max_db=60)
    assert seen == [0.1, 0.3] and np.array_equal(out, [60.0, 60.0])
    identity = analysis.psnr_curve(lambda y, sigma: y, images, [0.1, 0.3], seed=3)
    assert np.allclose(identity, analysis.input_psnr([0.1, 0.3]), atol=0.6)
    assert not np.array_equal(identity,
                              analysis.psnr_curve(lambda y, s: y, images, [0.1, 0.3], seed=4))


def test_psnr_per_image_rows_are_sigmas_and_average_to_the_curve():
    images = rand(10, 1, 8, 8, seed=7)
    blur = lambda y, sigma: 0.5 * (y + y.roll(1, dims=-1))  # noqa: E731
    each = analysis.psnr_per_image(blur, images, [0.05, 0.2, 0.5], seed=2, batch=4)
    assert each.shape == (3, 10)
    assert np.array_equal(analysis.image_means(each),
                          analysis.psnr_curve(blur, images, [0.05, 0.2, 0.5], seed=2, batch=4))
    assert (each[0] > each[2]).all()  # less noise, better output, image by image
    y = images[3:4] + analysis.add_noise(torch.zeros(10, 1, 8, 8), 0.05, seed=2)[3:4]
    assert torch.allclose(each[0, 3], analysis.psnr(images[3:4], blur(y, 0.05))[0])


def test_evaluate_psnr_per_image_averages_to_evaluate_psnr():
    images, model = rand(40, 1, 8, 8, seed=8), ZeroWithParameter().train()
    each = analysis.evaluate_psnr_per_image(model, images, [0.1, 0.4], seed=5, batch=16)
    assert each.shape == (2, 40) and model.training
    assert np.array_equal(analysis.image_means(each),
                          analysis.evaluate_psnr(model, images, [0.1, 0.4], seed=5, batch=16))


def test_bootstrap_interval_of_a_mean_has_the_normal_width():
    values = np.random.default_rng(1).normal(3.0, 2.0, size=400)
    lo, hi = analysis.bootstrap_interval(np.mean, values)
    half = 1.645 * values.std() / np.sqrt(len(values))  # the 90% normal interval
    assert lo < values.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    assert analysis.bootstrap_interval(np.mean, values) == (lo, hi)  # fixed seed
    assert analysis.bootstrap_interval(np.mean, values, seed=1) != (lo, hi)
    assert analysis.bootstrap_interval(np.median, np.full(9, 0.25)) == (0.25, 0.25)


def test_bootstrap_interval_resamples_the_last_axis_and_samples_apart():
    rng = np.random.default_rng(2)
    common = rng.normal(0, 5, size=200)  # shared by the two values of each image
    paired = np.stack([common + 1 + rng.normal(0, 0.1, 200), common + rng.normal(0, 0.1, 200)])
    shapes = []

    def drop(v):
        shapes.append(v.shape)
        return v[0].mean() - v[1].mean()

    lo, hi = analysis.bootstrap_interval(drop, paired, resamples=200)
    assert set(shapes) == {(2, 200)} and lo < 1 < hi and hi - lo < 0.05
    apart = analysis.bootstrap_interval(lambda a, b: a.mean() - b.mean(), *paired, resamples=200)
    assert apart[1] - apart[0] > 10 * (hi - lo)  # two samples are drawn independently


def test_median_is_torchs_lower_median():
    assert analysis.median([4.0, 1.0, 3.0, 2.0]) == 2.0
    assert analysis.median(np.array([[5.0, 1.0], [3.0, 9.0]])) == 3.0  # over every entry
    assert analysis.median(torch.tensor([0.5, 0.1, 0.9])) == pytest.approx(0.5)


def history(gains, steps=(50, 100), lr=(1e-3, 1e-3), sigmas=(0.01, 0.04)):
    """Two evaluations: PSNR 20 dB at half-way, 20 + gain at the end."""
    return [{
        "step": steps[0], "lr": lr[0], "sigmas": list(sigmas), "test_psnr": [20.0] * 2,
        "train_psnr": [30.0] * 2
    }, {
        "step": steps[1], "lr": lr[1], "sigmas": list(sigmas), "test_psnr":
        [20.0 + g for g in gains], "train_psnr": [30.0] * 2
    }]


def test_convergence_needs_every_sigma_flat_and_a_live_learning_rate():
    assert analysis.convergence(history([0.1, 0.29]), 1e-3, [0.01, 0.04]).converged
    late = analysis.convergence(history([0.1, 0.31]), 1e-3, [0.01, 0.04])
    assert not late.converged and "0.04" in late.summary() and "+0.31" in late.summary()
    assert analysis.convergence(history([0.1, 0.31]), 1e-3, [0.01]).converged  # only 0.01 claimed
    starved = analysis.convergence(history([0.0, 0.0], lr=(2e-4, 0)), 1e-3, [0.01, 0.04])
    assert not starved.converged and starved.halfway_lr_ratio == 0.2
    assert analysis.convergence(history([0.0, 0.0]), 1e-3, [0.01], split="train").converged


def test_convergence_refuses_a_sigma_that_was_not_evaluated():
    with pytest.raises(ValueError, match="0.2 was not evaluated"):
        analysis.convergence(history([0.0, 0.0]), 1e-3, [0.2])
    with pytest.raises(ValueError, match="half-way"):
        analysis.convergence(history([0.0, 0.0], steps=(60, 100)), 1e-3, [0.01])
