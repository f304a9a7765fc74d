"""Jacobian analysis of a denoiser f(y) = y - net(y) at one image (Claims 2-4 of the paper).

A bias-free ReLU network in eval mode is a fixed piecewise-linear map: around y its Jacobian
J = grad f(y) is the linear map obtained by freezing every ReLU's on/off pattern at y, and
f(y) = J y (no additive constant). This module computes J (d x d, d = H*W), its symmetric
eigendecomposition, and the derived quantities of the paper.

Methods of `jacobian` (all give the same matrix up to float rounding):

* ``"frozen"`` (default): record each ReLU's mask at y, then push the identity basis through the
  network, chunk by chunk as the batch, with every ReLU replaced by multiplication with its mask
  (and eval-mode BN a fixed per-channel scale). A plain batched forward pass without autograd:
  the columns of J. An affine offset (a net with biases) is removed by subtracting the image of 0,
  and a random directional derivative is checked against ``torch.func.jvp``, so a nonlinearity the
  hooks do not know (e.g. a functional relu or max-pool) raises instead of returning a wrong J.
* ``"vjp"``: ``torch.func.vmap`` over ``torch.func.vjp`` on chunks of basis vectors (rows of J).
* ``"jacrev"``: ``torch.func.jacrev(..., chunk_size=chunk)`` (the same computation, one call).
* ``"jvp"``: ``vmap`` over forward-mode ``torch.func.jvp`` (columns of J).
* ``"autograd_batch"``: replicate y ``chunk`` times (BN does not mix the batch in eval mode),
  one forward, one ``torch.autograd.grad`` with the basis chunk as grad_outputs (rows of J).
* ``"loop"``: one ``torch.autograd.grad`` per output pixel (the authors' code; the reference).

``benchmarks/jacobian.py`` times them; ``"auto"`` picks ``DEFAULT_METHOD[device type]``.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from .models import denoise

METHODS = ("frozen", "vjp", "jacrev", "jvp", "autograd_batch", "loop")
# Chosen from benchmarks/jacobian.py (see its docstring for the measured table).
DEFAULT_METHOD = {"cpu": "frozen", "cuda": "frozen"}
# Default chunk (batch of basis vectors) per method; "frozen" sizes its chunk from memory.
DEFAULT_CHUNK = {"vjp": 64, "jacrev": 64, "jvp": 64, "autograd_batch": 64}
# Memory the frozen method may spend on activations of one chunk.
FROZEN_MEMORY_BYTES = {"cpu": 512 * 2**20, "cuda": 8 * 2**30}


# --------------------------------------------------------------------------------------------
# helpers


def _as_batch(y: torch.Tensor) -> torch.Tensor:
    """(H, W), (1, H, W) or (1, 1, H, W) -> (1, 1, H, W)."""
    if y.dim() == 2:
        y = y[None]
    if y.dim() == 3:
        y = y[None]
    if y.dim() != 4 or y.shape[0] != 1:
        raise ValueError(f"expected one image of shape (1, H, W), got {tuple(y.shape)}")
    return y


def _model_dtype_device(model: nn.Module):
    p = next(model.parameters())
    return p.dtype, p.device


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _no_tf32():
    """Exact fp32 convolutions / matmuls on GPUs (TF32 would cost ~3 digits of J)."""
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


def _basis(start: int, stop: int, d: int, shape, dtype, device) -> torch.Tensor:
    """Identity rows start..stop-1, reshaped to a batch of images (n, *shape)."""
    e = torch.zeros(stop - start, d, dtype=dtype, device=device)
    idx = torch.arange(stop - start, device=device)
    e[idx, start + idx] = 1
    return e.reshape(stop - start, *shape)


def _prepare(model: nn.Module, y: torch.Tensor, dtype):
    """Model (a cast copy if dtype differs) and y as (1, 1, H, W) on the model's device."""
    mdtype, device = _model_dtype_device(model)
    if dtype is not None and dtype != mdtype:
        model = copy.deepcopy(model).to(dtype)
        mdtype = dtype
    return model, _as_batch(y).detach().to(device=device, dtype=mdtype)


# --------------------------------------------------------------------------------------------
# the frozen-ReLU linearization


