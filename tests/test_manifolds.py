"""Chapter 5 helpers: principal angles, the manifold optimum, rank counting, the sweep."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from diffgen_utils import synthetic
from diffgen_utils import jacobian as jm
from diffgen_utils.chapters import manifolds


def _random_basis(d, k, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(d, k, generator=g, dtype=torch.float64))[0]


def test_overlap_with_itself_is_one_and_basis_free():
    A = _random_basis(50, 5, 0)
    rotation = _random_basis(5, 5, 1)  # another orthonormal basis of the same span
    scales = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0], dtype=torch.float64)
    mixed = A @ rotation @ torch.diag(scales)  # a non-orthonormal basis of the same span
    cosines = manifolds.principal_cosines(A, A @ rotation)
    assert torch.allclose(cosines, torch.ones(5, dtype=torch.float64), atol=1e-10)
    assert manifolds.subspace_overlap(A, mixed) == pytest.approx(1.0, abs=1e-10)


def test_overlap_with_orthogonal_subspace_is_zero():
    Q = _random_basis(40, 6, 2)
    assert manifolds.subspace_overlap(Q[:, :3], Q[:, 3:]) == pytest.approx(0.0, abs=1e-12)


def test_principal_angle_of_a_rotated_line():
    # span{e0} against span{cos(t) e0 + sin(t) e1, e2}: one angle t
    t = 0.3
    e = torch.eye(4, dtype=torch.float64)
    A = e[:, :1]
    B = torch.stack([math.cos(t) * e[:, 0] + math.sin(t) * e[:, 1], e[:, 2]], dim=1)
    cos = manifolds.principal_cosines(A, B)
    assert cos.shape == (1, )
    assert cos.item() == pytest.approx(math.cos(t), abs=1e-12)
    # two planes at angles 0 and t: cosines descending, mean square (1 + cos^2 t) / 2
    P = e[:, [0, 2]]
    Q = torch.stack([e[:, 0], math.cos(t) * e[:, 2] + math.sin(t) * e[:, 3]], dim=1)
    assert manifolds.principal_cosines(P, Q).tolist() == pytest.approx([1.0, math.cos(t)])
    assert manifolds.subspace_overlap(P, Q) == pytest.approx((1 + math.cos(t)**2) / 2)


def test_overlap_of_random_subspaces_is_about_p_over_d():
    d, p = 400, 5
    values = [
        manifolds.subspace_overlap(_random_basis(d, p, s), _random_basis(d, p, s + 100))
        for s in range(20)
    ]
    assert np.mean(values) == pytest.approx(p / d, rel=0.3)


def test_dimension_mismatch_is_an_error():
    with pytest.raises(ValueError):
        manifolds.principal_cosines(torch.ones(4, 1), torch.ones(5, 1))


def test_optimal_psnr_by_hand():
    # d = 1024, a 5-D manifold, sigma = 0.04: MSE = 5 * 0.0016 / 1024 = 7.8125e-6, 51.07 dB
    in_psnr = -20 * math.log10(0.04)
    assert manifolds.manifold_optimal_psnr(in_psnr, 1024,
                                           5) == pytest.approx(10 * math.log10(1 / 7.8125e-6))
    assert manifolds.manifold_optimal_psnr(in_psnr, 1024, 5) == pytest.approx(51.0721, abs=1e-4)
    # a 1-D manifold (the face ray): intercept 10 log10(d), slope 1
    x = np.array([10.0, 30.0])
    assert manifolds.manifold_optimal_psnr(x, 1024, 1).tolist() == pytest.approx(
        (x + 30.103).tolist(), abs=1e-3)
    with pytest.raises(ValueError):
        manifolds.manifold_optimal_psnr(x, 16, 17)


def test_optimum_table_gives_the_shortfall():
    # sigma = 0.1: 20 dB in; d = 100, a 1-D manifold: optimum 40 dB
    table = manifolds.optimum_table([0.1], [37.5], 100, 1).splitlines()
    assert table[0].split() == ["sigma", "input", "PSNR", "network", "optimum", "shortfall"]
    assert table[1].split() == ["0.1000", "20.0", "37.50", "40.00", "2.50"]


def test_rank_above_counts_strictly():
    assert manifolds.rank_above(torch.tensor([1.2, 0.9, 0.5, 0.49, -0.7])) == 2
    assert manifolds.rank_above(torch.tensor([1.2, 0.9, 0.5, 0.49]), threshold=0.4) == 4
    assert manifolds.rank_above(np.zeros(3)) == 0


def test_psnr_fit_recovers_a_known_line():
    sigmas = np.array([0.004, 0.01, 0.03, 0.1, 0.5])
    x = -20 * np.log10(sigmas)
    slope, intercept = manifolds.psnr_fit(sigmas, 0.7 * x + 12, fit_range=(15, 50))
    assert (slope, intercept) == pytest.approx((0.7, 12))
    with pytest.raises(ValueError):  # fewer than two points in the range
        manifolds.psnr_fit(sigmas, x, fit_range=(0, 7))


def test_with_constant_is_orthonormal_and_contains_the_constant():
    rows = manifolds.with_constant(synthetic.cone_tangent(8))
    assert rows.shape == (3, 64)
    assert torch.allclose(rows @ rows.T, torch.eye(3, dtype=torch.float64), atol=1e-6)
    const = torch.ones(64, 1, dtype=torch.float64)
    assert manifolds.subspace_overlap(rows.T, const) == pytest.approx(1.0)


def test_disk_tangent_images_span_the_tangent_space():
    _, theta = manifolds.held_out_disks(2, 16)
    images = manifolds.disk_tangent_images(theta[0], 16)
    assert images.shape == (5, 16, 16)
    assert images.flatten(1).norm(dim=1).tolist() == pytest.approx([1.0] * 5)
    basis = synthetic.disk_tangent_space(theta[0], 16).double()
    assert manifolds.subspace_overlap(images.reshape(5, -1).T, basis.T) == pytest.approx(1.0)
    assert manifolds.contrast(theta).tolist() == pytest.approx(
        (theta[:, 3] - theta[:, 4]).abs().tolist())


class _Projector(torch.nn.Module):
    """A bias-free 'network' whose denoiser f(y) = y - net(y) is the projection onto span(B):
    the small-noise optimum for a manifold with tangent space span(B)."""

    def __init__(self, B: torch.Tensor, size: int):
        super().__init__()
        self.register_buffer("P", (B @ B.T).float())
        self.size = size
        self.weight = torch.nn.Parameter(torch.zeros(1))  # jacobian helpers read a dtype

    def forward(self, y):
        flat = y.reshape(len(y), -1)
        return (flat - flat @ self.P.T).reshape(y.shape) + 0 * self.weight


def test_projection_denoiser_has_tangent_eigenspace_and_rank():
    size = 6
    B = _random_basis(size * size, 3, 5)
    net = _Projector(B, size).eval()
    x = torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(0))
    a = jm.analyze(net, x[0], 0.1, seed=0)
    assert a.eigvals[:3].tolist() == pytest.approx([1, 1, 1], abs=1e-5)
    assert manifolds.rank_above(a.eigvals) == 3
    assert manifolds.tangent_overlap(a, B.T) == pytest.approx(1.0, abs=1e-6)
    assert manifolds.tangent_cosines(a, B.T[:2], k=3).tolist() == pytest.approx([1, 1], abs=1e-6)
    assert manifolds.tangent_gains(a, B.T).tolist() == pytest.approx([1, 1, 1], abs=1e-5)
    assert manifolds.kept_overlap(a, B.T) == (pytest.approx(1.0, abs=1e-6), 3)
    other = _random_basis(size * size, 40, 6)[:, 3:5]  # two directions the projection removes
    other = other - B @ (B.T @ other)
    assert manifolds.tangent_gains(a, torch.linalg.qr(other)[0].T).abs().max() < 1e-5
    fig = manifolds.spectrum_figure({"x": a.eigvals}, {"x": a}, 3)
    assert len(fig.axes) == 3 and fig.axes[2].get_yscale() == "log"
    plt.close(fig)
    sweep = manifolds.manifold_sweep(net, x, B.T, [0.05, 0.5], seed=1, n_top=4)
    assert sweep.rank.shape == (2, 2) and (sweep.rank == 3).all()
    assert sweep.overlap == pytest.approx(np.ones((2, 2)), abs=1e-6)
    assert sweep.effective_dim == pytest.approx(np.full((2, 2), 3.0), abs=1e-4)
    assert sweep.top_eigvals.shape == (2, 2, 4)


def test_paper_rows_mark_unknown_eigenvalues():
    ours = {"a": torch.arange(10, dtype=torch.float64)}
    rows = manifolds.paper_eigenvalue_rows(ours)
    assert [r[1] for r in rows] == [
        "1.177", "1.067", "1.004", "0.999", "0.945", "0.674", "unknown", "unknown", "unknown",
        "0.278"
    ]
    assert rows[7][2] == 7.0


def test_receptive_field_of_a_local_and_a_global_denoiser():
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    torch.nn.init.uniform_(conv.weight, 0.1, 0.2)  # every tap non-zero
    x = torch.rand(1, 9, 9, generator=torch.Generator().manual_seed(1))
    a = jm.analyze(conv.eval(), x, 0.1, seed=0)
    assert manifolds.receptive_field(a) == (3, 3)
    dense = _Projector(_random_basis(81, 2, 3), 9).eval()
    assert manifolds.receptive_field(jm.analyze(dense, x, 0.1, seed=0)) == (9, 9)


def test_training_comparison_reads_the_arms_and_the_bf16_difference(tmp_path):
    import json

    def arm(psnr, bf16):
        cfg = dict(blocks=2, batch=64, lr=5e-4, lr_schedule="cosine", sigma_sampling="log_uniform")
        return {
            "config": cfg, "speed": {"bf16": bf16}, "images": [100, 200], "sigmas": [0.01, 0.04],
            "test_psnr": [[30.0, 20.0], psnr], "wall_time_s": 120.0, "tangent_overlap": 0.9,
            "kept_directions": 7.0, "gain_db": 15.0
        }

    path = tmp_path / "comparison.json"
    path.write_text(
        json.dumps(
            {"arms": {"steady": arm([40.0, 30.0], False), "steady_bf16": arm([40.1, 29.7],
                                                                             True)}}))
    arms = manifolds.training_comparison(path)
    sigmas, diff = manifolds.bf16_difference(arms)
    assert sigmas.tolist() == [0.01, 0.04] and np.allclose(diff, [0.1, -0.3])
    rows = manifolds.comparison_rows(arms)
    assert rows[1][2] == "on" and rows[0][3] == 200 and rows[0][4] == 2.0 and rows[1][5] == 29.7
    fig, axes = plt.subplots(1, 2)
    manifolds.plot_training_comparison(axes, arms)
    plt.close(fig)
    with pytest.raises(FileNotFoundError, match="compare_training.py"):
        manifolds.training_comparison(tmp_path / "absent.json")


def test_tangent_overlaps_take_one_basis_each_or_one_for_all():
    size = 6
    B = _random_basis(size * size, 3, 5)
    net = _Projector(B, size).eval()
    x = torch.rand(3, 1, size, size, generator=torch.Generator().manual_seed(1))
    fits = manifolds.analyze_all(net, x, 0.1)
    assert manifolds.tangent_overlaps(fits, B.T) == pytest.approx([1, 1, 1], abs=1e-6)
    other = _random_basis(size * size, 3, 7).T
    each = torch.stack([B.T, other, B.T])
    overlaps = manifolds.tangent_overlaps(fits, each)
    assert overlaps[0] == overlaps[2] == manifolds.tangent_overlap(fits[0], B.T)
    assert overlaps[1] == manifolds.tangent_overlap(fits[1], other) < 0.5


def scorecard_inputs(n_disks=8, n_eval=32, d=16):
    rng = np.random.default_rng(0)
    sigmas = np.array([0.01, 0.02, 0.04, 0.08])
    slope_line = manifolds.input_psnr(sigmas) * 0.8 + 10
    return dict(disk_overlaps=rng.uniform(0.2, 0.4,
                                          n_disks), disk_slope=0.8, rank_sigmas=[0.01, 0.5],
                rank_growth=3.0, disk_eigvals=torch.tensor(rng.uniform(0, 1.2, (n_disks, d))).sort(
                    1, True).values, disk_shortfall=1.5, n_eval=n_eval, ray_cosine=0.05,
                cone_overlaps=rng.uniform(0.5, 0.8, 4), cone_overlap3=0.9, psnr_sigmas=sigmas,
                disk_psnr=slope_line[:, None] + rng.normal(0, 1, (4, n_eval)),
                disk_at_sigma=rng.normal(30, 2, n_eval))


def test_scorecard_rows_carry_intervals_over_the_images_they_average():
    names = {"disks": "disks-N1", "ray": "ray-N1", "cone": "cone-N1"}
    inputs = scorecard_inputs()
    rows = {r["id"]: r for r in manifolds.scorecard_measurements(names, **inputs)}
    overlap = rows["Fig5.tangent_overlap"]
    assert overlap["measured"] == float(np.mean(inputs["disk_overlaps"]))
    assert overlap["interval"] == pytest.approx(
        manifolds.bootstrap_interval(np.mean, inputs["disk_overlaps"]))
    assert "8 test disks" in overlap["measure"]
    lam = rows["Fig5.lambda_5"]
    assert lam["measured"] == float(inputs["disk_eigvals"].mean(0)[5])
    assert lam["interval"][0] < lam["measured"] < lam["interval"][1]
    slope = rows["Fig5.disk_psnr_slope"]["interval"]
    assert slope[0] < 0.8 < slope[1] and slope[1] - slope[0] < 0.2
    lo, hi = rows["Fig5.disk_gain_shortfall_dB"]["interval"]
    optimum = manifolds.small_noise_optimum([manifolds.DISK_SIGMA], 16, manifolds.DISK_DIM)[0]
    mean = inputs["disk_at_sigma"].mean()
    assert lo < optimum - mean < hi and hi - lo < 2  # the shortfall of the mean PSNR
    cone = rows["Fig20.tangent_overlap"]
    assert cone["measured"] == float(np.mean(inputs["cone_overlaps"]))
    assert cone["interval"][0] <= cone["measured"] <= cone["interval"][1]
    assert "interval" not in rows["Fig19.first_eigvec"]  # one face's Jacobian
    assert rows["Fig5.disk_rank_growth"].get("interval") is None  # reported only
    without = manifolds.scorecard_measurements(
        names, **{**inputs, "disk_psnr": None, "disk_at_sigma": None})
    assert [
        r.get("interval") for r in without
        if r["id"] in ("Fig5.disk_psnr_slope", "Fig5.disk_gain_shortfall_dB")
    ] == [None, None]
