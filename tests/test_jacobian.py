"""diffgen_utils.jacobian: both methods (and the benchmark's) against a per-pixel autograd
reference, on tiny nets.

The BN gammas are redrawn from N(0, 1) (the paper's init clamps them to 0.025, which makes the
net's Jacobian ~1e-6 and J ~ I): the net's part of J is then O(1) and errors in it show.
"""
import contextlib
import importlib.util

import pytest
import torch
from torch import nn

from diffgen_utils import jacobian as jm
from diffgen_utils.config import REPO_ROOT
from diffgen_utils.models import BFCNN, UNet, denoise


def _setup(model, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, size, size, generator=g))  # BN running statistics
    model.eval()
    for m in model.modules():
        if hasattr(m, "gamma"):
            m.gamma.data = torch.randn(m.gamma.shape, generator=g)
    return model.double()


def _image(size, seed=1):
    return torch.rand(1, size, size, generator=torch.Generator().manual_seed(seed)).double()


CASES = {  # name: (model factory, image side)
    "unet1_8": (lambda: UNet(blocks=1, width=4), 8),
    "unet1_16": (lambda: UNet(blocks=1, width=4), 16),
    "unet2_12": (lambda: UNet(blocks=2, width=4), 12),
    "bfcnn_8": (lambda: BFCNN(width=4, depth=5), 8),
}


def reference_jacobian(model, y):
    """One torch.autograd.grad per output pixel: J[i, :] = d f_i / d y."""
    yv = y[None].clone().requires_grad_(True)
    out = denoise(model, yv).reshape(-1)
    rows = [
        torch.autograd.grad(out[i], yv, retain_graph=True)[0].reshape(-1)
        for i in range(out.numel())
    ]
    return torch.stack(rows)


@pytest.fixture(scope="module")
def cases():
    out = {}
    for i, (name, (make, size)) in enumerate(CASES.items()):
        torch.manual_seed(i)
        model = _setup(make(), size, seed=i)
        y = _image(size, seed=10 + i)
        out[name] = (model, y, reference_jacobian(model, y))
    return out


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("method", jm.METHODS)
def test_every_method_equals_the_autograd_reference(cases, name, method):
    model, y, ref = cases[name]
    J = jm.jacobian(model, y, method=method)
    assert J.shape == ref.shape and J.dtype == torch.float64
    assert (ref - torch.eye(len(ref), dtype=ref.dtype)).abs().max() > 0.05  # net part is O(1)
    torch.testing.assert_close(J, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["unet2_12", "bfcnn_8"])
@pytest.mark.parametrize("method,chunks", [("local", [1, 4, 9, 25, 144]),
                                           ("frozen", [1, 7, 64, 144])])
def test_chunking_does_not_change_the_result(cases, name, method, chunks):
    model, y, ref = cases[name]
    for chunk in chunks:
        torch.testing.assert_close(jm.jacobian(model, y, method=method, chunk=chunk), ref, rtol=0,
                                   atol=1e-10)


