"""Jacobian analysis of a denoiser f(y) = y - net(y) at one image (Claims 2-4 of the paper).

A bias-free ReLU network in eval mode is a fixed piecewise-linear map: around y its Jacobian
J = grad f(y) is the linear map obtained by freezing every ReLU's on/off pattern at y, and
f(y) = J y (no additive constant). This module computes J (d x d, d = H*W), its symmetric
eigendecomposition, and the derived quantities of the paper.

Methods of `jacobian` (both give the same matrix up to float rounding; rows J[j, :] = df_j/dy):

* ``"local"`` (UNet, BFCNN, plain Sequential): the frozen network's *adjoint*, applied to tiles
  of output pixels as the batch, with every activation kept on a window around the tile (cropped
  to the image). In the adjoint pass the decoder comes first and its full-resolution layers only
  see a few pixels around the tile; only the encoder end of the pass is dense. About 3x fewer
  flops than any dense method at 20x20 to 80x80 (see ``_LocalAdjoint``). No autograd.
* ``"frozen"`` (the fallback for other models): record each ReLU's mask at y, then push the
  identity basis through the network, chunk by chunk as the batch, with every ReLU replaced by
  multiplication with its mask (eval-mode BN is a fixed per-channel scale). A plain batched
  forward pass without autograd: the columns of J. Works for any model whose only
  nonlinearities are nn.ReLU / nn.LeakyReLU modules; an affine offset (biases) is removed by
  subtracting the image of 0.

Both are verified after the fact: (I - J) v for a random v must equal ``torch.func.jvp`` of the
net, so a nonlinearity the hooks do not know (a functional relu, a max-pool, train-mode BN)
raises instead of returning a wrong J. ``"auto"`` picks "local" when the model is supported, else
"frozen". ``benchmarks/jacobian.py`` times both against the authors' per-pixel autograd loop
and the dense autodiff methods (vjp, jvp, batched autograd), which live there.

The chapters read an analysis (`analyze`) through the helpers at the end: eigenvectors signed
along the image, energy fractions, negative eigenvalues, asymmetry among the top eigenvectors.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from .models import BFCNN, BiasFreeBatchNorm, UNet, denoise

METHODS = ("local", "frozen")
# From benchmarks/jacobian.py (AMD EPYC, 1 torch thread, a training job on the other core):
# "local" took 0.42 s / 13.3 s / ~250 s (estimate) at 20x20 / 40x40 / 80x80 against 1.57 s /
# 31.8 s / ~590 s for the per-pixel loop (3.7x / 2.4x / 2.4x); every dense method (frozen, vjp,
# jvp, autograd_batch) was within 0.6-1.4x of the loop. On CUDA "local" is chosen for its ~3x
# fewer flops, not timed on a GPU yet. A model "local" does not support falls back to "frozen".
# Default chunk (basis vectors per batch; for "local" the tile area) per device type.
DEFAULT_CHUNK = {"cpu": {"local": 16, "frozen": 32}, "cuda": {"local": 256, "frozen": 1024}}
# Memory one chunk of "frozen" may spend on activations (caps its chunk).
FROZEN_MEMORY_BYTES = {"cpu": 512 * 2**20, "cuda": 8 * 2**30}


def default_chunk(method: str, device) -> int:
    kind = torch.device(device).type
    return DEFAULT_CHUNK.get(kind, DEFAULT_CHUNK["cpu"])[method]


def _starts(d: int, chunk: int, part: slice | None):
    """Chunk start indices; `part` (a slice) selects a subset (benchmark estimates)."""
    starts = list(range(0, d, chunk))
    return starts if part is None else starts[part]


# --------------------------------------------------------------------------------------------
# helpers


def _as_batch(y: torch.Tensor) -> torch.Tensor:
    """(H, W), (1, H, W) or (1, 1, H, W) -> (1, 1, H, W)."""
    if y.dim() == 2:
        y = y[None]
    if y.dim() == 3:
        y = y[None]
    if y.dim() != 4 or y.shape[:2] != (1, 1):
        raise ValueError(f"expected one grayscale image of shape (1, H, W), got {tuple(y.shape)}")
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
        self.recorded = False

    @staticmethod
    def _slopes(module: nn.Module, pre: torch.Tensor) -> torch.Tensor:
        on = pre > 0
        if isinstance(module, nn.LeakyReLU):
            slope = module.negative_slope
            return on.to(pre.dtype) * (1 - slope) + slope
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
        self.recorded = True

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
        if not self.recorded:
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


def _frozen_columns(model, y4, chunk, part=None):
    """Columns of J via the frozen-ReLU linear map: J e_i = e_i - (A e_i) with net ~ A v + b."""
    _, _, H, W = y4.shape
    d = H * W
    frozen = FrozenReLUs(model)
    with torch.no_grad():
        frozen.record(y4)
        if chunk is None:  # the device default, capped so ~4 live activations fit the budget
            per = 4 * max(frozen.max_activation, d) * y4.element_size()
            cap = FROZEN_MEMORY_BYTES.get(y4.device.type, 2**30) // per
            chunk = max(1, min(d, cap, default_chunk("frozen", y4.device)))
        J = torch.zeros(d, d, dtype=y4.dtype, device=y4.device)
        with frozen.linear() as run:
            offset = run(torch.zeros_like(y4))  # b: zero for a bias-free net
            for start in _starts(d, chunk, part):
                stop = min(d, start + chunk)
                e = _basis(start, stop, d, (1, H, W), y4.dtype, y4.device)
                A_e = (run(e) - offset).reshape(stop - start, d)
                J[:, start:stop] = (e.reshape(stop - start, d) - A_e).T
    return J


def _check_matvec(model, y4, J, method):
    """(I - J) v must equal the directional derivative of the net from torch.func.jvp."""
    g = torch.Generator().manual_seed(1234)
    v = torch.randn(y4.shape, generator=g, dtype=y4.dtype).to(y4.device)
    _, jvp = torch.func.jvp(model, (y4, ), (v, ))
    jvp = jvp.reshape(-1).detach()
    with torch.no_grad():
        ours = v.reshape(-1).double() - J.double() @ v.reshape(-1).double()
    # J = I - A is stored in J's dtype: its diagonal carries a rounding error ~eps relative to
    # ||v||, so the error is measured against ||A v|| + floor * ||v||.
    low = y4.dtype in (torch.float32, torch.float16, torch.bfloat16)
    tol, floor = (1e-3, 1e-3) if low else (1e-8, 1e-9)
    err = ((ours - jvp.double()).norm() / (jvp.norm() + floor * v.norm())).item()
    if not err < tol:
        raise RuntimeError(
            f"method={method!r}: the frozen-ReLU linearization does not match autodiff (relative "
            f"error {err:.2e} on a random direction): the model has a nonlinearity other than "
            f"nn.ReLU / nn.LeakyReLU modules (functional relu, max-pool, ...), which this module "
            f"cannot linearize; torch.func.jacrev of the denoiser can.")


# --------------------------------------------------------------------------------------------
# frozen-ReLU adjoint on local windows (UNet, BFCNN)
#
# Row j of A = grad net(y) is A^T e_j: the adjoint (transposed) linear network applied to e_j.
# In the adjoint pass the decoder comes first and its full-resolution layers only see a small
# window around pixel j (each 3x3 conv grows it by one pixel a side, pooling halves it), so a
# tile of output pixels is pushed through the adjoint network on a common window that is cropped
# to the image and only becomes the whole image deep in the network. Same matrix, fewer flops:
# with 4x4 tiles, 0.34x (40x40, 2 blocks) and 0.33x (80x80, 3 blocks) of the convolution flops of
# a dense pass; what is left is mostly the encoder end (dense) of the adjoint pass.


class _Win:
    """A batch of adjoint activations (n, C, h, w) on window rows oy.., cols ox.. of an
    Hl x Wl image; zero outside the window."""

    __slots__ = ("t", "oy", "ox", "H", "W")

    def __init__(self, t, oy, ox, H, W):
        self.t, self.oy, self.ox, self.H, self.W = t, oy, ox, H, W

    @property
    def h(self):
        return self.t.shape[-2]

    @property
    def w(self):
        return self.t.shape[-1]

    def crop(self, full: torch.Tensor) -> torch.Tensor:
        """The window of a full-image tensor (..., H, W)."""
        return full[..., self.oy:self.oy + self.h, self.ox:self.ox + self.w]


def _pad_to(win: _Win, oy, ox, h, w) -> torch.Tensor:
    """win's tensor embedded (zero-padded) in the larger window (oy, ox, h, w)."""
    top, left = win.oy - oy, win.ox - ox
    bottom, right = h - top - win.h, w - left - win.w
    if top == left == bottom == right == 0:
        return win.t
    return nn.functional.pad(win.t, (left, right, top, bottom))


