"""diffgen_utils.chapters.harmonic (chapter 3)."""
import io
from dataclasses import replace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from diffgen_utils import config, data  # noqa: E402
from diffgen_utils import jacobian as jm  # noqa: E402
from diffgen_utils.chapters import harmonic  # noqa: E402
from diffgen_utils.models import UNet  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_unet():
    torch.manual_seed(0)
    model = UNet(blocks=1, width=4)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    model.eval()
    for m in model.modules():  # an O(1) network part, so that J is not ~ I
        if hasattr(m, "gamma"):
            m.gamma.data = torch.randn(m.gamma.shape, generator=torch.Generator().manual_seed(1))
    return model.double()


@pytest.fixture(scope="module")
def analysis(tiny_unet):
    x = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(2)).double()
    return jm.analyze(tiny_unet, x, 0.2, seed=0)


def test_rescale_index_keeps_the_fraction_of_the_spectrum():
    assert harmonic.rescale_index(5, 400) == 0
    assert harmonic.rescale_index(245, 400) == 15  # 15.3
    assert harmonic.rescale_index(3200, 400) == 200
    assert harmonic.rescale_index(6399, 400) == 399  # never past the end
    assert harmonic.rescale_index(100, 6400) == 100  # identity at the paper's size
    assert harmonic.index_map(harmonic.FIG3_LAMBDAS,
                              400) == {5: 0, 17: 1, 53: 3, 101: 6, 149: 9, 197: 12, 245: 15}


def test_eigenvalue_rows():
    eigvals = torch.linspace(1, 0, 400, dtype=torch.float64)
    rows = harmonic.eigenvalue_rows(harmonic.FIG3_LAMBDAS, eigvals)
    assert [r[0] for r in rows] == list(harmonic.FIG3_LAMBDAS)
    assert [r[2] for r in rows] == list(harmonic.FIG3_LAMBDAS.values())
    k, ours, _, at_ours, at_paper = rows[-1]
    assert (k, ours) == (245, 15)
    assert at_ours == pytest.approx(eigvals[15].item())
    assert at_paper == pytest.approx(eigvals[245].item())
    small = harmonic.eigenvalue_rows(harmonic.FIG3_LAMBDAS, eigvals[:100])
    assert small[-1][4] is None  # the paper's k is past our d


def test_sigma_sweep_on_a_tiny_unet(tiny_unet):
    faces = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)).double()
    sweep = harmonic.sigma_sweep(tiny_unet, faces, [0.1, 0.5], seed=4)
    assert sweep.effective_dim.shape == (2, 2)
    assert (sweep.homogeneity_error < 1e-8).all()  # bias-free: f(y) = J y
    # the same numbers as analyze() with noise seed + i
    a = jm.analyze(tiny_unet, faces[1], 0.5, seed=5)
    J = a.jacobian.double()
    assert sweep.asymmetry[1, 1] == pytest.approx(((J - J.T).norm() / J.norm()).item())
    assert sweep.effective_dim[1, 1] == pytest.approx(J.trace().item())
    assert sweep.min_eigval[1, 1] == pytest.approx(a.eigvals[-1].item())


class LinearDenoiser(torch.nn.Module):
    """The denoiser f(y) = J y of a given d x d matrix J, on 2x2 images (d = 4)."""

    def __init__(self, J):
        super().__init__()
        self.A = torch.nn.Parameter(torch.eye(len(J), dtype=torch.float64) - J)  # net = I - J

    def forward(self, y):
        return (y.flatten(1) @ self.A.T).reshape(y.shape)


# an orthonormal basis of R^4 (columns), and the symmetric J = Q diag(SPECTRUM) Q^T
Q = torch.tensor([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]],
                 dtype=torch.float64) / 2
SPECTRUM = torch.tensor([2.0, 1.0, -0.5, -1.0], dtype=torch.float64)


def symmetric_jacobian():
    J = Q @ torch.diag(SPECTRUM) @ Q.T
    return (J + J.T) / 2  # symmetric to the last bit


def test_sigma_sweep_of_a_known_asymmetric_jacobian():
    J = torch.eye(4, dtype=torch.float64)
    J[0,
      1] = 1.0  # ||J - J^T|| = sqrt(2), ||J|| = sqrt(5); (J + J^T)/2: eigenvalues 1.5, 1, 1, 0.5
    faces = torch.rand(2, 1, 2, 2, generator=torch.Generator().manual_seed(8)).double()
    sweep = harmonic.sigma_sweep(LinearDenoiser(J), faces, [0.1, 0.5])
    np.testing.assert_allclose(sweep.asymmetry, np.full((2, 2), np.sqrt(2 / 5)), rtol=1e-12)
    np.testing.assert_allclose(sweep.effective_dim, np.full((2, 2), 4.0), rtol=1e-12)
    np.testing.assert_allclose(sweep.min_eigval, np.full((2, 2), 0.5), rtol=1e-12)
    assert (sweep.homogeneity_error < 1e-12).all()


