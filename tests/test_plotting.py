from diffgen_utils import plotting


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
    import matplotlib.pyplot as plt

    hist = [{"step": s, "sigmas": [0.01, 0.04, 0.2], "test_psnr": [30 + s / 10, 25, 15]}
            for s in (10, 20, 40)]
    fig, axes = plt.subplots(1, 2)
    plotting.training_curves(axes, hist, batch=4, sigmas=[0.04, 0.01], optimum=[40.0, None])
    left, right = axes
    assert len(left.lines) == 3  # two curves, one optimum
    assert list(left.lines[0].get_xdata()) == [40, 80, 160]
    assert list(right.lines[1].get_ydata()) == [-3.0, -2.0, 0.0]  # sigma 0.01 minus its final
    plt.close(fig)
