"""Chapter 02's computations on tiny toy models and images (no data, no checkpoints)."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from diffgen_utils import analysis, config, families, pairs, sampling, zoo
from diffgen_utils.chapters import generalization as gen
from diffgen_utils.models import UNet

SHAPE = (1, 8, 8)


def tiny_unet(seed=0):
    torch.manual_seed(seed)
    m = UNet(blocks=1, width=4)
    m(torch.rand(16, *SHAPE))  # set the running sd of the batch norms
    return m.eval()


def images(n, seed):
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


class Memorizer(torch.nn.Module):
    """A noise predictor whose denoiser returns the nearest training image: it has memorized."""

    def __init__(self, train):
        super().__init__()
        self.register_buffer("images", train)
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, y):
        dist = torch.cdist(y.flatten(1), self.images.flatten(1))
        return y - self.w * self.images[dist.argmin(dim=1)]


class Zero(torch.nn.Module):
    """Predicts no noise: the denoiser is the identity."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, y):
        return self.w * y


def test_identical_models_give_identical_pairs():
    m = tiny_unet()
    s1, s2 = pairs.pair_samples(m, m, range(5), SHAPE, max_steps=15, progress=False)
    assert s1.seeds == s2.seeds == list(range(5))
    stats = pairs.similarity_stats(s1.images, s2.images, images(6, 1), images(6, 2))
    torch.testing.assert_close(stats.pair, torch.ones(5), rtol=0, atol=1e-5)
    assert len(stats) == 5 and stats.seeds1.shape == (10, )  # 5 choose 2 pairs of seeds
    assert stats.medians()["S1 vs S2 sample"] == pytest.approx(1, abs=1e-5)


def test_parallel_pair_sampling_matches_sequential():
    a, b = tiny_unet(0), tiny_unet(1)
    threads = torch.get_num_threads()
    par = pairs.pair_samples(a, b, range(4), SHAPE, max_steps=8, progress=False)
    assert torch.get_num_threads() == threads
    seq = pairs.pair_samples(a, b, range(4), SHAPE, max_steps=8, progress=False, parallel=False)
    for p, q in zip(par, seq):
        torch.testing.assert_close(p.images, q.images, rtol=0, atol=1e-6)


def test_different_models_differ_with_the_same_seeds():
    s1, s2 = pairs.pair_samples(tiny_unet(0), tiny_unet(1), range(3), SHAPE, max_steps=10,
                                progress=False)
    assert not torch.allclose(s1.images, s2.images)


def test_a_memorizing_model_samples_its_training_images():
    train1, train2 = images(4, 1), images(4, 2)
    s1, s2 = pairs.pair_samples(Memorizer(train1), Memorizer(train2), range(6), SHAPE,
                                progress=False)
    assert s1.converged.all() and s2.converged.all()
    stats = pairs.similarity_stats(s1.images, s2.images, train1, train2)
    torch.testing.assert_close(stats.near, torch.ones(12), rtol=0, atol=1e-5)
    torch.testing.assert_close(s1.images, train1[stats.near1_index])
    assert (stats.pair < 0.9).all()  # the two training sets share no image