def _conv_adjoint(win: _Win, weight_adj: torch.Tensor) -> _Win:
    """Adjoint of a 3x3 'same' convolution: a full correlation with the flipped, transposed
    kernel, cropped to the image (the window grows by one pixel on each side inside the image)."""
    top = 2 if win.oy > 0 else 1
    left = 2 if win.ox > 0 else 1
    bottom = 2 if win.oy + win.h < win.H else 1
    right = 2 if win.ox + win.w < win.W else 1
    if top == left == bottom == right == 1:
        t = nn.functional.conv2d(win.t, weight_adj, padding=1)
    else:
        t = nn.functional.conv2d(nn.functional.pad(win.t, (left, right, top, bottom)), weight_adj)
    return _Win(t, win.oy + 1 - top, win.ox + 1 - left, win.H, win.W)


def _add(a: _Win, b: _Win) -> _Win:
    oy, ox = min(a.oy, b.oy), min(a.ox, b.ox)
    h = max(a.oy + a.h, b.oy + b.h) - oy
    w = max(a.ox + a.w, b.ox + b.w) - ox
    return _Win(_pad_to(a, oy, ox, h, w) + _pad_to(b, oy, ox, h, w), oy, ox, a.H, a.W)


def _pool_adjoint(win: _Win) -> _Win:
    """Adjoint of 2x2 average pooling: each value spread over its 2x2 block, divided by 4."""
    t = win.t.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1) / 4
    return _Win(t, 2 * win.oy, 2 * win.ox, 2 * win.H, 2 * win.W)