def test_sigma_sweep_of_a_symmetric_jacobian_has_no_asymmetry():
    faces = torch.rand(2, 1, 2, 2, generator=torch.Generator().manual_seed(9)).double()
    sweep = harmonic.sigma_sweep(LinearDenoiser(symmetric_jacobian()), faces, [0.1, 0.5])
    assert (sweep.asymmetry == 0).all()
    np.testing.assert_allclose(sweep.effective_dim, np.full((2, 2), 1.5), rtol=1e-12)
    np.testing.assert_allclose(sweep.min_eigval, np.full((2, 2), -1.0), rtol=1e-12)


def test_negative_share_counts_the_negative_eigenvalues_and_their_energy():
    # x = Q c: on the eigenvectors of -0.5 and -1 it carries 2^2 + 4^2 of ||x||^2 = 25
    x = (Q @ torch.tensor([1.0, 2.0, 2.0, 4.0], dtype=torch.float64)).reshape(1, 2, 2)
    a = jm.analyze(LinearDenoiser(symmetric_jacobian()), x, 0.1)
    torch.testing.assert_close(a.eigvals, SPECTRUM)
    n_negative, share = jm.negative_share(a)
    assert n_negative == 2 and share == pytest.approx(20 / 25, rel=1e-12)
    flipped = LinearDenoiser(-symmetric_jacobian())  # now 2 and 1 are the negative ones
    assert jm.negative_share(jm.analyze(flipped, x, 0.1)) == (2, pytest.approx(5 / 25, rel=1e-12))


def test_symmetric_error(analysis):
    a = analysis
    J = a.jacobian.double()
    S = (J + J.T) / 2
    y, fy = a.y.reshape(-1), a.fy.reshape(-1).double()
    expected = ((S @ y - fy).norm() / fy.norm()).item()
    assert harmonic.symmetric_error(a) == pytest.approx(expected, rel=1e-6)


def test_symmetric_error_vanishes_for_a_symmetric_jacobian(analysis):
    a = analysis
    vals, vecs = a.eigvals, a.eigvecs
    J = vecs @ torch.diag(vals) @ vecs.T
    fy = (J @ a.y.reshape(-1)).reshape(a.y.shape)
    sym = jm.JacobianAnalysis(x=a.x, y=a.y, fy=fy, sigma=a.sigma, seed=0, jacobian=J, eigvals=vals,
                              eigvecs=vecs, coeffs=a.coeffs, effective_dim=0.0, asymmetry=0.0,
                              homogeneity_error=0.0)
    assert harmonic.symmetric_error(sym) < 1e-10


def test_eigenvector_pngs_show_the_oriented_eigenvectors_titled_with_k_and_lambda(monkeypatch):
    e0, e1 = cosine(0, 1 / 16), 0.5 * cosine(1 / 16, 0)  # orthogonal on the 16x16 grid
    a = replace(analysis_with(e1 - e0, [e0, e1]), eigvals=torch.tensor([1.25, -0.125]))
    drawn = []

    def recording_png(image, title, **kw):
        drawn.append((image, title, kw))
        return real_png(image, title, **kw)

    real_png = harmonic.image_png
    monkeypatch.setattr(harmonic, "image_png", recording_png)
    pngs = harmonic.eigenvector_pngs(a, [0, 1], size_in=2.6, dpi=90)
    assert [title for _, title, _ in drawn
            ] == [r"$e_{0}$,  $\lambda_{0}$ = 1.250", r"$e_{1}$,  $\lambda_{1}$ = -0.125"]
    # e0 is flipped (<x, e0> < 0), and each image is scaled to a peak |value| of 1
    torch.testing.assert_close(drawn[0][0], -cosine(0, 1 / 16).double())
    torch.testing.assert_close(drawn[1][0], cosine(1 / 16, 0).double())
    assert all(kw == {"vmin": -1, "vmax": 1, "size_in": 2.6, "dpi": 90} for _, _, kw in drawn)
    for png in pngs:
        assert png.startswith(PNG)
        assert Image.open(io.BytesIO(png)).size == (234, 269)  # 2.6 in at 90 dpi, with a title


# ---------------------------------------------------------------- what the eigenvectors are

ROW, COL = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")


def analysis_with(x, images):
    """A JacobianAnalysis of the clean image x (H, W) whose eigenvectors are `images`."""
    x = torch.as_tensor(x, dtype=torch.float64)[None]
    vecs = torch.stack([im.double().flatten() for im in images], dim=1)
    return jm.JacobianAnalysis(x=x, y=x, fy=x, sigma=0.1, seed=0, jacobian=torch.eye(x.numel()),
                               eigvals=torch.ones(len(images)), eigvecs=vecs,
                               coeffs=vecs.T @ x.flatten(), effective_dim=0.0, asymmetry=0.0,
                               homogeneity_error=0.0)