def test_float32_model_and_auto_method(cases):
    model, y, ref = cases["unet1_16"]
    m32 = UNet(blocks=1, width=4)
    m32.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    m32.eval()
    J = jm.jacobian(m32, y.float())  # auto
    assert J.dtype == torch.float32 and jm.resolve_method(m32) == "local"
    torch.testing.assert_close(J.double(), ref, rtol=0, atol=1e-5)
    assert jm.homogeneity_error(m32, y.float(), J) < 1e-4
    # dtype= computes in float64 on a cast copy, the model itself is untouched
    J64 = jm.jacobian(m32, y.float(), dtype=torch.float64)
    assert J64.dtype == torch.float64 and next(m32.parameters()).dtype == torch.float32
    torch.testing.assert_close(J64, ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_denoiser_equals_its_jacobian_times_input(cases, name):
    model, y, _ = cases[name]
    J = jm.jacobian(model, y)
    assert jm.homogeneity_error(model, y, J) < 1e-4
    fy = denoise(model, y[None]).reshape(-1)
    assert ((fy - J @ y.reshape(-1)).norm() / fy.norm()).item() < 1e-4


def test_input_shapes_and_train_mode_is_restored(cases):
    model, y, ref = cases["bfcnn_8"]
    model.train()
    try:
        for shape in [(8, 8), (1, 8, 8), (1, 1, 8, 8)]:
            torch.testing.assert_close(jm.jacobian(model, y.reshape(shape)), ref, rtol=0,
                                       atol=1e-10)
        assert model.training  # eval mode only during the computation
    finally:
        model.eval()
    with pytest.raises(ValueError):
        jm.jacobian(model, torch.rand(2, 8, 8).double())  # two images / channels
    with pytest.raises(ValueError):
        jm.jacobian(model, torch.rand(1, 1, 1, 8, 8).double())
    with pytest.raises(ValueError):
        jm.jacobian(model, y, method="nope")


# --- the ReLU masks must be frozen at y ------------------------------------------------------


def test_frozen_masks_matter_where_many_relus_are_off(cases, monkeypatch):
    """At y = -3 x most ReLUs are off. The frozen methods still match the reference, while the
    same network with unfrozen masks (all ReLUs on, i.e. removed) is far from it, and the
    built-in jvp check turns such a bug into an error."""
    model, x, _ = cases["unet1_16"]
    y = -3 * x
    ref = reference_jacobian(model, y)
    frozen = jm.FrozenReLUs(model)
    frozen.record(y[None])
    off = sum((m == 0).sum().item() for ms in frozen.masks.values() for m in ms)
    total = sum(m.numel() for ms in frozen.masks.values() for m in ms)
    assert off / total > 0.4
    for method in ("local", "frozen"):
        torch.testing.assert_close(jm.jacobian(model, y, method=method), ref, rtol=0, atol=1e-5)

    all_on = staticmethod(lambda module, pre: torch.ones_like(pre))
    monkeypatch.setattr(jm.FrozenReLUs, "_slopes", all_on)
    for method in ("local", "frozen"):
        wrong = jm.jacobian(model, y, method=method, check=False)
        assert (wrong - ref).abs().max() > 0.1
        with pytest.raises(RuntimeError, match="linearization"):
            jm.jacobian(model, y, method=method)


def test_masks_must_be_recorded_at_y_not_at_the_basis_vectors(cases, monkeypatch):
    """If the ReLUs stayed ReLUs during the basis pass (no freezing), J would be wrong."""
    model, y, ref = cases["unet1_8"]

    @contextlib.contextmanager
    def not_frozen(self):
        yield self.model

    monkeypatch.setattr(jm.FrozenReLUs, "linear", not_frozen)
    wrong = jm.jacobian(model, y, method="frozen", check=False)
    assert (wrong - ref).abs().max() > 0.05
    with pytest.raises(RuntimeError):
        jm.jacobian(model, y, method="frozen")


class FunctionalReLUNet(nn.Module):

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.b = nn.Conv2d(4, 1, 3, padding=1, bias=False)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def test_an_unknown_nonlinearity_raises_instead_of_a_wrong_jacobian():
    torch.manual_seed(0)
    model = FunctionalReLUNet().double().eval()
    y = _image(8) - 0.5
    assert jm.resolve_method(model) == "frozen"  # "local" does not know this model
    with pytest.raises(RuntimeError, match="linearization"):
        jm.jacobian(model, y)


@pytest.mark.parametrize("act", [lambda: nn.ReLU(inplace=True), lambda: nn.LeakyReLU(0.2)])
def test_biases_inplace_and_leaky_relus(act):
    """Biases do not enter J (the frozen map's offset is removed); inplace / leaky ReLUs work."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), act(), nn.Conv2d(6, 6, 3, padding=1),
                          act(), nn.Conv2d(6, 1, 3, padding=1)).double().eval()
    y = _image(8) - 0.5
    ref = reference_jacobian(model, y)
    for method in ("local", "frozen"):
        torch.testing.assert_close(jm.jacobian(model, y, method=method), ref, rtol=0, atol=1e-10)


# --- eigen, asymmetry, analyze ---------------------------------------------------------------


def test_eigen_is_sorted_and_reconstructs_the_symmetric_part(cases):
    _, _, J = cases["unet1_16"]
    vals, vecs = jm.eigen(J)
    assert vals.dtype == vecs.dtype == torch.float64
    assert (vals[:-1] >= vals[1:]).all()
    S = (J + J.T) / 2
    torch.testing.assert_close(vecs @ torch.diag(vals) @ vecs.T, S, rtol=0, atol=1e-10)
    torch.testing.assert_close(vecs.T @ vecs, torch.eye(len(J), dtype=torch.float64), rtol=0,
                               atol=1e-10)
    assert jm.effective_dimension(J) == pytest.approx(vals.sum().item(), rel=1e-10)


def test_asymmetry():
    A = torch.randn(20, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert jm.asymmetry(A + A.T) == 0.0
    assert jm.asymmetry(A - A.T) == pytest.approx(2.0)
    assert 0 < jm.asymmetry(A) < 2


def test_analyze_is_deterministic_and_consistent(cases):
    model, y, _ = cases["unet2_12"]
    x = y.clamp(0, 1)
    a, b = jm.analyze(model, x, sigma=0.1, seed=3), jm.analyze(model, x, sigma=0.1, seed=3)
    for field in ("y", "fy", "jacobian", "eigvals", "eigvecs", "coeffs"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    c = jm.analyze(model, x, sigma=0.1, seed=4)
    assert not torch.equal(a.y, c.y)
    assert a.method == "local" and a.shape == (12, 12)
    torch.testing.assert_close(
        a.y,
        x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=x.dtype))
    torch.testing.assert_close(a.fy, denoise(model, a.y[None])[0])
    torch.testing.assert_close(a.eigvecs @ a.coeffs, x.reshape(-1))  # <x, e_k> of the clean x
    assert a.effective_dim == pytest.approx(a.eigvals.sum().item(), rel=1e-9)
    assert a.homogeneity_error < 1e-4 and 0 <= a.asymmetry < 1
    torch.testing.assert_close(a.eigenimages([0, 5])[1], a.eigvecs[:, 5].reshape(12, 12))


# --- the benchmark's methods (benchmarks/jacobian.py) -----------------------------------------


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("jacobian_benchmark",
                                                  REPO_ROOT / "benchmarks" / "jacobian.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("method", ["loop", "vjp", "jvp", "autograd_batch", "local", "frozen"])
def test_the_benchmarks_methods_and_pilots_equal_the_reference(cases, bench, method):
    model, y, ref = cases["unet2_12"]
    chunk = None if method == "loop" else 13
    torch.testing.assert_close(bench.run_method(model, y, method, chunk), ref, rtol=0, atol=1e-10)
    part = slice(0, None, 3)
    pilot = bench.run_method(model, y, method, chunk, part=part)
    if method == "loop":
        torch.testing.assert_close(pilot, ref[part], rtol=0, atol=1e-10)
    else:  # the chunks the pilot ran hold J, the others zeros
        ran = pilot != 0
        assert 0 < ran.sum() < ran.numel()
        torch.testing.assert_close(pilot[ran], ref[ran], rtol=0, atol=1e-10)


# --- what the chapters read off an analysis --------------------------------------------------


def test_oriented_eigenvectors_and_negative_share(cases):
    model, y, _ = cases["unet1_8"]
    a = jm.analyze(model, y.clamp(0, 1), sigma=0.2, seed=0)
    ks = [0, 3, 7]
    e = jm.oriented(a, ks)
    assert e.shape == (3, 8, 8)
    assert ((e.reshape(3, -1) @ a.x.reshape(-1)) >= 0).all()
    torch.testing.assert_close(e.abs(), a.eigenimages(ks).abs())
    n, share = jm.negative_share(a)
    assert n == int((a.eigvals < 0).sum()) and 0 <= share <= 1


def test_energy_fraction():
    c = torch.tensor([3.0, -4.0, 0.0, 0.0])
    assert jm.energy_fraction(c, 1) == pytest.approx(9 / 25)
    assert jm.energy_fraction(c, 4) == pytest.approx(1.0)


def test_top_block_asymmetry_separates_kept_from_suppressed_directions():
    from types import SimpleNamespace
    d = 6
    q, _ = torch.linalg.qr(
        torch.randn(d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    J = q @ torch.diag(torch.tensor([1.0, 0.9, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)) @ q.T
    skew = torch.zeros(d, d, dtype=torch.float64)
    skew[4, 5], skew[5, 4] = 0.3, -0.3  # in the suppressed directions only
    J = J + q @ skew @ q.T
    a = SimpleNamespace(eigvecs=q, jacobian=J)
    assert jm.top_block_asymmetry(a, 2) == pytest.approx(0.0, abs=1e-12)
    assert jm.top_block_asymmetry(a, 6) > 0.2
