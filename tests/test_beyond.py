"""Chapter 07's machines and measures on toy images with known answers (no data, no checkpoints)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from diffgen_utils import analysis, config, sampling
from diffgen_utils.book import scorecard
from diffgen_utils.chapters import beyond
from diffgen_utils.chapters import generalization as gen
from diffgen_utils.models import UNet

H = W = 6
SHAPE = (1, H, W)


def images(n, seed, size=H):
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def noisy(x, sigma, seed):
    return x + sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))


def tiny_unet(seed=0):
    torch.manual_seed(seed)
    m = UNet(blocks=1, width=4)
    m(torch.rand(16, 1, 8, 8))  # set the running sd of the batch norms
    return m.eval()


# ------------------------------------------------------------------ brute-force references
def padded_patch(img, r, c, patch):
    """The patch x patch window of a (H, W) image centred on (r, c), zeros outside."""
    k = patch // 2
    p = F.pad(img, (k, k, k, k))
    return p[r:r + patch, c:c + patch]


def ls_reference(train, y, sigma, patch):
    out = torch.empty_like(y)
    for b in range(len(y)):
        for r in range(H):
            for c in range(W):
                yp = padded_patch(y[b, 0].double(), r, c, patch)
                d2 = torch.stack([((yp - padded_patch(x[0].double(), r, c, patch))**2).sum()
                                  for x in train])
                w = torch.softmax(-d2 / (2 * sigma**2), dim=0)
                out[b, 0, r, c] = (w * train[:, 0, r, c].double()).sum()
    return out


def els_reference(train, y, sigma, patch):
    cands = [(padded_patch(x[0].double(), r, c, patch), x[0, r, c].double()) for x in train
             for r in range(H) for c in range(W)]
    patches = torch.stack([p for p, _ in cands])
    centres = torch.stack([v for _, v in cands])
    out = torch.empty_like(y)
    for b in range(len(y)):
        for r in range(H):
            for c in range(W):
                yp = padded_patch(y[b, 0].double(), r, c, patch)
                d2 = ((patches - yp)**2).sum(dim=(1, 2))
                w = torch.softmax(-d2 / (2 * sigma**2), dim=0)
                out[b, 0, r, c] = (w * centres).sum()
    return out


# ------------------------------------------------------------------ the machines
@pytest.mark.parametrize("patch", [1, 3, 5])
def test_local_score_matches_a_brute_force_reference(patch):
    train, y = images(5, 1), noisy(images(2, 2), 0.3, 3)
    got = beyond.LocalScore(train, chunk=2)(y, 0.4, patch)  # chunks of 2: 3 chunks
    torch.testing.assert_close(got, ls_reference(train, y, 0.4, patch).float(), rtol=0, atol=2e-5)


@pytest.mark.parametrize("patch", [1, 3])
def test_equivariant_local_score_matches_a_brute_force_reference(patch):
    train, y = images(3, 4), noisy(images(2, 5), 0.3, 6)
    els = beyond.EquivariantLocalScore(train, chunk=7)
    assert els.n_candidates == els.total == 3 * H * W
    got = els(y, torch.tensor([0.3, 0.5]), patch)
    ref = torch.cat(
        [els_reference(train, y[:1], 0.3, patch),
         els_reference(train, y[1:], 0.5, patch)]).float()
    torch.testing.assert_close(got, ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("sigma", [0.05, 0.3, 2.0])
def test_a_patch_as_large_as_the_image_is_the_memorizer(sigma):
    """Every pixel's window then covers the whole image: the posterior over training images is
    the global one, gen.memorizer (an independent implementation)."""
    train, y = images(7, 7), noisy(images(3, 8), sigma, 9)
    got = beyond.LocalScore(train, chunk=3)(y, sigma, 2 * H - 1)
    torch.testing.assert_close(got, gen.memorizer(train, y, sigma), rtol=0, atol=1e-5)


def test_one_training_image_is_every_output_of_the_local_machine():
    x = images(1, 10)
    y = noisy(images(4, 11), 1.0, 12)
    for patch in (1, 3, 5):
        torch.testing.assert_close(beyond.LocalScore(x)(y, 0.7, patch), x.expand(4, -1, -1, -1))


def test_a_noiseless_training_image_is_returned_by_both_machines():
    """At a tiny sigma the best patch at each pixel is the image's own (random images: every
    patch is unique), so both machines return the image itself."""
    train = images(4, 13)
    for machine in (beyond.LocalScore(train), beyond.EquivariantLocalScore(train)):
        torch.testing.assert_close(machine(train[2:3], 1e-3, 3), train[2:3], rtol=0, atol=1e-5)


def test_single_pixel_els_is_a_pointwise_function():
    """With 1x1 patches the ELS posterior at a pixel depends only on that pixel's value, so
    permuting the noisy image's pixels permutes the output (the LS machine is not: its
    candidates depend on the position)."""
    train, y = images(4, 14), noisy(images(1, 15), 0.2, 16)
    perm = torch.randperm(H * W, generator=torch.Generator().manual_seed(0))
    shuffle = lambda t: t.reshape(1, 1, -1)[..., perm].reshape(t.shape)  # noqa: E731
    els = beyond.EquivariantLocalScore(train)
    torch.testing.assert_close(els(shuffle(y), 0.2, 1), shuffle(els(y, 0.2, 1)))
    ls = beyond.LocalScore(train)
    assert not torch.allclose(ls(shuffle(y), 0.2, 1), shuffle(ls(y, 0.2, 1)), atol=1e-3)


def test_els_is_translation_equivariant_away_from_the_border():
    """Shift the noisy image by one pixel (rolling: it is zero outside a central block, as are
    the training images, so no content crosses the border): the output shifts with it, for the
    candidates come from every position."""

    def framed(x):
        out = torch.zeros(len(x), 1, 8, 8)
        out[:, :, 2:6, 2:6] = x[:, :, :4, :4]
        return out

    train, y = framed(images(3, 17)), framed(noisy(images(1, 18), 0.2, 19))
    roll = lambda t: torch.roll(t, shifts=(1, 1), dims=(2, 3))  # noqa: E731
    base = beyond.EquivariantLocalScore(train)(y, 0.3, 3)
    moved = beyond.EquivariantLocalScore(train)(roll(y), 0.3, 3)
    torch.testing.assert_close(moved, roll(base), rtol=0, atol=1e-5)


def test_posterior_chunks_agree_and_stay_finite_at_tiny_sigma():
    train, y = images(9, 20), noisy(images(2, 21), 0.5, 22)
    one = beyond.LocalScore(train, chunk=1)(y, 1e-3, 3)
    all_ = beyond.LocalScore(train, chunk=100)(y, 1e-3, 3)
    assert torch.isfinite(one).all()
    torch.testing.assert_close(one, all_, rtol=0, atol=1e-5)
    els_a = beyond.EquivariantLocalScore(train, chunk=5)(y, 1e-3, 3)
    els_b = beyond.EquivariantLocalScore(train, chunk=10_000)(y, 1e-3, 3)
    assert torch.isfinite(els_a).all()
    torch.testing.assert_close(els_a, els_b, rtol=0, atol=1e-5)


def test_els_subset_is_seeded_shared_across_patch_sizes_and_a_subset():
    train = images(5, 23)
    a = beyond.EquivariantLocalScore(train, max_patches=50, seed=3)
    b = beyond.EquivariantLocalScore(train, max_patches=50, seed=3)
    c = beyond.EquivariantLocalScore(train, max_patches=50, seed=4)
    assert a.n_candidates == 50 and a.total == 5 * H * W
    assert torch.equal(a.image, b.image) and torch.equal(a.row, b.row)
    assert not (torch.equal(a.image, c.image) and torch.equal(a.row, c.row))
    full = beyond.EquivariantLocalScore(train)
    # a candidate's centre is the same pixel whatever the patch size
    p1, _, centre1 = a.candidates(1)
    p5, _, centre5 = a.candidates(5)
    torch.testing.assert_close(centre1, centre5)
    torch.testing.assert_close(p1[:, 0], centre1)
    torch.testing.assert_close(p5[:, 12], centre5)  # the middle of a 5x5 window
    assert set(zip(a.image.tolist(), a.row.tolist(), a.col.tolist())) <= set(
        zip(full.image.tolist(), full.row.tolist(), full.col.tolist()))


def test_machines_reject_bad_arguments():
    ls = beyond.LocalScore(images(2, 24))
    with pytest.raises(ValueError, match="odd"):
        ls(images(1, 25), 0.3, 4)
    with pytest.raises(ValueError, match="sigma"):
        ls(images(2, 25), torch.tensor([0.3, 0.2, 0.1]), 3)
    with pytest.raises(ValueError, match="positive"):
        ls(images(1, 25), 0.0, 3)
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        beyond.LocalScore(torch.rand(3, 6, 6))


# ------------------------------------------------------------------ Algorithm 1, sigma given
def test_follow_with_the_network_and_its_own_paths_reproduces_its_samples():
    m = tiny_unet()
    seeds = [3, 5, 8, 13]
    run = sampling.sample(m, seeds, shape=(1, 8, 8), max_steps=30, progress=False)
    again = beyond.follow(beyond.network_denoiser(m), seeds, run.sigmas, (1, 8, 8),
                          settings=run.settings)
    torch.testing.assert_close(again.images, run.images, rtol=0, atol=1e-5)
    assert [len(s) for s in again.states] == run.steps.tolist()


def test_one_training_image_is_every_sample():
    """The LS machine (any patch size) and the memorizer of a single face: every sample is it."""
    x = images(1, 26)
    paths = [list(np.geomspace(1.0, 0.04, 40 + k)) for k in range(3)]
    for patch in (3, 2 * H - 1):
        out = beyond.follow(lambda y, s: beyond.LocalScore(x)(y, s, patch), [0, 1, 2], paths,
                            SHAPE)
        torch.testing.assert_close(out.images, x.expand(3, -1, -1, -1))
    mem = beyond.follow(lambda y, s: gen.memorizer(x, y, s.view(-1, 1)), [0, 1, 2], paths, SHAPE)
    torch.testing.assert_close(mem.images, x.expand(3, -1, -1, -1))


def test_the_memorizer_samples_training_images_and_collapse_is_found():
    train = images(6, 27)
    paths = [list(np.geomspace(1.0, 0.03, 80)) for _ in range(4)]
    out = beyond.follow(lambda y, s: gen.memorizer(train, y, s.view(-1, 1)), range(4), paths,
                        SHAPE)
    _, near = analysis.nearest_neighbors(out.images, train)
    assert near.min() > 0.999
    for states, path in zip(out.states, paths):
        sigma = beyond.collapse_sigma(states, path, train)
        assert path[-1] <= sigma <= path[0]


def test_follow_checks_its_paths():
    with pytest.raises(ValueError, match="sigma path"):
        beyond.follow(lambda y, s: y, [0, 1], [[0.5]], SHAPE)
    with pytest.raises(ValueError, match="sigma path"):
        beyond.follow(lambda y, s: y, [0], [[]], SHAPE)


# ------------------------------------------------------------------ calibration
def test_calibration_recovers_the_patch_size_of_a_local_network():
    """A 'network' whose residual is the LS machine's at patch 5: calibration picks 5 at every
    level (the raw cosine of identical residuals is 1)."""
    train = images(8, 28)
    ls = beyond.LocalScore(train)
    y = torch.cat([noisy(images(3, 29), s, 30) for s in (0.8, 0.3, 0.1)])
    sigma = torch.tensor([0.8] * 3 + [0.3] * 3 + [0.1] * 3)
    states = beyond.CalibrationStates(y, sigma,
                                      ls(y, sigma, 5) - y,
                                      torch.tensor([0] * 3 + [1] * 3 + [2] * 3),
                                      np.array([0.8, 0.3, 0.1]))
    schedule = beyond.calibrate(ls, states, sizes=(1, 3, 5, 7))
    assert schedule.sizes.tolist() == [5, 5, 5]
    assert schedule.scores.shape == (3, 4)
    np.testing.assert_allclose(schedule.scores[:, 2], 1.0, atol=1e-6)


def test_patch_schedule_picks_the_nearest_level_in_log_sigma():
    schedule = beyond.PatchSchedule(np.array([1.0, 0.3, 0.05]), np.array([9, 5, 3]))
    assert [schedule(s) for s in (2.0, 0.6, 0.5, 0.2, 0.01)] == [9, 9, 5, 5, 3]
    calls = []

    def machine(y, sigma, patch):
        calls.append((patch, len(y)))
        return y + patch

    run = schedule.denoiser(machine)
    y = torch.zeros(3, *SHAPE)
    out = run(y, torch.tensor([0.9, 0.04, 0.8]))
    assert sorted(calls) == [(3, 1), (9, 2)]
    assert out[:, 0, 0, 0].tolist() == [9, 3, 9]


def test_calibration_states_follow_the_networks_paths():
    m = tiny_unet()
    states = beyond.calibration_states(m, [10, 11], (1, 8, 8), levels=3,
                                       settings=sampling.SamplerSettings(max_steps=25))
    assert len(states.y) == 6 and states.level.tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_allclose(states.targets, np.geomspace(1.0, 0.05, 3))
    again = beyond.network_denoiser(m)(states.y, states.sigma) - states.y
    torch.testing.assert_close(again, states.residual, rtol=0, atol=1e-5)
    torch.testing.assert_close(analysis.residual_noise_level(m, states.y), states.sigma.float(),
                               rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ where samples commit
def test_collapse_sigma_is_the_step_after_the_last_change():
    train = torch.zeros(3, 1, 2, 2)
    train[1] += 1
    train[2] -= 1
    # nearest: 1, 1, 2, 0, 0, 0 -> last change at step 3
    states = torch.stack([train[i] + 0.01 for i in (1, 1, 2, 0, 0, 0)])
    path = [1.0, 0.8, 0.6, 0.4, 0.2, 0.1]
    assert beyond.collapse_sigma(states, path, train) == 0.4
    assert beyond.collapse_sigma(states[3:], path[3:], train) == 0.4  # never changes: the start


def test_top_eigenvalue_and_speciation():
    v = torch.zeros(16)
    v[3] = 2.0
    a = torch.tensor([-1.0, 1.0, -1.0, 1.0])  # variance 4/3 (unbiased)
    x = (a[:, None] * v[None]).reshape(4, 1, 4, 4)
    assert beyond.top_eigenvalue(x) == pytest.approx(4 / 3 * 4)
    with pytest.raises(ValueError, match="two images"):
        beyond.top_eigenvalue(x[:1])
    s = beyond.speciation_sigmas(5.0)
    assert s["sqrt(Lambda - 1)"] == pytest.approx(2.0) and s["sqrt(Lambda)"] == pytest.approx(
        math.sqrt(5))
    # the conversion: e^-2t_S = 1 / Lambda and e^2t = 1 + sigma^2
    lam = 7.7
    t_s = 0.5 * math.log(lam)
    assert beyond.speciation_sigmas(lam)["sqrt(Lambda - 1)"]**2 == pytest.approx(
        math.exp(2 * t_s) - 1)


def test_gaussian_collapse_sigma():
    assert beyond.gaussian_collapse_sigma(1, 400, 0.05) == math.inf
    n, d, v = 1000, 400, 0.06
    t_c = 0.5 * math.log(1 + v / (n**(2 / d) - 1))  # Biroli et al., in the OU time
    assert beyond.gaussian_collapse_sigma(n, d, v)**2 == pytest.approx(math.exp(2 * t_c) - 1)
    assert beyond.gaussian_collapse_sigma(10, d, v) > beyond.gaussian_collapse_sigma(1000, d, v)


def test_split_sigmas_reads_the_first_step_below_the_threshold():
    path = {
        "steps": np.array([0, 1, 2, 3]), "cos_ab": np.array([1.0, 0.95, 0.85, 0.5]),
        "partner_steps": np.array([0, 1, 2, 3]), "cos_partner": np.array([1.0, 0.99, 0.98, 0.97]),
        "sigmas": [[1.0, 0.9, 0.8, 0.7], [1.0, 0.9, 0.8, 0.7]]
    }
    out = beyond.split_sigmas([path, path], threshold=0.9)
    assert out["S1 noise A vs S1 noise B"].tolist() == [0.8, 0.8]
    assert np.isnan(out["S1 vs S2, same noise"]).all()
    assert analysis.first_below([0.95, 0.92], 0.9) is None


def test_split_sigmas_on_real_two_paths():
    a, b = tiny_unet(0), tiny_unet(1)
    paths = [
        gen.two_paths(a, s, (100 + s, 200 + s), (1, 8, 8), partner=b, max_steps=20) for s in (0, 1)
    ]
    out = beyond.split_sigmas(paths)
    assert set(out) == {"S1 noise A vs S1 noise B", "S1 vs S2, same noise"}
    assert all(len(v) == 2 for v in out.values())


# ------------------------------------------------------------------ reproducibility
def test_reproducibility_and_generalization_scores():
    pair = torch.tensor([0.95, 0.7, 0.5, 0.1])
    near = torch.tensor([0.99, 0.92, 0.5, 0.3, 0.2, 0.65, 0.1, 0.0])
    r = beyond.reproducibility(pair, near)
    assert r == {"RP > 0.6": 0.5, "RP > 0.9": 0.25, "GS at 0.6": 0.625, "GS at 0.9": 0.75}


# ------------------------------------------------------------------ memorization against time
def test_fit_distance_ignores_brightness_and_contrast_and_the_one_third_rule():
    train = images(5, 30)
    copies = 2.0 * train[[3, 1]] + 0.1  # bias-free copies: rescaled and shifted faces
    assert beyond.fit_distances(copies, train)[0, 3] == pytest.approx(0, abs=1e-6)
    between = 0.5 * (train[[0]] + train[[2]])  # as near to two faces: no copy
    assert beyond.memorized(torch.cat([copies, between]), train).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="two training images"):
        beyond.memorized(copies, train[:1])


def curve(shares, steps=(10, 20, 40, 80, 160), seeds=64):
    flags = np.array([[k < round(v * seeds) for k in range(seeds)] for v in shares], float)
    s = flags.mean(axis=1)
    return beyond.MemorizationCurve("run", 10, seeds, np.array(steps), s, s, s, flags)


def test_onset_is_where_the_share_stays_above_its_level():
    assert curve([0, 0.1, 0, 0.2, 0.5]).onset() == 80  # a stray sample at 20 does not count
    assert curve([0.5] * 5).onset() == 10
    assert curve([0, 0, 0, 0.5, 0.01]).onset() is None  # fell back below: no onset
    assert curve([0, 0, 0, 0, 0.04]).onset() is None
    small, large = curve([0, 0.1, 0.5, 1, 1]), curve([0, 0, 0, 0.2, 0.6])
    assert beyond.onset_growth({10: small, 100: large}, 10, 100) == (4.0, False)
    assert beyond.onset_growth({10: small, 100: curve([0] * 5)}, 10, 100) == (8.0, True)
    assert math.isnan(beyond.onset_growth({10: curve([0] * 5), 100: large}, 10, 100)[0])


def test_memorization_curve_reads_a_watched_run():
    train = images(6, 31)
    strangers = images(8, 32)
    copies = 3.0 * train[torch.arange(8) % 6]
    watched = [{"step": 5, "images": strangers.half()},
               {"step": 9, "images": torch.cat([strangers[:4], copies[:4]]).half()},
               {"step": 12, "images": copies.half()}]
    c = beyond.memorization_curve("run", watched, train, boot=200)
    assert c.steps.tolist() == [5, 9, 12] and c.samples == 8 and c.n == 6
    assert c.share.tolist() == [0.0, 0.5, 1.0]
    assert c.low[1] < 0.5 < c.high[1] and c.low[2] == c.high[2] == 1.0
    assert c.onset() == 9 and c.flags.shape == (3, 8)
    grid, titles, labels = beyond.watched_grid(watched, train, rows=2, count=8)
    assert labels == ["step\n5", "step\n12"] and len(grid) == 16
    assert titles == [""] * 8 + ["copy"] * 8


# ------------------------------------------------------------------ budget and scorecard
@pytest.mark.parametrize("name", config.PROFILE_NAMES)
def test_budget_keeps_calibration_apart_from_scored_seeds(name):
    p = config.get_profile(name)
    b = beyond.budget(p)
    assert b.scored <= b.pairs
    assert not set(b.calibration) & set(range(b.pairs))
    assert b.els_max_n >= 10 and b.levels >= 2


def fake_study(n, corr):
    return beyond.MachineStudy(n=n, network=f"net{n}", seeds=list(range(4)), samples={},
                               corr={k: torch.tensor(v)
                                     for k, v in corr.items()}, schedules={}, states={},
                               sigma_paths=[])


def test_scorecard_rows():
    p = config.get_profile("book")
    b = beyond.budget(p)
    big = p.faces.largest_n
    studies = {big: fake_study(big, {"LS": [0.8, 0.9, 0.85, 0.95], "memorizer": [0.3] * 4})}
    control = fake_study(10, {"LS": [0.4] * 4, "ELS": [0.5] * 4, "memorizer": [0.7] * 4})
    curves = {
        10: curve([0, 0.1, 0.5, 1, 1]), 100: curve([0, 0, 0, 0.2, 0.6]), 1000: curve([0] * 5)
    }
    rows = beyond.scorecard_measurements(p, studies, control, "celeba-N10-S1-2blocks", 2.6,
                                         {big: 0.6}, {big: {"RP > 0.6": 0.9}}, b, curves)
    by_id = {r["id"]: r for r in rows}
    assert {
        "beyond.local_machine_corr_largest_N", "beyond.ls_vs_memorizer_largest_N",
        "beyond.memorizer_vs_ls_N10"
    } <= set(by_id)
    assert by_id["beyond.local_machine_corr_largest_N"]["measured"] == pytest.approx(0.85)
    assert by_id["beyond.ls_vs_memorizer_largest_N"]["measured"] == pytest.approx(0.55)
    assert by_id["beyond.memorizer_vs_ls_N10"]["measured"] == pytest.approx(0.2)  # best: ELS
    assert "ELS" in by_id["beyond.memorizer_vs_ls_N10"]["measure"]
    assert "Pearson" in by_id["beyond.local_machine_corr_largest_N"]["measure"]
    assert "seeds 0-3" in by_id["beyond.local_machine_corr_largest_N"]["measure"]
    recorded = scorecard.record_all(rows, chapter="06", profile="book")
    assert [r["pass"] for r in recorded[:3]] == [True, True, True]
    assert all(r["measured"] is not None and math.isfinite(r["measured"]) for r in recorded)
    onset = by_id["beyond.memorization_onset_growth"]
    assert onset["measured"] == 4.0 and onset["paper"] == 10 and onset["target"] == "> 1"
    lo, hi = onset["interval"]
    assert lo <= 4.0 <= hi
    lo, hi = by_id["beyond.local_machine_corr_largest_N"]["interval"]
    assert 0.8 <= lo <= 0.85 <= hi <= 0.95
    assert "N=100 over that at N=10" in onset["measure"]


def test_figures_draw(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = {
        n: fake_study(n, {"LS": [0.5, 0.6, 0.7, 0.8], "memorizer": [0.2] * 4})
        for n in (1, 10, 100)
    }
    studies[10].corr["ELS"] = torch.tensor([0.3, 0.4, 0.5, 0.6])
    fig, axes = plt.subplots(1, 3)
    beyond.plot_machine_corr(axes[0], studies, {1: 0.1, 10: 0.4, 100: 0.9})
    beyond.plot_commit(
        axes[1], [1, 10, 100], {n: np.array([0.5, 0.6])
                                for n in (1, 10, 100)},
        {
            "a": {n: np.array([0.3, np.nan])
                  for n in (1, 10, 100)}, "b": {n: np.array([np.nan])
                                                for n in (1, 10, 100)}
        }, {1: math.inf, 10: 2.0, 100: 1.5}, {"x": 2.6, "y": 2.8}, sampling.SamplerSettings())
    beyond.plot_reproducibility(
        axes[2],
        {n: {"RP > 0.6": 0.1 * k, "GS at 0.6": 1 - 0.1 * k}
         for k, n in enumerate((1, 10, 100))})
    beyond.plot_memorization(axes[0], {10: curve([0, 0.1, 0.5, 1, 1]), 100: curve([0] * 5)}, 120)
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)


def test_crossover_and_the_closing_note():
    p = config.get_profile("book")
    ns = p.faces.n_values
    studies = {
        n: fake_study(n, {"LS": [0.55 + 0.05 * k] * 4, "memorizer": [0.6 - 0.05 * k] * 4})
        for k, n in enumerate(ns)
    }
    assert beyond.crossover(studies) == ns[1]  # behind at ns[0], ahead from ns[1] on
    studies[ns[-1]].corr["memorizer"] = torch.tensor([0.99] * 4)
    assert beyond.crossover(studies) is None  # behind again at the largest N
    control = fake_study(10, {"LS": [0.4] * 4, "memorizer": [0.7] * 4})
    big = ns[-1]
    rows = beyond.published_comparison(p, studies, control, {"sqrt(Lambda - 1)": 2.6}, 1.0,
                                       {big: 0.66}, {big: 1.07},
                                       {n: {"RP > 0.6": 0.2 if n == 1 else 0.9}
                                        for n in ns},
                                       {10: curve([0, 0.1, 0.5, 1, 1]), 100: curve([0] * 5)})
    assert all(len(r) == 4 for r in rows)
    text = " ".join(" ".join(r) for r in rows)
    assert "above the local machine" in text  # the memorizer wins at the largest N here
    assert "differs by more than a factor 1.5" in text and "samples start after speciation" in text
    assert "≥ 8.00" in text and "agrees in direction" in text  # N = 100 not started: a bound


def test_figures_fit_the_page():
    """The chapter's plots, drawn on plotting.subplots at the sizes the notebook uses, fit the
    book's column with legible text."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from diffgen_utils import plotting

    studies = {
        n: fake_study(n, {"LS": [0.5, 0.6, 0.7, 0.8], "memorizer": [0.2] * 4})
        for n in (1, 10, 100, 13000)
    }
    control = fake_study(10, {"LS": [0.4] * 4, "ELS": [0.3] * 4, "memorizer": [0.7] * 4})
    fig, ax = plotting.subplots(height=3.6)
    beyond.plot_machine_corr(ax, studies, {n: 0.5 for n in studies}, control=control)
    assert plotting.figure_problems(fig) == []
    fig2, ax2 = plotting.subplots(height=3.4)
    ns = list(studies)
    beyond.plot_commit(ax2, ns, {n: np.array([0.5, 0.6])
                                 for n in ns}, {
                                     "S1 noise A vs S1 noise B": {n: np.array([0.9])
                                                                  for n in ns},
                                     "S1 vs S2, same noise": {n: np.array([np.nan])
                                                              for n in ns}
                                 }, {n: beyond.gaussian_collapse_sigma(n, 400, 0.056)
                                     for n in ns}, beyond.speciation_sigmas(7.7),
                       sampling.SamplerSettings())
    assert plotting.figure_problems(fig2) == []
    plt.close("all")