class FrozenReLUs:
    """Records the ReLU (and LeakyReLU) on/off pattern of a model at y, then replays it.

    >>> frozen = FrozenReLUs(model); frozen.record(y)
    >>> with frozen.linear() as run:  # every ReLU is now `x * mask_at_y`
    ...     Av = run(v)                # v a batch; BN must be in eval mode
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.modules = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
        self.masks: dict[int, list[torch.Tensor]] = {}
        self.max_activation = 0  # largest activation numel seen while recording

    @staticmethod
    def _slopes(module: nn.Module, pre: torch.Tensor) -> torch.Tensor:
        on = pre > 0
        if isinstance(module, nn.LeakyReLU):
            return torch.where(on, 1.0, module.negative_slope).to(pre.dtype)
        return on.to(pre.dtype)

    @contextlib.contextmanager
    def _override(self, make_forward):
        """Temporarily replace each module's forward (an instance attribute shadows the method;
        unlike an output hook this also works for inplace ReLUs)."""
        try:
            for i, m in enumerate(self.modules):
                m.forward = make_forward(i, m, m.__class__.forward.__get__(m))
            yield self
        finally:
            for m in self.modules:
                m.__dict__.pop("forward", None)

    @torch.no_grad()
    def record(self, y: torch.Tensor) -> torch.Tensor:
        """Run the model at y (batch 1), store the masks; returns model(y)."""
        self.masks = {i: [] for i in range(len(self.modules))}
        self.max_activation = 0

        def make(i, m, orig):
            def forward(x):
                self.masks[i].append(self._slopes(m, x))
                self.max_activation = max(self.max_activation, x.numel())
                return orig(x)
            return forward

        with self._override(make):
            return self.model(y)

    @contextlib.contextmanager
    def linear(self):
        """Within the context, `run(v)` applies the frozen (affine) map at the recorded y to a
        batch v: the model with every ReLU replaced by `x * mask` (masks broadcast over v)."""
        if not self.masks:
            raise RuntimeError("call record(y) first")
        calls = {i: 0 for i in self.masks}

        def make(i, m, orig):
            def forward(x):
                k = calls[i]
                calls[i] += 1
                if k >= len(self.masks[i]):
                    raise RuntimeError("a ReLU was called more often than when recording")
                return x * self.masks[i][k]
            return forward

        def run(v):
            for i in calls:
                calls[i] = 0
            return self.model(v)

        with self._override(make):
            yield run

    def apply(self, v: torch.Tensor) -> torch.Tensor:
        """The frozen affine map applied to a batch v (one forward)."""
        with self.linear() as run:
            return run(v)


def _frozen_columns(model, y4, chunk, check):
    """Columns of J via the frozen-ReLU linear map: J e_i = e_i - (A e_i) with net ~ A v + b."""
    _, _, H, W = y4.shape
    d = H * W
    frozen = FrozenReLUs(model)
    with torch.no_grad():
        net_y = frozen.record(y4)
        if chunk is None:  # ~4 live activations of the largest size per basis vector
            per = 4 * max(frozen.max_activation, d) * y4.element_size()
            chunk = max(1, min(d, FROZEN_MEMORY_BYTES.get(y4.device.type, 2**30) // per))
        J = torch.empty(d, d, dtype=y4.dtype, device=y4.device)
        offset = frozen.apply(torch.zeros_like(y4))  # b: zero for a bias-free net
        with frozen.linear() as run:
            for start in range(0, d, chunk):
                stop = min(d, start + chunk)
                e = _basis(start, stop, d, (1, H, W), y4.dtype, y4.device)
                A_e = (run(e) - offset).reshape(stop - start, d)
                J[:, start:stop] = (e.reshape(stop - start, d) - A_e).T
    if check:
        _check_linearization(model, y4, frozen, offset, net_y)
    return J


def _check_linearization(model, y4, frozen, offset, net_y):
    """The frozen map must reproduce net(y) and a directional derivative from autodiff."""
    g = torch.Generator().manual_seed(1234)
    v = torch.randn(y4.shape, generator=g, dtype=y4.dtype).to(y4.device)
    _, jvp = torch.func.jvp(model, (y4,), (v,))
    with torch.no_grad():
        lin_v = frozen.apply(v) - offset
        lin_y = frozen.apply(y4)
    tol = 1e-3 if y4.dtype in (torch.float32, torch.float16, torch.bfloat16) else 1e-8
    err_v = ((lin_v - jvp).norm() / jvp.norm().clamp_min(1e-30)).item()
    err_y = ((lin_y - net_y).norm() / net_y.norm().clamp_min(1e-30)).item()
    if not (err_v < tol and err_y < tol):
        raise RuntimeError(
            f"the frozen-ReLU linearization does not match autodiff (relative errors "
            f"{err_v:.2e} on a random direction, {err_y:.2e} at y): the model has a "
            f"nonlinearity other than nn.ReLU / nn.LeakyReLU modules (functional relu, max-pool, "
            f"train-mode BN...). Use method='vjp'.")


# --------------------------------------------------------------------------------------------
# autodiff methods


def _vjp_rows(model, y4, chunk):
    _, _, H, W = y4.shape
    d = H * W
    f = lambda v: denoise(model, v)
    _, vjp_fn = torch.func.vjp(f, y4)
    rows = torch.func.vmap(lambda u: vjp_fn(u)[0])
    J = torch.empty(d, d, dtype=y4.dtype, device=y4.device)
    for start in range(0, d, chunk):
        stop = min(d, start + chunk)
        e = _basis(start, stop, d, (1, 1, H, W), y4.dtype, y4.device)
        J[start:stop] = rows(e).reshape(stop - start, d).detach()
    return J


def _jacrev(model, y4, chunk):
    d = y4.numel()
    J = torch.func.jacrev(lambda v: denoise(model, v), chunk_size=chunk)(y4)
    return J.reshape(d, d).detach()


def _jvp_columns(model, y4, chunk):
    _, _, H, W = y4.shape
    d = H * W
    f = lambda v: denoise(model, v)
    cols = torch.func.vmap(lambda u: torch.func.jvp(f, (y4,), (u,))[1])
    J = torch.empty(d, d, dtype=y4.dtype, device=y4.device)
    for start in range(0, d, chunk):
        stop = min(d, start + chunk)
        e = _basis(start, stop, d, (1, 1, H, W), y4.dtype, y4.device)
        J[:, start:stop] = cols(e).reshape(stop - start, d).T.detach()
    return J


def _autograd_batch_rows(model, y4, chunk):
    _, _, H, W = y4.shape
    d = H * W
    J = torch.empty(d, d, dtype=y4.dtype, device=y4.device)
    for start in range(0, d, chunk):
        stop = min(d, start + chunk)
        yb = y4.expand(stop - start, 1, H, W).clone().requires_grad_(True)
        out = denoise(model, yb)
        e = _basis(start, stop, d, (1, H, W), y4.dtype, y4.device)
        (g,) = torch.autograd.grad(out, yb, grad_outputs=e)
        J[start:stop] = g.reshape(stop - start, d)
    return J


def jacobian_rows_loop(model: nn.Module, y: torch.Tensor, rows=None,
                       dtype: torch.dtype | None = None) -> torch.Tensor:
    """Rows of J by one torch.autograd.grad per output pixel (the authors' loop; reference).

    rows: iterable of output-pixel indices (default: all d); returns (len(rows), d).
    """
    model, y4 = _prepare(model, y, dtype)
    d = y4.numel()
    rows = range(d) if rows is None else list(rows)
    with _eval_mode(model), _no_tf32():
        yv = y4.clone().requires_grad_(True)
        out = denoise(model, yv).reshape(-1)
        J = torch.empty(len(rows), d, dtype=y4.dtype, device=y4.device)
        for k, j in enumerate(rows):
            (g,) = torch.autograd.grad(out[j], yv, retain_graph=True)
            J[k] = g.reshape(-1)
    return J


# --------------------------------------------------------------------------------------------
# public API


def jacobian(model: nn.Module, y: torch.Tensor, chunk: int | None = None, method: str = "auto",
             dtype: torch.dtype | None = None, check: bool = True) -> torch.Tensor:
    """The d x d Jacobian of f(v) = v - model(v) at v = y, with J[i, j] = d f_i / d y_j.

    y: one image, (1, H, W) (also (H, W) or (1, 1, H, W)), moved to the model's device.
    chunk: basis vectors per batch (memory ~ chunk x activations of one image); None = a default
        per method ("frozen": sized to FROZEN_MEMORY_BYTES).
    method: "auto" (DEFAULT_METHOD of the device type) or one of METHODS.
    dtype: compute in this dtype (a cast copy of the model); default the model's dtype.
    check: for "frozen", verify the linearization against one torch.func.jvp.
    The model is evaluated in eval mode (restored afterwards); TF32 is disabled meanwhile.
    Returns a (d, d) tensor of the compute dtype on the model's device.
    """
    model, y4 = _prepare(model, y, dtype)
    if method == "auto":
        method = DEFAULT_METHOD.get(y4.device.type, "frozen")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose 'auto' or one of {METHODS}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if method == "loop":
        return jacobian_rows_loop(model, y4)
    with _eval_mode(model), _no_tf32():
        if method == "frozen":
            return _frozen_columns(model, y4, chunk, check)
        chunk = chunk or DEFAULT_CHUNK[method]
        if method == "vjp":
            return _vjp_rows(model, y4, chunk)
        if method == "jacrev":
            return _jacrev(model, y4, chunk)
        if method == "jvp":
            return _jvp_columns(model, y4, chunk)
        return _autograd_batch_rows(model, y4, chunk)


def symmetric_part(J: torch.Tensor) -> torch.Tensor:
    J = J.double()
    return (J + J.T) / 2


def eigen(J: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and eigenvectors (columns e_k) of (J + J^T)/2, in float64."""
    vals, vecs = torch.linalg.eigh(symmetric_part(J))
    return vals.flip(0), vecs.flip(1)


def effective_dimension(J: torch.Tensor) -> float:
    """tr J = sum_k lambda_k: the paper's effective dimensionality of the denoiser at y."""
    return J.double().diagonal().sum().item()


def asymmetry(J: torch.Tensor) -> float:
    """||J - J^T||_F / ||J||_F (0 for the Jacobian of a gradient, e.g. the optimal denoiser)."""
    J = J.double()
    return ((J - J.T).norm() / J.norm().clamp_min(1e-300)).item()


def homogeneity_error(model: nn.Module, y: torch.Tensor, J: torch.Tensor) -> float:
    """||f(y) - J y|| / ||f(y)||: 0 for a bias-free net, f(y) = grad f(y) . y."""
    _, device = _model_dtype_device(model)
    y4 = _as_batch(y).to(device)
    with _eval_mode(model), torch.no_grad():
        fy = denoise(model, y4.to(_model_dtype_device(model)[0])).reshape(-1).double()
    Jy = J.double().to(device) @ y4.reshape(-1).double()
    return ((fy - Jy).norm() / fy.norm().clamp_min(1e-300)).item()


def coefficients(x: torch.Tensor, eigvecs: torch.Tensor) -> torch.Tensor:
    """<x, e_k> for every eigenvector column e_k (x any shape with d elements)."""
    return eigvecs.T @ x.reshape(-1).to(eigvecs)


@dataclass
class JacobianAnalysis:
    """Everything the chapters plot about one denoiser at one noisy image y = x + sigma z.

    Tensors are on the CPU; eigvals descending; eigvecs columns (d, d) in float64.
    """

    x: torch.Tensor  # clean image (1, H, W)
    y: torch.Tensor  # noisy image (1, H, W)
    fy: torch.Tensor  # denoised f(y) (1, H, W)
    sigma: float
    seed: int
    jacobian: torch.Tensor  # (d, d), J[i, j] = d f_i / d y_j
    eigvals: torch.Tensor  # (d,) descending, of the symmetric part
    eigvecs: torch.Tensor  # (d, d) columns
    coeffs: torch.Tensor  # <x, e_k>
    effective_dim: float  # tr J
    asymmetry: float  # ||J - J^T||_F / ||J||_F
    homogeneity_error: float  # ||f(y) - J y|| / ||f(y)||
    method: str = "auto"

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.x.shape[-2:])

    def eigenvector(self, k: int) -> torch.Tensor:
        """Eigenvector k as an (H, W) image."""
        return self.eigvecs[:, k].reshape(self.shape)

    def eigenimages(self, ks) -> torch.Tensor:
        """Eigenvectors ks as a (len(ks), H, W) stack."""
        return self.eigvecs[:, list(ks)].T.reshape(len(list(ks)), *self.shape)

    def noisy_coeffs(self) -> torch.Tensor:
        """<y, e_k>."""
        return coefficients(self.y, self.eigvecs)


