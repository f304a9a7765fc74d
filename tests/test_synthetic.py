"""Synthetic sets of the C^alpha and manifold chapters, and their names in the zoo."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from diffgen_utils import config, families, synthetic as S, zoo

GENERATORS = {
    "calpha":
    lambda n, seed: S.calpha(n, 16, 2.0, seed),
    "calpha_paper":
    lambda n, seed: S.calpha(n, 16, 2.0, seed, variant="paper"),
    "disks":
    lambda n, seed: S.disks(n, 16, seed)[0],
    "ray":
    lambda n, seed: S.face_ray(torch.rand(16, 16, generator=torch.Generator().manual_seed(0)), n,
                               seed)[0],
    "cone":
    lambda n, seed: S.sinusoid_cone(n, 16, seed)[0],
}


@pytest.mark.parametrize("family", GENERATORS)
def test_seeded_shaped_and_in_range(family):
    make = GENERATORS[family]
    torch.manual_seed(0)
    a = make(600, 5)
    torch.manual_seed(1)  # the global RNG plays no role
    assert torch.equal(a, make(600, 5))
    assert not torch.equal(a[:8], make(8, 6))
    assert torch.equal(a[:8], make(8, 5))  # a smaller N is a prefix of a larger one
    assert a.shape == (600, 1, 16, 16) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    assert len({tuple(x.flatten()[:16].tolist()) for x in a}) == 600  # all distinct


def test_pinned_outputs():
    """A change of any generator's output must bump S.SYNTHETIC_VERSION (the zoo's synthetic
    fingerprints hash the recipe, not the images); then update these sums."""
    sums = [float((GENERATORS[f](64, 0).double()**2).sum()) for f in GENERATORS]
    assert sums == pytest.approx([5695.978, 5032.876, 5287.639, 1627.667, 4730.333], abs=0.01), \
        f"generator output changed: bump SYNTHETIC_VERSION and pin {sums}"


def test_optimal_slope():
    assert S.optimal_slope(1) == 0.5 and S.optimal_slope(4) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        S.optimal_slope(0)


# ---------------------------------------------------------------- C^alpha
def test_calpha_paper_variant_is_two_regions_split_by_the_contour():
    p = S.calpha_parts(64, 24, 3.0, 0, variant="paper")
    rows = torch.arange(24).view(1, 1, 24, 1)
    assert torch.equal(p.mask, (rows > p.contour[:, None, None, :]).float())
    # every column: region 2 above, region 1 below, both present
    steps = p.mask.diff(dim=2)
    assert (steps >= 0).all() and (steps.sum(dim=2) == 1).all()
    assert torch.allclose(p.images, p.mask * p.background1 + (1 - p.mask) * p.background2)
    for b in (p.background1, p.background2):
        assert torch.allclose(b.amin(dim=(2, 3)), torch.zeros(1), atol=1e-6)
        assert torch.allclose(b.amax(dim=(2, 3)), torch.ones(1), atol=1e-6)


def test_calpha_code_variant_edge_sits_on_the_contour():
    size = 32
    p = S.calpha_parts(512, size, 4.0, 1)
    assert torch.allclose(p.images, p.mask * p.background1 + (1 - p.mask) * p.background2,
                          atol=1e-6)
    band = S.CONTOUR_HALF_RANGE * size
    assert ((p.contour - size / 2).abs() <= band + 1e-4).all()
    # u1, u2 ~ U(0, 1), roles swapped half of the time; the bright side is always brighter
    assert 0.4 < p.swapped.float().mean() < 0.6
    assert 0.4 < p.high_min.mean() < 0.6 and 0.4 < p.low_max.mean() < 0.6
    bright = torch.where(p.swapped.view(-1, 1, 1, 1), p.background2, p.background1)
    dark = torch.where(p.swapped.view(-1, 1, 1, 1), p.background1, p.background2)
    assert (bright.amin(dim=(1, 2, 3)) >= p.high_min - 1e-6).all() and (bright <= 1).all()
    assert (dark.amax(dim=(1, 2, 3)) <= p.low_max + 1e-6).all() and (dark >= 0).all()
    assert (bright.mean(dim=(1, 2, 3)) > dark.mean(dim=(1, 2, 3))).float().mean() > 0.98
    # unblurred mask: 1 on rows >= round(c); the image's largest row-wise jump is at the contour
    edge = torch.round(p.contour)  # (n, size)
    strong = p.high_min - p.low_max > 0.3
    jumps = p.images[strong, 0].diff(dim=1).abs().argmax(dim=1) + 1  # (m, size) row below jump
    near = (jumps - edge[strong]).abs() <= 2
    assert strong.sum() > 50 and near.float().mean() > 0.95


def test_calpha_regularity_orders_smoothness():

    def roughness(t):  # mean |second difference| along the last axis
        return float(t.diff(n=2, dim=-1).abs().mean())

    contours = [roughness(S.calpha_parts(128, 32, a, 0).contour) for a in (1.0, 2.0, 4.0)]
    assert contours[0] > 2 * contours[1] > 4 * contours[2]
    backgrounds = [
        roughness(S.calpha_parts(128, 32, 2.0, 0, background_alpha=b).background1)
        for b in (1.0, 2.0, 8.0)
    ]
    assert backgrounds[0] > backgrounds[1] > backgrounds[2]
    # separate regularities: the contour does not depend on the background's
    a = S.calpha_parts(8, 32, 1.5, 3, background_alpha=8.0)
    b = S.calpha_parts(8, 32, 1.5, 3)
    assert torch.equal(a.contour, b.contour) and not torch.equal(a.background1, b.background1)


# ---------------------------------------------------------------- disks
def test_disk_parameters_and_analytic_image():
    size = 20
    x, theta = S.disks(300, size, 0)
    cx, cy, r, fg, bg = theta.T
    assert (r >= 3).all() and (r < size / 2 - 3).all()
    assert (cx - r >= 0).all() and (cx + r <= size).all()
    assert (cy - r >= 0).all() and (cy + r <= size).all()
    assert (fg >= 0).all() and (fg <= 1).all() and (bg >= 0).all() and (bg <= 1).all()
    t = theta[7].double().numpy()
    pix = np.arange(size) + 0.5
    dist = np.hypot(pix[None, :] - t[0], pix[:, None] - t[1])
    expected = t[4] + (t[3] - t[4]) / (1 + np.exp(-S.EDGE_SHARPNESS * (t[2] - dist)))
    assert np.allclose(x[7, 0].numpy(), expected, atol=1e-5)
    # far inside the disk is the foreground, far outside the background
    assert abs(float(x[7, 0, int(t[1]), int(t[0])]) - t[3]) < 1e-3


def test_disk_tangent_space():
    size = 16
    theta = torch.tensor([7.3, 8.9, 4.6, 0.8, 0.2], dtype=torch.float64)
    q = S.disk_tangent_space(theta, size).double()
    assert q.shape == (5, size * size)
    assert torch.allclose(q @ q.T, torch.eye(5, dtype=torch.float64), atol=1e-5)
    jac = S.disk_jacobian(theta, size)
    assert jac.shape == (5, size * size)
    # the closed form is autograd's Jacobian: compare v^T J for random v (one backward each)
    leaf = theta.clone().requires_grad_()
    image = S.disk_image(leaf, size).reshape(-1)
    for v in torch.randn(3, size * size, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(0)):
        (grad, ) = torch.autograd.grad(image, leaf, v, retain_graph=True)
        assert torch.allclose(grad, jac @ v, atol=1e-10)
    assert torch.allclose((jac @ q.T) @ q, jac, atol=1e-5)  # q spans the columns of dx/dtheta
    x0 = S.disk_image(theta, size).reshape(-1)
    delta = torch.tensor([0.3, -0.2, 0.25, 0.05, -0.04], dtype=torch.float64)
    errors = []
    for eps in (1e-2, 5e-3):
        step = eps * delta
        lin = x0 + step @ jac
        errors.append(float((S.disk_image(theta + step, size).reshape(-1) - lin).norm()))
        assert errors[-1] < 0.01 * float((step @ jac).norm())
    assert errors[1] < 0.3 * errors[0]  # second order: halving the step quarters the error
    # batched form agrees with the single one
    thetas = torch.stack([theta, theta + 0.5 * delta])
    assert torch.allclose(S.disk_tangent_space(thetas, size)[0], q.float(), atol=1e-6)


# ---------------------------------------------------------------- face ray, sinusoid cone
def test_face_ray():
    face = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(0)) * 0.7
    x, s = S.face_ray(face, 200, 0)
    assert x.shape == (200, 1, 12, 12) and torch.equal(x, s.view(-1, 1, 1, 1) * face)
    peaks = x.amax(dim=(1, 2, 3))
    assert (peaks <= 1).all() and peaks.min() >= 0.05 - 1e-6
    assert peaks.min() < 0.2 and peaks.max() > 0.85  # U[0.05, 1] of the maximum
    t = S.ray_tangent(face)
    assert t.shape == (1, 144) and math.isclose(float(t.norm()), 1, rel_tol=1e-6)
    unit = x.reshape(200, -1) / x.reshape(200, -1).norm(dim=1, keepdim=True)
    assert torch.allclose(unit, t.expand(200, -1), atol=1e-6)
    with pytest.raises(ValueError):
        S.face_ray(-face, 2, 0)


def test_sinusoid_cone_lies_in_span_of_one_sin_cos():
    size = 12
    x, ab = S.sinusoid_cone(300, size, 0)
    basis = torch.cat([torch.full((1, size * size), 1 / size), S.cone_tangent(size)]).double()
    assert torch.allclose(basis @ basis.T, torch.eye(3, dtype=torch.float64), atol=1e-6)
    flat = x.reshape(300, -1).double()
    residual = flat - (flat @ basis.T) @ basis
    assert residual.abs().max() < 1e-5
    # coordinates: x = 0.5 + a sin + b cos, a^2 + b^2 <= 0.5^2
    t = S.cone_tangent(size).double() * math.sqrt(size * size / 2)
    assert torch.allclose(flat - 0.5, ab.double() @ t, atol=1e-5)
    assert (ab.norm(dim=1) <= 0.5 + 1e-6).all() and ab.norm(dim=1).max() > 0.45
    assert torch.allclose(flat.mean(dim=1), torch.full((300, ), 0.5, dtype=torch.float64),
                          atol=1e-6)


# ---------------------------------------------------------------- zoo
@pytest.fixture
def tiny():
    return replace(config.get_profile("smoke"), name="tiny", width=4, steps=4, batch=4, n_test=4,
                   n_eval=4, eval_every=2, lr_halvings=(0.5, ), train_missing=True,
                   synthetic_size=16, synthetic_n=8)


@pytest.fixture
def env(zoo_env):
    return zoo_env[1]  # no face data: the ray uses the substitute's first image


@pytest.mark.parametrize("name,dataset,options", [
    ("calpha4-N100", "calpha", {"alpha": 4.0, "beta": 4.0, "variant": "code"}),
    ("calpha1.5-N10", "calpha", {"alpha": 1.5, "beta": 1.5, "variant": "code"}),
    ("calpha-c1.5-b8-N100", "calpha", {"alpha": 1.5, "beta": 8.0, "variant": "code"}),
    ("disks-N64", "disks", {}),
    ("ray-N7", "ray", {"scale_min": 0.05, "scale_max": 1.0}),
    ("cone-N9", "cone", {"amplitude": 0.5, "offset": 0.5}),
])
def test_names_parse_and_round_trip(name, dataset, options, tiny):
    cfg = zoo.spec(name, tiny, with_data=False).config
    assert cfg.dataset == dataset and cfg.options() == options and cfg.size == 16
    same_n = replace(tiny, synthetic_n=cfg.n_train)
    o = cfg.options()
    rebuilt = (families.MANIFOLDS.name(same_n, cfg.dataset)
               if cfg.dataset != "calpha" else families.CALPHA.name(same_n, o["alpha"], o["beta"]))
    assert rebuilt == name
    assert config.TrainConfig.from_dict(cfg.to_dict()) == cfg  # survives the checkpoint


@pytest.mark.parametrize("bad", [
    "calpha4.0-N10", "calpha-c4-b4-N10", "calpha-c04-b8-N10", "disks-N0", "calpha-N10",
    "cone-N10-S1"
])
def test_non_canonical_names_are_refused(bad, tiny):
    with pytest.raises(KeyError):
        zoo.spec(bad, tiny, with_data=False)


def test_model_families_and_recipes():
    book = config.get_profile("book")
    assert families.model_names(book) == families.model_names(book, "faces")
    assert families.model_names(book, "calpha") == [
        "calpha1-N20000", "calpha2-N20000", "calpha3-N20000", "calpha4-N20000", "calpha5-N20000",
        "calpha-c1.5-b8-N20000", "calpha-c2-b8-N20000", "calpha-c4-b8-N20000"
    ]
    assert families.model_names(book, "manifolds") == ["disks-N20000", "ray-N20000", "cone-N20000"]
    assert families.model_names(book, "all") == sum(
        (families.model_names(book, f)
         for f in ("faces", "other_faces", "calpha", "manifolds", "watched")), [])
    with pytest.raises(ValueError):
        families.model_names(book, "bedrooms")
    cfg = zoo.spec("calpha4-N20000", book, with_data=False).config
    assert (cfg.size, cfg.blocks, cfg.width, cfg.steps, cfg.batch) == (32, 1, 32, 5000, 32)
    assert cfg.loss_weighting == "inverse_variance" and cfg.sigma_sampling == "uniform_squared"
    custom = replace(book, calpha=replace(book.calpha, recipe=replace(book.calpha.recipe,
                                                                      steps=7)))
    assert zoo.spec("calpha4-N20000", custom, with_data=False).config.steps == 7
    assert zoo.spec("disks-N20000", custom,
                    with_data=False).config.steps == book.manifolds.recipe.steps
    paper = config.get_profile("paper")
    for name in families.model_names(paper, "calpha") + families.model_names(paper, "manifolds"):
        c = zoo.spec(name, paper, with_data=False).config
        assert (c.arch, c.blocks, c.width, c.size, c.batch, c.n_train) == \
            ("unet", 3, 64, 80, 512, 100_000)


def test_pool_splits_and_fingerprints(env, tiny):
    s = zoo.spec("cone-N8", tiny)
    train, test = s.train_images(tiny), s.test_images(tiny)
    assert train.shape == (8, 1, 16, 16) and test.shape == (4, 1, 16, 16)
    assert torch.equal(train, S.sinusoid_cone(8, 16, S.TRAIN_SEEDS["S1"])[0])
    assert not torch.equal(train[:4], test)
    assert not torch.equal(s.pool.split(8, "S2"), train)
    prints = {
        s.pool.fingerprint(8, "S1"),
        s.pool.fingerprint(8, "S2"),
        s.pool.fingerprint(9, "S1"),
        zoo.spec("disks-N8", tiny).pool.fingerprint(8, "S1"),
        zoo.spec("calpha4-N8", tiny).pool.fingerprint(8, "S1"),
        zoo.spec("calpha2-N8", tiny).pool.fingerprint(8, "S1")
    }
    assert len(prints) == 6


def test_load_trains_synthetic_models_then_reuses(env, tiny, monkeypatch):
    first = zoo.load("disks-N8", tiny)
    assert first.data_checked and not first.substitute and first.checkpoint["step"] == 4
    assert first.config.dataset == "disks" and first.config.size == 16
    assert (env / "tiny" / "disks-N8.pt").exists()
    assert zoo.status("disks-N8", tiny) == "done"
    ray = zoo.load("ray-N8", tiny)  # no CelebA here: the substitute's first image
    assert ray.substitute and ray.data_checked

    def no_training(*args, **kwargs):
        raise AssertionError("trained although a matching checkpoint exists")

    monkeypatch.setattr(zoo, "train", no_training)
    again = zoo.load("disks-N8", tiny, train_missing=False)
    assert again.checkpoint["data_fingerprint"] == first.checkpoint["data_fingerprint"]
    assert zoo.load("ray-N8", tiny, train_missing=False).substitute
    # other data options -> another config: reported, never silently reused
    other = replace(tiny, synthetic_size=20)
    with pytest.raises(FileNotFoundError, match="another config"):
        zoo.load("disks-N8", other, train_missing=False)


def test_train_cli_lists_a_family(env, capsys):
    from diffgen_utils.train_cli import main

    main(["--profile", "smoke", "--family", "manifolds", "--list"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["disks-N64", "ray-N64", "cone-N64"]
    assert all(line.split()[1] == "missing" for line in lines)
