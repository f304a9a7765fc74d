"""diffgen_utils.plotting: text and HTML tables, display helpers, figures sized for the page, and
widgets without a kernel."""
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


def test_table_is_its_text_and_renders_as_html():
    t = plotting.table(["id", "value"], [["a<b", 0.5], ["long name", None]], ["<", ".2f"],
                       caption="two rows")
    assert isinstance(t, str) and t == plotting.format_table(
        ["id", "value"], [["a<b", 0.5], ["long name", None]], ["<", ".2f"])
    assert t.splitlines()[1] == "a<b         0.50"
    html = t._repr_html_()
    assert html.count("<tr>") == 3 and "<caption>two rows</caption>" in html
    assert "a&lt;b" in html and "a<b" not in html  # cells are escaped
    assert '<td class="right" style="text-align:right">0.50</td>' in html
    assert '<td class="left" style="text-align:left">long name</td>' in html
    assert '<td class="right" style="text-align:right">-</td>' in html  # None
    assert 'class="diffgen-table"' in html
    long = plotting.table(["what"], [["a label longer than sixteen characters"]], ["<"])
    assert 'class="left wrap"' in long._repr_html_()  # long text may wrap, short text not


def test_table_in_a_notebook_shows_html_and_plain_text():
    from IPython.core.formatters import format_display_data

    t = plotting.table(["n"], [[3]], ["d"])
    data, _ = format_display_data(t)
    assert "<table" in data["text/html"] and data["text/plain"] == "n\n3"  # not quoted
    empty = plotting.table(["n"], [], ["d"], empty="none")
    assert empty == "none" and empty._repr_html_() == "<p>none</p>"
    with pytest.raises(ValueError):
        plotting.table(["a", "b"], [[1]], ["d", "d"])


def test_network_table_says_whether_the_network_covers_the_image():
    from diffgen_utils.config import TrainConfig

    text = plotting.network_table({
        "small":
        TrainConfig("x", 20, 1, blocks=1, width=32, steps=10, batch=8), "deep":
        TrainConfig("x", 20, 1, blocks=2, width=32)
    })
    assert isinstance(text, plotting.Table) and "<table" in text._repr_html_()
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
    assert out.shape == (60, ) and np.all(np.diff(out) <= 1e-12)


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


def test_subplots_fit_the_column():
    fig, axes = plotting.subplots(1, 2)
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="a line")
        ax.set_xlabel("x"), ax.set_ylabel("y"), ax.legend()
    assert fig.dpi == plotting.DPI and fig.get_figwidth() == plotting.COLUMN_IN
    assert plotting.figure_problems(fig) == []
    plt.close(fig)


def test_figure_problems_finds_wide_figures_and_small_text():
    fig, ax = plt.subplots(figsize=(11, 3), dpi=plotting.DPI)
    ax.plot([0, 1], [0, 1], label="tiny")
    ax.legend(fontsize=5)
    problems = plotting.figure_problems(fig)
    assert any("px wide" in p for p in problems) and any("'tiny' at 5 pt" in p for p in problems)
    plt.close(fig)


def test_wrap_columns_stacks_blocks_of_columns():
    images = list(range(2 * 5))  # 2 rows of 5 columns
    titles = [f"t{i}" for i in images]
    out, out_titles, labels, ncols = plotting.wrap_columns(images, titles, ["a", "b"], 5, 3)
    assert ncols == 3 and labels == ["a", "b", "a", "b"]
    assert out == [0, 1, 2, 5, 6, 7, 3, 4, None, 8, 9, None]
    assert out_titles[6:9] == ["t3", "t4", ""]


def test_image_grid_fits_the_column_and_wraps():
    images = torch.rand(4 * 12, 1, 8, 8)
    fig = plotting.image_grid(images, titles=[f"cos {i}" for i in range(48)], ncols=12, wrap=6,
                              row_labels=["a", "b", "c", "d"], suptitle="wrapped")
    assert len(fig.axes) == 8 * 6
    assert plotting.figure_problems(fig) == []
    plt.close(fig)
    wide = plotting.image_grid(torch.rand(16, 1, 8, 8), ncols=16)
    assert plotting.figure_problems(wide) == []  # narrower images, not a wider figure
    plt.close(wide)


def test_training_figure_and_convergence_table():
    from types import SimpleNamespace
    hist = [{
        "step": s, "sigmas": [0.01, 0.04, 0.5], "test_psnr": [30 + s / 10, 25, 15], "train_psnr":
        [40, 35, 20], "lr": 1e-3
    } for s in (10, 20, 40)]
    net = SimpleNamespace(name="m", history=hist, config=SimpleNamespace(batch=4, lr=1e-3))
    fig = plotting.training_figure({"k": net, "l": net}, (0.01, 0.35),
                                   optimum=lambda key, sigmas: [40.0] * len(sigmas))
    assert len(fig.axes) == 4 and len(fig.axes[0].lines) == 4  # two curves, two optima
    assert plotting.figure_problems(fig) == []
    plt.close(fig)
    table = plotting.convergence_table([net], (0.01, 0.35))
    (row, ) = table.cells
    assert row[:3] == ["m", "test", "no"] and row[3] == "+2.00" and row[5] == "20-40"
    # a model meant to memorize is judged on its training images (flat here: converged)
    table = plotting.convergence_table([net], (0.01, 0.35), split=lambda n: "train")
    assert table.cells[0][:4] == ["m", "train", "yes", "+0.00"]
    empty = plotting.training_figure({}, (0.01, 0.35))  # no such model at the profile
    assert [t.get_text() for t in empty.axes[0].texts] == ["no such model at this profile"]
    plt.close(empty)


def test_dataset_name_never_shows_a_folder():
    from types import SimpleNamespace
    assert plotting.dataset_name(SimpleNamespace(name="celeba", source="/data/celeba80")) == \
        "CelebA"
    assert "stand-in" in plotting.dataset_name(SimpleNamespace(name="substitute"))


def test_chapter_figures_fit_the_column():
    """The chapters' multi-panel figure helpers, on toy data: as wide as the column at most, no
    text below MIN_FONT_PT."""
    from types import SimpleNamespace

    from diffgen_utils.chapters import manifolds, optimality

    x = np.arange(0.0, 45.01, 2.5)
    curves = {
        a: optimality.RateCurve(a, x, 0.8 * x + 5, (10.0, 40.0), 0.8, 5.0)
        for a in (1.0, 2.0, 3.0, 4.0, 5.0)
    }
    linear = {a: optimality.RateCurve(a, x, 0.7 * x + 6, (10.0, 40.0), 0.7, 6.0) for a in curves}
    fig = optimality.rate_figure(curves, linear)
    assert len(fig.axes) == 6 and not fig.axes[5].axison and fig.axes[5].get_legend()
    assert fig.axes[0].get_title().startswith(r"$\alpha$ = 1: slope 0.80")
    assert plotting.figure_problems(fig) == []
    plt.close(fig)
    fig, ax = plotting.subplots(height=2.8)
    optimality.plot_local_slopes(curves, ax)
    assert plotting.figure_problems(fig) == []
    plt.close(fig)
    a = SimpleNamespace(eigvals=torch.linspace(1, -0.1, 64), coeffs=torch.linspace(2, 0.01, 64),
                        sigma=0.1)
    fig = manifolds.spectrum_figure({"disk": a.eigvals, "mean": a.eigvals}, {"disk": a}, 5,
                                    paper={0: 1.0, 9: 0.3})
    assert plotting.figure_problems(fig) == []
    plt.close(fig)