def test_compare_and_scorecard_rows():
    train1, train2 = images(4, 1), images(4, 2)
    comp = pairs.compare(Memorizer(train1), Memorizer(train2), train1, train2, range(3), SHAPE,
                         progress=False)
    assert comp.converged == 1.0 and comp.four(2).shape == (4, *SHAPE)
    grid, titles = comp.columns(3)
    assert grid.shape == (12, *SHAPE) and len(titles) == 12
    torch.testing.assert_close(grid[[1, 4, 7, 10]], comp.four(1))  # column 1 is seed 1's four
    assert titles[7] == f"pair {comp.stats.pair[1]:.2f}"
    assert comp.png(0).startswith(b"\x89PNG")
    light = comp.brightness()  # the samples are training images: same brightness and contrast
    assert light["sample std"] == pytest.approx(light["train std"], rel=0.5)
    assert 0 < light["train mean"] < 1
    gap = pairs.psnr_gap(Memorizer(train1), train1, images(8, 3), [0.1], n_eval=8)
    book = config.get_profile("book")
    up_to_10 = replace(book, faces=config.FaceModels(n_values=(1, 10)))
    rows = gen.scorecard_measurements(book, {10: gap}, {10: comp.stats})
    assert [r["id"] for r in rows
            ] == ["F1.gap_N10", "F2.pair_similarity_N10", "F2.nearest_train_similarity_N10"]
    assert rows[2]["measured"] == pytest.approx(1, abs=1e-5) and rows[2]["target"] == ">= 0.95"
    lo, hi = rows[0]["interval"]  # over the training and the test images
    assert lo <= gap.gap <= hi and hi - lo > 0
    assert rows[1]["interval"][0] <= rows[1]["measured"] <= rows[1]["interval"][1]
    assert rows[2]["interval"] == pytest.approx((1, 1), abs=1e-5)  # every seed recalls exactly
    assert rows[0]["spread"] is None and rows[1].get("spread") is None  # pair: no S1/S2 spread
    assert rows[2]["spread"] == pytest.approx(0, abs=1e-5)
    spread = gen.scorecard_measurements(book, {10: gap}, {10: comp.stats}, s2_gaps={10: 1.5})
    assert spread[0]["spread"] == pytest.approx(abs(gap.gap - 1.5))
    rows = gen.scorecard_measurements(up_to_10, {10: gap}, {10: comp.stats})  # 10 is the largest
    assert len(rows) == 6 and rows[0]["checkpoints"] == ["celeba-N10-S1", "celeba-N10-S2"]
    deeper = gen.scorecard_measurements(book, {10: gap}, {10: comp.stats}, blocks=2)
    assert [r["id"] for r in deeper] == [
        r + "_2blocks"
        for r in ("F1.gap_N10", "F2.pair_similarity_N10", "F2.nearest_train_similarity_N10")
    ]
    assert deeper[0]["checkpoints"] == ["celeba-N10-S1-2blocks", "celeba-N10-S2-2blocks"]
    assert "2-block" in deeper[0]["measure"] and "block" not in rows[0]["measure"]
    assert gen.scorecard_measurements(book, {}, {}) == []


def test_nearest_training_image_of_a_training_image_is_itself():
    train1, train2 = images(7, 1), images(7, 2)
    pick = torch.tensor([4, 0, 6])
    stats = pairs.similarity_stats(train1[pick], train2[pick], train1, train2)
    assert stats.near1_index.tolist() == pick.tolist() == stats.near2_index.tolist()
    torch.testing.assert_close(stats.near1, torch.ones(3), rtol=0, atol=1e-5)
    images4 = pairs.four_images(1, train1[pick], train2[pick], train1, train2, stats)
    assert images4.shape == (4, *SHAPE) and torch.equal(images4[0], train1[0])
    assert len(pairs.four_titles(1, stats)) == 4


def test_seed_similarities_cover_every_pair_once():
    x = images(4, 3)
    sims = pairs.seed_similarities(torch.cat([x, x[:1]]))  # image 4 repeats image 0
    assert sims.shape == (10, )
    assert sims.max().item() == pytest.approx(1, abs=1e-5)
    assert (sims > 0.999).sum() == 1
    stats = pairs.similarity_stats(x, x, x, x)
    torch.testing.assert_close(stats.next1, analysis.cosine_similarity(x, x.roll(-1, 0)))


def test_psnr_gap_of_the_identity_denoiser_is_zero():
    train, test = images(3, 1), images(40, 2)
    gap = pairs.psnr_gap(Zero(), train, test, [0.05, 0.2], n_eval=40, seeds=(5, 5))
    assert gap.gap == pytest.approx(0, abs=1e-5)  # same noise on both: the image does not matter
    np.testing.assert_allclose(gap.train, gap.input_psnr, atol=0.5)
    other = pairs.psnr_gap(Zero(), train, test, [0.05, 0.2], n_eval=40)  # seeds 1 and 2
    assert abs(other.gap) < 0.5


def test_psnr_gap_from_a_training_history():
    entry = {"sigmas": [0.1, 0.2], "train_psnr": [30.0, 26.0], "test_psnr": [25.0, 23.0]}
    gap = pairs.PsnrGap.from_history(entry)
    assert gap.gap == pytest.approx(4.0)
    assert gap.gap_interval() is None  # no per-image values to resample
    np.testing.assert_allclose(gap.input_psnr, [20, 20 * np.log10(5)])


