import numpy as np
import pytest
import torch

from diffgen_utils import config, families, synthetic
from diffgen_utils.chapters import optimality


class Passthrough(torch.nn.Module):
    """Predicts zero noise: f(y) = y, output PSNR = input PSNR."""

    def forward(self, y):
        return torch.zeros_like(y)


class Shrink(torch.nn.Module):
    """f(y) = y / 2: for x = 0 the output error is sigma / 2, i.e. +6.02 dB at every sigma."""

    def forward(self, y):
        return y / 2


def test_names_follow_the_zoo():
    book = config.get_profile("book")
    assert families.CALPHA.name(book, 4) == "calpha4-N20000"
    assert families.CALPHA.name(book, 1.5, book.calpha.background) == "calpha-c1.5-b8-N20000"


def test_held_out_images_are_the_test_seed():
    smoke = config.get_profile("smoke")
    parts = optimality.held_out(2.0, smoke, 3)
    assert parts.images.shape == (3, 1, smoke.synthetic_size, smoke.synthetic_size)
    train = synthetic.calpha(3, smoke.synthetic_size, 2.0, synthetic.TRAIN_SEEDS["S1"])
    assert not torch.allclose(parts.images, train)
    assert torch.equal(parts.images,
                       synthetic.calpha(3, smoke.synthetic_size, 2.0, synthetic.TEST_SEED))


def test_identity_denoiser_has_slope_one():
    images = torch.rand(64, 1, 16, 16)
    curve = optimality.rate_curve(Passthrough(), images, alpha=1.0, seed=1)
    assert curve.slope == pytest.approx(1.0, abs=0.01)
    assert curve.optimal == 0.5 and curve.error == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(curve.output_psnr, curve.input_psnr, atol=0.2)


def test_constant_gain_keeps_the_slope_and_shifts_the_curve():
    zero = torch.zeros(64, 1, 8, 8)
    plain = optimality.rate_curve(Passthrough(), zero, alpha=4.0, seed=2)
    halved = optimality.rate_curve(Shrink(), zero, alpha=4.0, seed=2)
    assert halved.slope == pytest.approx(plain.slope, abs=1e-6)
    assert plain.slope == pytest.approx(1.0, abs=0.02)
    np.testing.assert_allclose(halved.output_psnr - plain.output_psnr, 20 * np.log10(2), atol=1e-3)


def test_local_slopes_of_a_broken_line():
    x = np.array([0.0, 10.0, 20.0, 30.0])
    curve = optimality.RateCurve(1.0, x, np.array([0.0, 5.0, 10.0, 20.0]), (0.0, 30.0), 0.6, 0.0)
    mids, slopes = curve.local_slopes()
    np.testing.assert_allclose(mids, [5, 15, 25])
    np.testing.assert_allclose(slopes, [0.5, 0.5, 1.0])


def test_slope_rows_carry_the_paper_where_it_has_one():
    x = np.array([10.0, 40.0])
    curves = {a: optimality.RateCurve(a, x, x * 0.5, (10.0, 40.0), 0.5, 0.0) for a in (1.0, 4.0)}
    rows = optimality.slope_rows(curves)
    assert rows[0] == [1.0, 0.5, 0.5, 0.0, 0.46]
    assert rows[1][1] == pytest.approx(0.8) and rows[1][4] is None


def test_participation_counts_occupied_pixels():
    flat = torch.ones(1, 4, 4)
    spike = torch.zeros(1, 4, 4)
    spike[0, 1, 2] = -3.0
    two = torch.zeros(1, 4, 4)
    two[0, 0, 0], two[0, 3, 3] = 1.0, -1.0
    np.testing.assert_allclose(optimality.participation(torch.cat([flat, spike, two])), [16, 1, 2])


def test_near_contour_share():
    v = torch.zeros(2, 8, 8)
    v[0, 4, :] = 1.0  # on the contour row
    v[1, 0, :] = 1.0  # four rows away
    contour = torch.full((8, ), 4.0)
    np.testing.assert_allclose(optimality.near_contour_share(v, contour, width=2), [1.0, 0.0])
    np.testing.assert_allclose(optimality.near_contour_share(v, contour, width=4), [1.0, 1.0])


def test_decay_exponent_recovers_a_power_law():
    k = np.arange(1, 201)
    coeffs = np.random.default_rng(0).permutation(3.0 * k**-1.5)
    assert optimality.decay_exponent(coeffs, (1, 200)) == pytest.approx(-1.5, abs=1e-9)