def _upsample_adjoint(win: _Win, weight: torch.Tensor) -> _Win:
    """Adjoint of ConvTranspose2d(k=2, stride=2): conv2d(., weight, stride=2) on an even-aligned
    window; goes one level down (half resolution)."""
    oy, ox = win.oy - win.oy % 2, win.ox - win.ox % 2
    ey, ex = win.oy + win.h, win.ox + win.w
    h, w = ey + ey % 2 - oy, ex + ex % 2 - ox
    t = nn.functional.conv2d(_pad_to(win, oy, ox, h, w), weight, stride=2)
    return _Win(t, oy // 2, ox // 2, win.H // 2, win.W // 2)


class _LocalAdjoint:
    """The frozen adjoint network of a UNet / BFCNN / plain Sequential of supported layers."""

    def __init__(self, model: nn.Module, frozen: FrozenReLUs):
        self.model, self._bfbn = model, BiasFreeBatchNorm
        self.masks = {
            id(m): frozen.masks[i][0]
            for i, m in enumerate(frozen.modules) if len(frozen.masks[i]) == 1
        }
        self.seq = None
        if isinstance(model, UNet):
            self.kind = "unet"
            seqs = [*model.encoder, model.mid, *model.decoder]
        elif isinstance(model, BFCNN):
            self.kind, self.seq = "seq", model.net
            seqs = [self.seq]
        elif isinstance(model, nn.Sequential):
            self.kind, self.seq = "seq", model
            seqs = [self.seq]
        else:
            raise NotImplementedError(f"no local adjoint for {type(model).__name__}")
        self.ops = {id(s): self._compile(s) for s in seqs}
        if self.kind == "unet":
            for up in model.upsample:
                if (up.kernel_size, up.stride, up.padding, up.output_padding, up.groups,
                        up.dilation) != ((2, 2), (2, 2), (0, 0), (0, 0), 1, (1, 1)):
                    raise NotImplementedError("upsampling must be ConvTranspose2d(k=2, s=2)")
            if not (isinstance(model.pool, nn.AvgPool2d) and model.pool.kernel_size == 2
                    and model.pool.stride in (2, None) and model.pool.padding == 0):
                raise NotImplementedError("pooling must be AvgPool2d(2)")

    def _compile(self, seq: nn.Sequential):
        """Reversed list of adjoint ops ("conv", weight_adj) / ("scale", s) / ("mask", mask)."""
        ops = []
        for m in seq:
            if isinstance(m, nn.Conv2d):
                if (m.kernel_size, m.stride, m.padding, m.dilation,
                        m.groups) != ((3, 3), (1, 1), (1, 1),
                                      (1, 1), 1) or m.padding_mode != "zeros":
                    raise NotImplementedError(f"unsupported conv {m}")
                # the bias (if any) does not enter the Jacobian
                ops.append(("conv", m.weight.detach().transpose(0, 1).flip(2, 3).contiguous()))
            elif isinstance(m, self._bfbn):
                ops.append(("scale", (m.gamma / m.running_sd).detach()))
            elif isinstance(m, nn.BatchNorm2d):
                if m.training or not m.track_running_stats:
                    raise NotImplementedError("BatchNorm2d must use running statistics")
                s = torch.rsqrt(m.running_var + m.eps)
                if m.weight is not None:
                    s = s * m.weight.detach()
                ops.append(("scale", s.reshape(1, -1, 1, 1)))
            elif isinstance(m, (nn.ReLU, nn.LeakyReLU)):
                if id(m) not in self.masks:
                    raise NotImplementedError("a ReLU module is used more than once")
                ops.append(("mask", self.masks[id(m)]))
            elif isinstance(m, (nn.Identity, nn.Dropout)):
                continue
            else:
                raise NotImplementedError(f"unsupported layer {type(m).__name__}")
        return ops[::-1]

    def _seq(self, seq, win: _Win) -> _Win:
        for kind, p in self.ops[id(seq)]:
            if kind == "conv":
                win = _conv_adjoint(win, p)
            elif kind == "scale":
                win = _Win(win.t * p, win.oy, win.ox, win.H, win.W)
            else:
                win = _Win(win.t * win.crop(p), win.oy, win.ox, win.H, win.W)
        return win

    def __call__(self, win: _Win) -> _Win:
        """A^T applied to a window at full resolution (1 channel) -> window at full resolution."""
        m = self.model
        if self.kind == "seq":
            return self._seq(self.seq, win)
        skips = []
        for b in range(m.blocks):  # the decoder, in reverse order of the forward pass
            win = self._seq(m.decoder[b], win)
            c = m.upsample[b].out_channels
            skips.append(_Win(win.t[:, c:], win.oy, win.ox, win.H, win.W))
            up = _Win(win.t[:, :c], win.oy, win.ox, win.H, win.W)
            win = _upsample_adjoint(up, m.upsample[b].weight.detach())
        win = self._seq(m.mid, win)
        for b in reversed(range(m.blocks)):
            win = _add(_pool_adjoint(win), skips[b])
            win = self._seq(m.encoder[b], win)
        return win


def local_supported(model: nn.Module) -> bool:
    """True when method="local" can handle the model (UNet, BFCNN, Sequential of conv/BN/ReLU)."""
    try:
        frozen = FrozenReLUs(model)
        frozen.masks = {i: [None] for i in range(len(frozen.modules))}
        _LocalAdjoint(model, frozen)
        return True
    except NotImplementedError:
        return False


def _local_rows(model, y4, chunk, part=None):
    """Rows of J = I - A: tiles of output pixels through the frozen adjoint network."""
    _, _, H, W = y4.shape
    d = H * W
    frozen = FrozenReLUs(model)
    with torch.no_grad():
        frozen.record(y4)
        adjoint = _LocalAdjoint(model, frozen)
        t = max(1, int(round(math.sqrt(chunk or default_chunk("local", y4.device)))))
        J = torch.zeros(d, d, dtype=y4.dtype, device=y4.device)
        J3 = J.view(d, H, W)
        tiles = [(ty, tx) for ty in range(0, H, t) for tx in range(0, W, t)]
        for ty, tx in (tiles if part is None else tiles[part]):
            th, tw = min(t, H - ty), min(t, W - tx)
            n = th * tw
            k = torch.arange(n, device=y4.device)
            e = torch.zeros(n, 1, th, tw, dtype=y4.dtype, device=y4.device)
            e[k, 0, k // tw, k % tw] = 1
            g = adjoint(_Win(e, ty, tx, H, W))
            rows = (ty + k // tw) * W + tx + k % tw
            J3[rows, g.oy:g.oy + g.h, g.ox:g.ox + g.w] = -g.t[:, 0]
            J[rows, rows] += 1
    return J


# --------------------------------------------------------------------------------------------
# public API


def jacobian(model: nn.Module, y: torch.Tensor, chunk: int | None = None, method: str = "auto",
             dtype: torch.dtype | None = None, check: bool = True) -> torch.Tensor:
    """The d x d Jacobian of f(v) = v - model(v) at v = y, with J[i, j] = d f_i / d y_j.

    y: one image, (1, H, W) (also (H, W) or (1, 1, H, W)), moved to the model's device.
    chunk: basis vectors per batch (memory ~ chunk x activations of one image; for "local" the
        area of a square tile of output pixels); None = DEFAULT_CHUNK of the device type
        ("frozen": also capped by FROZEN_MEMORY_BYTES).
    method: "auto" ("local", or "frozen" for models "local" does not support) or one of
        METHODS.
    dtype: compute in this dtype (a cast copy of the model); default the model's dtype.
    check: verify (I - J) v against torch.func.jvp of the net for one random v (about the cost
        of three forward passes) and raise on a mismatch.
    The model is evaluated in eval mode (restored afterwards); TF32 is disabled meanwhile.
    Returns a (d, d) tensor of the compute dtype on the model's device.
    """
    model, y4 = _prepare(model, y, dtype)
    method = resolve_method(model, method)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose 'auto' or one of {METHODS}")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    with _eval_mode(model), _no_tf32():
        J = _FUNCS[method](model, y4, chunk)
        if check:
            _check_matvec(model, y4, J, method)
    return J


_FUNCS = {"local": _local_rows, "frozen": _frozen_columns}


def resolve_method(model: nn.Module, method: str = "auto") -> str:
    """The method "auto" stands for with this model."""
    if method != "auto":
        return method
    return "local" if local_supported(model) else "frozen"


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
    method: str = "local"  # the method that computed the Jacobian

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.x.shape[-2:])

    def eigenimages(self, ks) -> torch.Tensor:
        """Eigenvectors ks as a (len(ks), H, W) stack."""
        return self.eigvecs[:, list(ks)].T.reshape(len(list(ks)), *self.shape)


def analyze(model: nn.Module, x: torch.Tensor, sigma: float, seed: int = 0, method: str = "auto",
            chunk: int | None = None, dtype: torch.dtype | None = None) -> JacobianAnalysis:
    """Noise x (1, H, W) with sigma * N(0, I) from a CPU generator seeded `seed`, take the Jacobian
    of the denoiser at y and its eigendecomposition. Deterministic given (model, x, sigma, seed)."""
    x = _as_batch(x)[0].detach().cpu()
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    y = x + sigma * z
    mdtype, device = _model_dtype_device(model)
    method = resolve_method(model, method)
    J = jacobian(model, y, chunk=chunk, method=method, dtype=dtype)
    with _eval_mode(model), torch.no_grad():
        fy = denoise(model, y[None].to(device=device, dtype=mdtype))[0].cpu()
    vals, vecs = eigen(J)
    vals, vecs, Jc = vals.cpu(), vecs.cpu(), J.cpu()
    return JacobianAnalysis(x=x, y=y, fy=fy, sigma=float(sigma), seed=seed, jacobian=Jc,
                            eigvals=vals, eigvecs=vecs, coeffs=coefficients(x, vecs),
                            effective_dim=effective_dimension(Jc), asymmetry=asymmetry(Jc),
                            homogeneity_error=homogeneity_error(model, y, J), method=method)


# --------------------------------------------------------------------------------------------
# what the chapters read off an analysis


def eigenvalues(a: JacobianAnalysis | None) -> torch.Tensor | None:
    """The eigenvalues of an analysis; None for no analysis (a model a profile does not ship)."""
    return None if a is None else a.eigvals


def oriented(a: JacobianAnalysis, ks) -> torch.Tensor:
    """Eigenvectors ks as images (len(ks), H, W), each signed so that <x, e_k> >= 0."""
    ks = list(ks)
    signs = torch.where(a.coeffs[ks] < 0, -1.0, 1.0).to(a.eigvecs.dtype)
    return a.eigenimages(ks) * signs[:, None, None]


def energy_fraction(coeffs: torch.Tensor, m: int) -> float:
    """Fraction of ||x||^2 carried by the first m coefficients of x in an orthonormal basis."""
    c2 = coeffs.double()**2
    return (c2[:m].sum() / c2.sum()).item()


def negative_share(a: JacobianAnalysis) -> tuple[int, float]:
    """Number of negative eigenvalues and the share of ||x||^2 on their eigenvectors."""
    neg = a.eigvals < 0
    c2 = a.coeffs.double()**2
    return int(neg.sum()), (c2[neg].sum() / c2.sum()).item()


def top_block_asymmetry(a: JacobianAnalysis, m: int) -> float:
    """||B - B^T||_F / ||B||_F for B = E_m^T J E_m, J restricted to its top-m eigenvectors (of the
    symmetric part): how symmetric the denoiser is in the directions it keeps. `a.asymmetry` is
    the same over all d directions, where the many suppressed ones can dominate."""
    e = a.eigvecs[:, :m].double()
    block = e.T @ a.jacobian.double() @ e
    return ((block - block.T).norm() / block.norm().clamp_min(1e-300)).item()