def test_psnr_gap_of_a_memorizer_is_large():
    train, test = images(3, 1), images(16, 2)
    gap = pairs.psnr_gap(Memorizer(train), train, test, [0.05, 0.1], n_eval=16)
    assert gap.train.min() > 60 and gap.gap > 30  # exact recall of training images


def test_psnr_gap_keeps_each_images_psnr_and_resamples_them():
    train, test = images(3, 1), images(30, 2)
    gap = pairs.psnr_gap(Halve(), train, test, [0.05, 0.2], n_eval=30)
    assert gap.train_each.shape == gap.test_each.shape == (2, 30)
    np.testing.assert_allclose(gap.train_each.mean(1), gap.train, rtol=1e-6)
    np.testing.assert_allclose(gap.test_each.mean(1), gap.test, rtol=1e-6)
    lo, hi = gap.gap_interval()
    assert lo < gap.gap < hi and gap.gap_interval() == (lo, hi)
    wide = pairs.PsnrGap(gap.sigmas, gap.train, gap.test, gap.train_each,
                         gap.test_each + np.linspace(-9, 9, 30))  # test images far more varied
    assert np.diff(wide.gap_interval()) > 5 * (hi - lo)


def test_distinct_seed_median_resamples_seeds_not_pairs():
    x = images(6, 4)
    stats = pairs.similarity_stats(x, x.flip(0), x, x)
    matrices = [pairs.pair_matrix(s, len(stats)) for s in (stats.seeds1, stats.seeds2)]
    assert np.isnan(matrices[0].diagonal()).all()
    np.testing.assert_allclose(matrices[0], matrices[0].T)
    assert matrices[0][4, 1] == pytest.approx(
        analysis.cosine_similarity(x[1:2], x[4:5]).item(), abs=1e-6)
    everything = pairs.distinct_seed_median(matrices, np.arange(6))
    assert everything == pytest.approx(stats.seeds.median().item(), abs=1e-7)
    twice = pairs.distinct_seed_median(matrices[:1], np.array([2, 2, 5]))  # 2 not paired with 2
    assert twice == pytest.approx(matrices[0][2, 5], abs=1e-7)
    measures = pairs.seed_measures(stats)
    assert measures["measured"] == stats.seeds.median().item()
    assert measures["interval"][0] <= measures["measured"] <= measures["interval"][1]
    assert measures["spread"] == pytest.approx(
        abs(stats.seeds1.median().item() - stats.seeds2.median().item()))


def test_eval_images_cycle_a_small_training_set():
    x = images(3, 0)
    assert torch.equal(pairs.eval_images(x, 7)[[0, 3, 6]], x[[0, 0, 0]])
    assert torch.equal(pairs.eval_images(images(10, 0), 4), images(10, 0)[:4])


def test_closest_cross_pairs_finds_a_rescaled_copy():
    s1, s2 = images(5, 1), images(9, 2)
    s2[6] = 0.5 * s1[3] + 0.2  # mean-removed cosine ignores brightness and contrast
    index, sim = gen.closest_cross_pairs(s1, s2, block=4)
    assert index[3] == 6 and sim[3].item() == pytest.approx(1, abs=1e-5)
    assert (sim[[0, 1, 2, 4]] < 0.99).all()