def cosine(fr, fc):
    """cos(2 pi (fr * row + fc * col)), frequencies in cycles per pixel."""
    return torch.cos(2 * np.pi * (fr * ROW + fc * COL))


def test_spatial_frequency_of_pure_cosines():
    images = [
        torch.ones(16, 16),
        cosine(0, 3 / 16),
        cosine(2 / 16, 5 / 16),
        torch.sin(2 * np.pi * 4 / 16 * ROW),
        cosine(0.5, 0.5)
    ]  # last: checkerboard
    a = analysis_with(torch.zeros(16, 16), images)
    expected = [0, 3 / 16, np.sqrt(2**2 + 5**2) / 16, 4 / 16, np.sqrt(0.5)]
    assert harmonic.spatial_frequency(a, range(5)) == pytest.approx(expected, abs=1e-12)


def test_frequency_growth_of_cosines_ordered_by_frequency():
    a = analysis_with(torch.zeros(16, 16), [cosine(0, f / 16) for f in (1, 2, 4, 6)])
    assert harmonic.frequency_growth(a, early=[0, 1], late=[2, 3]) == pytest.approx(10 / 3)
    assert harmonic.frequency_growth(a, early=[2, 3], late=[0, 1]) == pytest.approx(3 / 10)


def test_mean_frequency_over_a_complete_basis_is_the_flat_spectrum_level(analysis):
    d = len(analysis.eigvals)
    assert harmonic.spatial_frequency(analysis, range(d)).mean() == pytest.approx(
        harmonic.flat_spectrum_frequency(analysis.shape), rel=1e-10)
    assert harmonic.flat_spectrum_frequency((20, 20)) == pytest.approx(0.383, abs=1e-3)


def test_edges_of_one_vertical_edge():
    x = (COL >= 8).double()  # central differences: 0.5 on columns 7 and 8, 0 elsewhere
    mask = harmonic.edge_mask(x)
    assert mask.equal((COL == 7) | (COL == 8))  # 32 pixels < 20%: the tied zeros are left out
    on_edge, far, flat = (COL == 7).double(), (COL < 4).double(), torch.ones(16, 16)
    half_on = ((COL == 8) | (COL == 12)).double()
    a = analysis_with(x, [on_edge, far, flat, half_on])
    assert harmonic.edge_energy_share(a, range(4)) == pytest.approx([1, 0, 32 / 256, 0.5])
    assert harmonic.edge_chance(a) == pytest.approx(32 / 256)


def test_edge_mask_takes_the_top_fraction_of_the_gradient():
    x = torch.rand(20, 20, generator=torch.Generator().manual_seed(0)).double()
    mask = harmonic.edge_mask(x[None], top=0.2)
    assert mask.shape == (20, 20) and mask.sum() == 80
    gy, gx = np.gradient(x.numpy())
    magnitude = np.hypot(gx, gy)
    assert magnitude[mask.numpy()].min() > magnitude[~mask.numpy()].max()
    assert not harmonic.edge_mask(torch.ones(20, 20)).any()
    with pytest.raises(ValueError):
        harmonic.edge_mask(x, top=1.0)


def test_mean_edge_share_over_a_complete_basis_is_chance(analysis):
    d = len(analysis.eigvals)
    assert harmonic.edge_chance(analysis) == pytest.approx(round(0.2 * d) / d)
    assert harmonic.edge_energy_share(analysis, range(d)).mean() == pytest.approx(
        harmonic.edge_chance(analysis), rel=1e-10)


def test_edge_shares_of_faces(tiny_unet):
    faces = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(6)).double()
    shares = harmonic.edge_shares_of_faces(tiny_unet, faces, 0.3, ks=range(5), seed=1)
    a = jm.analyze(tiny_unet, faces[1], 0.3, seed=1)
    assert shares[1] == pytest.approx(harmonic.edge_energy_share(a, range(5)).mean())


def test_unpermuted_is_the_analysis_on_the_face_grid(tiny_unet):
    x = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(7)).double()
    a = harmonic.unpermuted(jm.analyze(tiny_unet, data.shuffle_pixels(x), 0.2, seed=0))
    torch.testing.assert_close(a.x, x)
    J, y, fy = a.jacobian.double(), a.y.flatten(), a.fy.flatten().double()
    torch.testing.assert_close(J @ y, fy)  # f(y) = J y holds in the face's coordinates
    S = (J + J.T) / 2
    torch.testing.assert_close(S @ a.eigvecs, a.eigvecs * a.eigvals)
    torch.testing.assert_close(a.coeffs, a.eigvecs.T @ x.flatten())