def analyze(model: nn.Module, x: torch.Tensor, sigma: float, seed: int = 0,
            method: str = "auto", chunk: int | None = None,
            dtype: torch.dtype | None = None) -> JacobianAnalysis:
    """Noise x (1, H, W) with sigma * N(0, I) from a CPU generator seeded `seed`, take the Jacobian
    of the denoiser at y and its eigendecomposition. Deterministic given (model, x, sigma, seed)."""
    x = _as_batch(x)[0].detach().cpu()
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    y = x + sigma * z
    mdtype, device = _model_dtype_device(model)
    J = jacobian(model, y, chunk=chunk, method=method, dtype=dtype)
    with _eval_mode(model), torch.no_grad():
        fy = denoise(model, y[None].to(device=device, dtype=mdtype))[0].cpu()
    vals, vecs = eigen(J)
    vals, vecs, Jc = vals.cpu(), vecs.cpu(), J.cpu()
    return JacobianAnalysis(
        x=x, y=y, fy=fy, sigma=float(sigma), seed=seed, jacobian=Jc, eigvals=vals, eigvecs=vecs,
        coeffs=coefficients(x, vecs), effective_dim=effective_dimension(Jc),
        asymmetry=asymmetry(Jc), homogeneity_error=homogeneity_error(model, y, J),
        method=method)
