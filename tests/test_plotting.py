"""diffgen_utils.plotting: text tables, display helpers, figures and widgets without a kernel."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from diffgen_utils import plotting

PNG = b"\x89PNG\r\n\x1a\n"


def test_format_table_aligns_and_marks_missing():
    text = plotting.format_table(["id", "value"], [["a", 0.5], ["long name", 12.25]], ["<", ".2f"])
    assert text.splitlines() == ["id         value", "a           0.50", "long name  12.25"]
    text = plotting.format_table(["a", "name"], [[1.5, "x"], [10.25, None]], [".2f", "<"])
    assert text.splitlines()[2].split() == ["10.25", "-"]


def test_format_table_empty():
    assert plotting.format_table(["id"], [], ["<"], empty="none") == "none"


def test_network_table_says_whether_the_network_covers_the_image():
    from diffgen_utils.config import TrainConfig

    text = plotting.network_table({"small": TrainConfig("x", 20, 1, blocks=1, width=32, steps=10,
                                                        batch=8),
                                   "deep": TrainConfig("x", 20, 1, blocks=2, width=32)})
    small, deep = text.splitlines()[1:]
    assert "18x18" in small and " no " in small and "91,904" in small and small.endswith("80")
    assert "44x44" in deep and " yes " in deep and "2 blocks" in deep


def test_training_curves_draw_every_sigma_and_the_optimum():
    hist = [{"step": s, "sigmas": [0.01, 0.04, 0.2], "test_psnr": [30 + s / 10, 25, 15]}
            for s in (10, 20, 40)]
    fig, axes = plt.subplots(1, 2)
    plotting.training_curves(axes, hist, batch=4, sigmas=[0.04, 0.01], optimum=[40.0, None])
    left, right = axes
    assert len(left.lines) == 3  # two curves, one optimum
    assert list(left.lines[0].get_xdata()) == [40, 80, 160]
    assert list(right.lines[1].get_ydata()) == [-3.0, -2.0, 0.0]  # sigma 0.01 minus its final
    plt.close(fig)


def test_unit_range():
    u = plotting.unit_range(torch.tensor([[[1.0, -4.0]], [[0.5, 0.25]]]))
    assert torch.allclose(u, torch.tensor([[[0.25, -1.0]], [[1.0, 0.5]]], dtype=u.dtype))


def test_running_mean():
    assert np.allclose(plotting.running_mean(np.full(40, 0.3)), 0.3)
    ramp = np.arange(40.0)
    assert np.allclose(plotting.running_mean(ramp, window=5)[2:-2], ramp[2:-2])
    spike = np.zeros(40)
    spike[-1] = 6.0
    assert plotting.running_mean(spike, window=4)[-1] == pytest.approx(2.0)  # mean of 3 values


def test_running_geomean():
    v = np.full(50, 0.1)
    assert np.allclose(plotting.running_geomean(v), 0.1)
    out = plotting.running_geomean(np.geomspace(1, 1e-3, 60), window=5)
    assert out.shape == (60,) and np.all(np.diff(out) <= 1e-12)


def test_plot_decay():
    from types import SimpleNamespace
    a = SimpleNamespace(eigvals=torch.linspace(1, -0.1, 16), coeffs=torch.linspace(2, 0.01, 16))
    fig, axes = plt.subplots(1, 2)
    plotting.plot_decay({"m": a}, axes, sigma=0.2)
    assert axes[1].get_yscale() == "log"
    assert len(axes[0].lines) == 2 and len(axes[1].lines) == 3  # with zero; dots, mean, sigma
    plt.close(fig)


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


def test_denoised_grid_shows_the_psnrs():
    from types import SimpleNamespace
    x = torch.full((1, 4, 4), 0.5)
    a = SimpleNamespace(x=x, y=x + 0.1, fy=x + 0.01)
    fig = plotting.denoised_grid(a, "one image")
    assert [ax.get_title() for ax in fig.axes] == ["clean", "noisy, 20.0 dB", "denoised, 40.0 dB"]
    plt.close(fig)