def test_measure_rows_and_plot(analysis):
    (row, ) = harmonic.measure_rows({"m": analysis})
    assert row[0] == "m" and row[3] == pytest.approx(harmonic.frequency_growth(analysis))
    assert row[4] == pytest.approx(harmonic.edge_energy_share(analysis, range(20)).mean())
    fig, axes = plt.subplots(1, 2)
    harmonic.plot_eigenvector_measures({"m": analysis, "n": analysis}, axes)
    assert all(len(ax.lines) == 5 for ax in axes)  # dots and mean of each, the reference
    plt.close(fig)


def test_lambda_ratio_reads_the_rescaled_first_and_last_paper_indices():
    eigvals = torch.linspace(2.0, 0.0, 400)  # eigvals[k] = 2 - 2k/399
    ours, paper = harmonic.lambda_ratio(eigvals, {5: 1.0, 245: 0.5})
    k5, k245 = harmonic.rescale_index(5, 400), harmonic.rescale_index(245, 400)
    assert (k5, k245) == (0, 15) and paper == 0.5
    assert ours == pytest.approx(float(eigvals[15] / eigvals[0]))


def test_scorecard_rows_give_the_psnr_drop_an_interval_over_the_faces(analysis):
    rng = np.random.default_rng(0)
    faces = rng.normal(30, 3, size=64)  # each face's PSNR; the shuffled model 2 dB worse
    shuffled = faces - 2 + rng.normal(0, 0.2, size=64)
    drop = faces.mean() - shuffled.mean()
    assert harmonic.psnr_drop(np.stack([faces, shuffled])) == pytest.approx(drop)
    args = (analysis, 1e-7, drop, "m", "m-shuffled")
    rows = {
        r["id"]: r
        for r in harmonic.scorecard_measurements(*args, drop_each=(torch.tensor(faces)[None],
                                                                   shuffled))
    }
    lo, hi = rows["Fig21.shuffled_psnr_drop_dB"]["interval"]
    assert lo < drop < hi and hi - lo < 0.2  # paired faces: the faces' spread cancels
    apart = harmonic.analysis.bootstrap_interval(lambda a, b: a.mean() - b.mean(), faces, shuffled)
    assert hi - lo < (apart[1] - apart[0]) / 5
    for id_, row in rows.items():  # one face's analysis, a by-construction maximum: none
        assert ("interval" in row) == (id_ == "Fig21.shuffled_psnr_drop_dB")
    without = harmonic.scorecard_measurements(*args)
    assert all(r.get("interval") is None for r in without)


def test_second_size_rows_measure_the_analysis_or_wait_for_the_model(analysis):
    p = config.get_profile("smoke")
    size = p.second_size.size
    measured = harmonic.size_measurements(p, "m-32px", analysis)
    assert [r["id"] for r in measured] == [
        f"Fig3.lambda_ratio_{size}px", f"Fig3.frequency_growth_{size}px",
        f"Fig3.edge_share_top20_{size}px"
    ]
    assert measured[0]["measured"] == pytest.approx(harmonic.lambda_ratio(analysis.eigvals)[0])
    assert measured[1]["measured"] == pytest.approx(harmonic.frequency_growth(analysis))
    assert all("missing" not in r for r in measured)
    bare = replace(p, faces=replace(p.faces, more_sizes=()))  # declares no second size
    assert bare.second_size == config.SizeSet(2 * p.face_size)
    name, none = harmonic.size_analysis(bare)
    assert none is None and name.endswith(f"-{2 * p.face_size}px")
    waiting = harmonic.size_measurements(bare, name, None)
    assert all(r["measured"] is None and "ships no" in r["missing"] for r in waiting)
    assert f"d={(2 * p.face_size)**2}" in waiting[0]["measure"]
    # the same ids as the face size's rows, with the size appended: the same rules apply
    plain = [r["id"] for r in harmonic.basis_rows(analysis, "m")]
    assert [r["id"] for r in waiting] == [f"{i}_{2 * p.face_size}px" for i in plain]


def test_fig3_at_two_sizes_plots_and_says_what_is_missing(analysis):
    fig, axes = plt.subplots(1, 2)
    harmonic.plot_spectra_by_fraction({"a": analysis, "b": None}, axes)
    assert len(axes[0].lines) == 3  # one spectrum, the paper's stars, the zero line
    plt.close(fig)
    fig = harmonic.fig3_grid(None, "no 40x40 model yet")
    assert any(t.get_text() == "no 40x40 model yet" for ax in fig.axes for t in ax.texts)
    plt.close(fig)
    assert harmonic.eigenvalue_rows(harmonic.FIG3_LAMBDAS, None) == []
    assert harmonic.measure_rows({"none": None}) == []