class Halve(torch.nn.Module):
    """Predicts half of its input as noise: the denoiser f(y) = y / 2 shrinks towards 0."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, y):
        return self.w * y


def test_two_paths_share_the_start_and_split():
    m = Halve()
    out = gen.two_paths(m, 3, (100, 101), SHAPE, partner=m, max_steps=12)
    assert len(out["steps"]) == 12
    assert torch.equal(out["a"]["y"][0], out["b"]["y"][0])  # one start
    assert out["cos_ab"][0] == pytest.approx(1, abs=1e-5)
    assert out["cos_ab"][-1] < 0.999  # different injected noise: different paths
    np.testing.assert_allclose(out["cos_partner"], 1, atol=1e-5)  # same model, same noise
    picks, frames = gen.snapshots(out, 4)
    assert picks == [0, 4, 7, 11] and frames.shape == (12, *SHAPE)
    out["partner"] = {k: v[:6] for k, v in out["partner"].items()}  # a run that stopped early
    picks, frames = gen.snapshots(out, 4)
    assert picks[-1] == 5 and frames.shape == (12, *SHAPE)
    torch.testing.assert_close(frames[4:8], out["b"]["denoised"][picks])
    steps, cos = np.arange(5), np.array([1, 0.99, 0.95, 0.7, 0.2])
    assert gen.split_step(steps, cos) == 3 and gen.split_step(steps, cos, 0.1) is None


def test_explorer_links_every_stack():
    widgets = pytest.importorskip("ipywidgets")
    x = images(4, 0)
    png = pairs.row_png(x, ["a", "b", "c", "d"])
    assert png.startswith(b"\x89PNG")
    box = gen.explorer({"N=1": [png, png, png], "N=10": [png, png, png]})
    (pick, seed), outer = box.children[0].children, box.children[1]
    assert isinstance(outer, widgets.Stack) and len(outer.children) == 2
    assert all(len(s.children) == 3 for s in outer.children)
    assert seed.max == 2 and list(pick.options) == ["N=1", "N=10"]
    assert len(box.links) == 3
    assert box.links[0].source == (pick, "index") and box.links[0].target == (outer,
                                                                              "selected_index")
    with pytest.raises(ValueError):
        gen.explorer({"a": [png], "b": [png, png]})


def test_zoo_missing_names_what_is_not_done_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "checkpoint_dir", lambda profile: tmp_path / profile)
    book = replace(config.get_profile("book"), faces=config.FaceModels(n_values=(1, 10)))
    names = families.model_names(book)
    assert zoo.missing(names, book) == {name: "missing" for name in names}
    statuses = {
        "celeba-N10-S1": "done", "celeba-N10-S2": "done", "celeba-N1-S1": "done", "celeba-N1-S2":
        "at step 5 of 10"
    }
    monkeypatch.setattr(zoo, "status", lambda name, p: statuses.get(name, "missing"))
    assert zoo.missing(
        names, book) == {"celeba-N1-S2": "at step 5 of 10", "celeba_shuffled-N10-S1": "missing"}
    assert zoo.train_command(["a", "b"], book) == ("python -m diffgen_utils.train --profile book "
                                                   "--only a b")


def test_memorizer_snaps_to_the_nearest_image_and_averages_at_high_noise():
    train = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    y = train[[3, 1]] + 0.01 * torch.randn(2, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(gen.memorizer(train, y, sigma=0.05), train[[3, 1]])
    far = gen.memorizer(train, y, sigma=1e3)
    torch.testing.assert_close(far, train.mean(0, keepdim=True).expand_as(far), atol=1e-4, rtol=0)


def test_memorizer_psnr_is_the_ceiling_of_a_training_curve():
    train = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    psnr = gen.memorizer_psnr(train, [0.01, 0.1, 10.0], n_eval=8)
    assert psnr[0] == 100.0 and psnr[1] > 40  # recovered exactly: counted as 100 dB
    assert psnr[2] < 15  # so noisy that only the mean of the four is left


def test_blind_memorizer_samples_are_training_images():
    train = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    net = gen.BlindMemorizer(train)
    noisy = train + 0.05 * torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(noisy - net(noisy), train, atol=1e-4, rtol=0)
    out = sampling.sample(net, range(6), shape=(1, 8, 8), progress=False)
    _, similarity = analysis.nearest_neighbors(out.images, train)
    assert similarity.min() > 0.99


def test_stored_gaps_read_the_stored_evaluation(zoo_env):
    tiny = replace(config.get_profile("smoke"), steps=4, eval_every=2, n_test=4, n_eval=4,
                   faces=config.FaceModels(n_values=(1, 4), gap_sizes=(8, )))
    names = {n: families.FACES.name(tiny, n, size=8) for n in (1, 4)}
    assert names[4] == "celeba-N4-S1-8px"
    gaps = gen.stored_gaps(tiny, names)
    net = zoo.load(names[4], tiny)
    assert sorted(gaps) == [1, 4] and net.config.size == 8
    assert gaps[4] == pytest.approx(pairs.PsnrGap.from_history(net.history[-1]).gap)
    with pytest.raises(FileNotFoundError, match="--only celeba-N7-S1-8px"):
        gen.stored_gaps(replace(tiny, train_missing=False), {7: "celeba-N7-S1-8px"})


def test_plot_gap_vs_n_floors_tiny_gaps():
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    gen.plot_gap_vs_n({"10x10": {1: 10.0, 100: 0.5}, "20x20": {100: 1e-4, 1: 20.0}}, ax)
    assert list(ax.lines[1].get_ydata()) == [20.0, gen.GAP_FLOOR_DB]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["10x10", "20x20"]
    plt.close(fig)


def test_convergence_summary_judges_memorizers_on_their_training_faces():
    from types import SimpleNamespace

    def net(name, n, train_gain, test_gain):
        hist = [{
            "step": step, "lr": 1e-3, "sigmas": [0.1, 0.5], "train_psnr":
            [30 + train_gain * (step == 20),
             20.0], "test_psnr": [25 + test_gain * (step == 20), 20.0]
        } for step in (10, 20)]
        return SimpleNamespace(name=name, history=hist, config=SimpleNamespace(n_train=n, lr=1e-3))

    nets = [
        net("a", 10, 2.0, 0.0),
        net("b", 1, 5.0, 0.0),
        net("c", 1000, 9.0, 0.1),
        net("d", 1000, 0.0, 0.5)
    ]
    s = pairs.convergence_summary(nets, (0.05, 1.0))
    assert (s["memo_lo"], s["memo_hi"]) == (2.0, 5.0)
    assert (s["wide_ok"], s["wide_n"], s["wide_max"]) == (1, 2, 0.5)
    assert (s["all_ok"], s["all_n"]) == (1, 4)


def test_table1_rows_match_the_paper_at_its_width():
    p = config.get_profile("book")
    c = families.config_of("celeba-N100-S1", p)
    configs = {
        size: replace(c, width=64, size=size, blocks=config.unet_blocks(size))
        for size in (20, 40, 80)
    }
    for row in gen.table1_rows(configs):
        _, image, blocks, paper_blocks, _, params, paper_params, rf, paper_rf = row
        assert (blocks, params, rf) == (paper_blocks, paper_params, paper_rf)
    (row, ) = gen.table1_rows({"10": replace(c, size=10)})  # no paper row at 10x10
    assert row[3] is None and row[6] is None and row[8] is None


def test_size_rows_divide_the_gaps_or_wait_for_the_models():
    p = config.get_profile("book")
    s1, s2 = {100: 1.0, 1000: 0.5}, {100: 3.0, 1000: 0.5}
    waiting = gen.size_measurements(p, s1, s2, {}, None)  # no 40x40 gaps: every row waits
    assert [r["id"] for r in waiting] == [
        "Fig15.gap_ratio_N100", "Fig15.gap_ratio_N1000", "Fig15.gap_40px_largest_N",
        "Fig2.pair_similarity_40px_largest_N"
    ]
    assert all(r["measured"] is None and "40×40" in r["missing"] for r in waiting)
    assert waiting[0]["target"] == gen.GAP_RATIO_TARGET
    shipped = replace(
        p, faces=replace(p.faces, more_sizes=(config.SizeSet(40, pairs=(13_000, ),
                                                             s1_only=(100, )), )))
    rows = {
        r["id"]: r
        for r in gen.size_measurements(shipped, s1, s2, {100: 4.0, 13_000: 0.2}, None)
    }
    ratio = rows["Fig15.gap_ratio_N100"]
    assert ratio["measured"] == pytest.approx(4.0 / 2.0)  # over the mean of S1 and S2
    assert ratio["spread"] == pytest.approx(4.0 / 1.0 - 4.0 / 3.0)
    assert "missing" in rows["Fig15.gap_ratio_N1000"]  # no 40x40 model at N = 1000
    assert gen.gap_ratios(s1, s2,
                          {100: 4.0, 13_000: 0.2}) == {100: (ratio["measured"], ratio["spread"])}
    assert rows["Fig15.gap_40px_largest_N"]["measured"] == 0.2
    assert "S1/S2 pair" in rows["Fig2.pair_similarity_40px_largest_N"]["missing"]  # not sampled


def test_gap_history_reads_each_evaluation_of_a_training_run():
    from types import SimpleNamespace

    import matplotlib.pyplot as plt

    sigmas = [0.1, 0.5]
    history = [
        dict(step=s, sigmas=sigmas, train_psnr=[30.0 + g, 20.0 + g], test_psnr=[30.0, 20.0])
        for s, g in ((100, 1.0), (200, 3.0))
    ]
    net = SimpleNamespace(history=history, config=config.TrainConfig("celeba", 20, 10, batch=8))
    seen, gap = gen.gap_history(net)
    assert seen.tolist() == [800, 1600] and gap == pytest.approx([1.0, 3.0])
    assert gen.late_gap_range(net) == pytest.approx((3.0, 3.0))  # only step 200 is late
    assert gen.late_gap_range(net, fraction=0.5) == pytest.approx((1.0, 3.0))
    fig, ax = plt.subplots()
    gen.plot_gap_histories(ax, {"a": net, "absent": None})
    assert [line.get_label() for line in ax.get_lines()] == ["a"]
    plt.close(fig)


def test_gap_vs_n_leaves_out_empty_curves_and_dashes_the_controls():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    gen.plot_gap_vs_n({"a": {10: 1.0, 100: 0.001}, "b": {}, "c": {10: 2.0}}, ax, controls=["c"])
    assert [line.get_label() for line in ax.lines] == ["a", "c"]
    assert ax.lines[0].get_ydata()[1] == gen.GAP_FLOOR_DB and ax.lines[1].get_linestyle() == "--"
    plt.close(fig)


def test_s1_gaps_read_the_stored_evaluation_of_the_s1_models():
    from types import SimpleNamespace

    def net(train, test):
        return SimpleNamespace(
            history=[{"sigmas": [0.1, 0.2], "train_psnr": train, "test_psnr": test}])

    models = {(10, "S1"): net([30.0, 20.0], [20.0, 16.0]), (10, "S2"): net([1.0, 1.0], [0, 0]),
              (100, "S1"): net([25.0, 21.0], [25.0, 20.0])}
    assert list(gen.s1_models(models)) == [10, 100]
    assert gen.s1_gaps(models) == {10: pytest.approx(7.0), 100: pytest.approx(0.5)}
    longer = {(100, 36_000): net([26.0, 22.0], [25.0, 20.0]), (100, 24_000): net([9.0, 9.0],
                                                                                 [0.0, 0.0])}
    assert gen.longest_gaps(models, longer) == {10: pytest.approx(7.0), 100: pytest.approx(1.5)}
    assert gen.longer_curves("40", longer) == {
        "40, 24,000 steps": {100: pytest.approx(9.0)}, "40, 36,000 steps":
        {100: pytest.approx(1.5)}
    }


def test_a_longer_run_carries_the_rows_at_its_n():
    size_set = config.SizeSet(40, pairs=(13_000, ), s1_only=(1000, ),
                              longer=((1000, 24_000), (1000, 36_000), (13_000, 24_000)))
    assert size_set.longest_steps(1000) == 36_000 and size_set.longest_steps(100) is None
    p = config.get_profile("book")
    p = replace(p, faces=replace(p.faces, more_sizes=(size_set, )))
    s1, s2 = {1000: 0.2, 13_000: 0.1}, {1000: 0.4, 13_000: 0.1}
    rows = {r["id"]: r for r in gen.size_measurements(p, s1, s2, {1000: 0.6, 13_000: 0.3}, None)}
    ratio = rows["Fig15.gap_ratio_N1000"]
    assert ratio["checkpoints"] == ["celeba-N1000-S1-40px-36000steps"]
    assert ratio["measured"] == pytest.approx(2.0) and "36,000 steps" in ratio["measure"]
    largest = rows["Fig15.gap_40px_largest_N"]
    assert largest["checkpoints"] == ["celeba-N13000-S1-40px-24000steps"]
    pair = rows["Fig2.pair_similarity_40px_largest_N"]  # a pair needs S1 and S2: the shorter
    assert pair["checkpoints"] == ["celeba-N13000-S1-40px", "celeba-N13000-S2-40px"]