def test_linear_denoiser_is_exact_on_a_gaussian_line():
    g = torch.Generator().manual_seed(5)
    direction = torch.randn(16, generator=g, dtype=torch.float64)
    direction /= direction.norm()
    images = (torch.randn(4000, 1, generator=g, dtype=torch.float64) * direction).reshape(
        -1, 1, 4, 4)
    wiener = optimality.LinearDenoiser(images)
    y = images[:3] + 0.1 * torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64)
    # the Wiener filter of a 1-D Gaussian: project on the line, shrink by s^2 / (s^2 + sigma^2)
    coeff = y.reshape(3, -1) @ direction
    expected = (coeff * (1 / (1 + 0.01)))[:, None] * direction
    torch.testing.assert_close(wiener(y, 0.1).reshape(3, -1), expected, atol=0.02, rtol=0)


def test_slope_rows_with_the_linear_reference():
    x = np.array([0.0, 10.0, 20.0, 30.0])
    net = optimality.RateCurve(4.0, x, np.array([5.0, 12.0, 21.0, 30.0]), (0.0, 30.0), 0.8, 0.0)
    lin = optimality.RateCurve(4.0, x, np.array([8.0, 13.0, 20.0, 29.0]), (0.0, 30.0), 0.7, 0.0)
    assert list(optimality.beats_linear(net, lin)) == [20.0, 30.0]
    row = optimality.slope_rows({4.0: net}, {4.0: lin})[0]
    assert row[5:] == [0.7, "20-30 dB"]


def test_below_linear_reads_the_worst_point_inside_the_fit_range():
    x = np.array([5.0, 10.0, 20.0, 40.0, 45.0])
    net = optimality.RateCurve(2.0, x, np.array([0.0, 14.0, 24.0, 45.0, 0.0]), (10.0, 40.0), 0, 0)
    lin = optimality.RateCurve(2.0, x, np.array([9.0, 15.0, 23.0, 45.5, 9.0]), (10.0, 40.0), 0, 0)
    assert optimality.below_linear(net, lin) == pytest.approx(1.0)  # at 10 dB; 5 and 45 are out
    better = optimality.RateCurve(2.0, x, lin.output_psnr + 1, (10.0, 40.0), 0, 0)
    assert optimality.below_linear(better, lin) == 0.0


def test_scorecard_rows_carry_intervals_over_the_test_images():
    images = torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    curve = optimality.rate_curve(Shrink(), images, alpha=4.0, seed=1)
    assert curve.per_image.shape == (len(optimality.rate_sigmas()), 48)
    np.testing.assert_allclose(curve.per_image.mean(1), curve.output_psnr, rtol=1e-6)
    assert curve.slope_of(curve.per_image) == pytest.approx(curve.slope)
    linear = optimality.linear_curve(images, images, alpha=4.0, seed=1)  # the same noise
    assert linear.per_image.shape == curve.per_image.shape
    rows = optimality.scorecard_measurements({4.0: curve}, {4.0: linear}, {4.0: "calpha4"})
    slope, below = rows
    assert slope["interval"][0] <= curve.slope <= slope["interval"][1]
    assert 0 < np.diff(slope["interval"]) < 0.1
    assert below["interval"][0] <= below["measured"] <= below["interval"][1]
    assert optimality.below_linear_interval(curve, linear) == tuple(below["interval"])
    stored = optimality.RateCurve(4.0, curve.input_psnr, curve.output_psnr, curve.fit_range,
                                  curve.slope, curve.intercept)  # no per-image values
    assert optimality.scorecard_measurements({4.0: stored}, {4.0: linear},
                                             {4.0: "c"})[0]["interval"] is None


def test_below_linear_interval_resamples_the_images_in_pairs():
    x = np.array([10.0, 20.0, 30.0])
    faces = np.random.default_rng(0).normal(20, 5, size=(1, 40)) + np.zeros((3, 1))
    net = optimality.RateCurve(2.0, x, faces.mean(1), (10.0, 30.0), 0, 0, faces)
    lin = optimality.RateCurve(2.0, x, faces.mean(1) + 1, (10.0, 30.0), 0, 0, faces + 1)
    assert optimality.below_linear(net, lin) == pytest.approx(1.0)
    assert optimality.below_linear_interval(net, lin) == pytest.approx((1.0, 1.0))
