"""diffgen_utils.chapters.harmonic (chapter 3) and the static-widget helpers of
diffgen_utils.plotting."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from diffgen_utils import data, plotting  # noqa: E402
from diffgen_utils import jacobian as jm  # noqa: E402
from diffgen_utils.chapters import harmonic  # noqa: E402
from diffgen_utils.models import UNet, denoise  # noqa: E402

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
    assert harmonic.index_map(harmonic.FIG3_LAMBDAS, 400) == {
        5: 0, 17: 1, 53: 3, 101: 6, 149: 9, 197: 12, 245: 15}


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


def test_scorecard_table():
    rows = [{"id": "F6.x", "paper": None, "target": "<= 1e-4", "measured": 1e-7, "pass": True},
            {"id": "F3.y", "paper": 1.2, "target": None, "measured": 1.1, "pass": None}]
    table = harmonic.scorecard_table(rows)
    assert "pass" in table and "report" in table and "F3.y" in table


def test_sigma_sweep_on_a_tiny_unet(tiny_unet):
    faces = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)).double()
    sweep = harmonic.sigma_sweep(tiny_unet, faces, [0.1, 0.5], seed=4)
    assert sweep.effective_dim.shape == (2, 2)
    assert (sweep.homogeneity_error < 1e-8).all()  # bias-free: f(y) = J y
    assert (sweep.asymmetry >= 0).all()
    # the same numbers as analyze() with noise seed + i
    a = jm.analyze(tiny_unet, faces[1], 0.5, seed=5)
    assert sweep.effective_dim[1, 1] == pytest.approx(a.effective_dim)
    assert sweep.min_eigval[1, 1] == pytest.approx(a.eigvals[-1].item())


def test_symmetric_error_and_orientation(analysis):
    a = analysis
    J = a.jacobian.double()
    S = (J + J.T) / 2
    y, fy = a.y.reshape(-1), a.fy.reshape(-1).double()
    expected = ((S @ y - fy).norm() / fy.norm()).item()
    assert harmonic.symmetric_error(a) == pytest.approx(expected, rel=1e-6)
    ks = [0, 3, 7]
    e = harmonic.oriented(a, ks)
    assert e.shape == (3, 8, 8)
    assert ((e.reshape(3, -1) @ a.x.reshape(-1)) >= 0).all()
    torch.testing.assert_close(e.abs(), a.eigenimages(ks).abs())
    u = harmonic.unit_range(e)
    assert torch.allclose(u.flatten(1).abs().amax(1), torch.ones(3, dtype=u.dtype))


def test_symmetric_error_vanishes_for_a_symmetric_jacobian(analysis):
    a = analysis
    vals, vecs = a.eigvals, a.eigvecs
    J = vecs @ torch.diag(vals) @ vecs.T
    fy = (J @ a.y.reshape(-1)).reshape(a.y.shape)
    sym = jm.JacobianAnalysis(x=a.x, y=a.y, fy=fy, sigma=a.sigma, seed=0, jacobian=J,
                              eigvals=vals, eigvecs=vecs, coeffs=a.coeffs, effective_dim=0.0,
                              asymmetry=0.0, homogeneity_error=0.0)
    assert harmonic.symmetric_error(sym) < 1e-10


def test_energy_shares():
    c = torch.tensor([3.0, -4.0, 0.0, 0.0])
    assert harmonic.energy_fraction(c, 1) == pytest.approx(9 / 25)
    assert harmonic.sorted_energy_fraction(c, 1) == pytest.approx(16 / 25)
    assert harmonic.energy_fraction(c, 4) == pytest.approx(1.0)


def test_negative_share(analysis):
    n, share = harmonic.negative_share(analysis)
    assert n == int((analysis.eigvals < 0).sum())
    assert 0 <= share <= 1


def test_running_mean():
    assert np.allclose(harmonic.running_mean(np.full(40, 0.3)), 0.3)
    ramp = np.arange(40.0)
    assert np.allclose(harmonic.running_mean(ramp, window=5)[2:-2], ramp[2:-2])
    spike = np.zeros(40)
    spike[-1] = 6.0
    assert harmonic.running_mean(spike, window=4)[-1] == pytest.approx(2.0)  # mean of 3 values


def test_running_geomean():
    v = np.full(50, 0.1)
    assert np.allclose(harmonic.running_geomean(v), 0.1)
    out = harmonic.running_geomean(np.geomspace(1, 1e-3, 60), window=5)
    assert out.shape == (60,) and np.all(np.diff(out) <= 1e-12)


def test_plot_decay_and_pngs(analysis):
    fig, axes = plt.subplots(1, 2)
    harmonic.plot_decay({"m": analysis}, axes, sigma=0.2)
    assert axes[1].get_yscale() == "log"
    plt.close(fig)
    pngs = harmonic.eigenvector_pngs(analysis, [0, 1, 2])
    assert len(pngs) == 3 and all(p.startswith(PNG) for p in pngs)


def test_image_png():
    png = plotting.image_png(torch.rand(1, 6, 6), "title", size_in=1.0, dpi=50)
    assert png.startswith(PNG)
    assert plt.get_fignums() == []  # nothing left open for the notebook to show


def test_image_slider_links_slider_and_stack_in_the_browser(monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    links, jslink = [], ipywidgets.jslink
    monkeypatch.setattr(ipywidgets, "jslink", lambda a, b: links.append((a, b)) or jslink(a, b))
    pngs = [plotting.image_png(torch.rand(4, 4) * v, size_in=0.5, dpi=20) for v in (0.2, 1)]
    box = plotting.image_slider(pngs, labels=[3, 9], description="k")
    slider, stack = box.children
    assert isinstance(stack, ipywidgets.Stack) and len(stack.children) == 2
    assert slider.options == ("3", "9") and slider.index == 0
    assert [im.value for im in stack.children] == pngs
    assert links == [((slider, "index"), (stack, "selected_index"))]
    with pytest.raises(ValueError):
        plotting.image_slider(pngs, labels=[1])
    with pytest.raises(ValueError):
        plotting.image_slider([])


def test_top_block_asymmetry_separates_kept_from_suppressed_directions():
    from types import SimpleNamespace
    d = 6
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64,
                                       generator=torch.Generator().manual_seed(0)))
    J = q @ torch.diag(torch.tensor([1.0, 0.9, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)) @ q.T
    skew = torch.zeros(d, d, dtype=torch.float64)
    skew[4, 5], skew[5, 4] = 0.3, -0.3  # in the suppressed directions only
    J = J + q @ skew @ q.T
    a = SimpleNamespace(eigvecs=q, jacobian=J)
    assert harmonic.top_block_asymmetry(a, 2) == pytest.approx(0.0, abs=1e-12)
    assert harmonic.top_block_asymmetry(a, 6) > 0.2


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
    images = [torch.ones(16, 16), cosine(0, 3 / 16), cosine(2 / 16, 5 / 16),
              torch.sin(2 * np.pi * 4 / 16 * ROW), cosine(0.5, 0.5)]  # last: checkerboard
    a = analysis_with(torch.zeros(16, 16), images)
    expected = [0, 3 / 16, np.sqrt(2 ** 2 + 5 ** 2) / 16, 4 / 16, np.sqrt(0.5)]
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
    (row,) = harmonic.measure_rows({"m": analysis})
    assert row[0] == "m" and row[3] == pytest.approx(harmonic.frequency_growth(analysis))
    assert row[4] == pytest.approx(harmonic.edge_energy_share(analysis, range(20)).mean())
    fig, axes = plt.subplots(1, 2)
    harmonic.plot_eigenvector_measures({"m": analysis, "n": analysis}, axes)
    assert all(len(ax.lines) == 5 for ax in axes)  # dots and mean of each, the reference
    plt.close(fig)
