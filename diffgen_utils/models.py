"""Bias-free networks of the paper: BF batch norm, the UNet (1-4 blocks) and the 21-layer BF-CNN.

Every network predicts the *noise* in y = x + z; the denoiser is f(y) = y - net(y) (`denoise`).
No layer adds a constant, so f(a*y) = a*f(y) for a > 0 and f(y) = grad f(y) . y.
"""
from __future__ import annotations

import torch
from torch import nn

from . import distributed
from .config import TrainConfig


class BiasFreeBatchNorm(nn.Module):
    """Divides by the batch standard deviation over (N, H, W), multiplies by a learned gamma.

    No mean subtraction and no shift. The running sd (momentum 0.1) is used in eval mode.
    When several processes share the batch (torchrun), the sd in training mode is that of the
    whole global batch, not of the rank's slice: see `batch_variance`.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        gamma = (torch.randn(1, channels, 1, 1) * (2 / 9 / 64)).clamp(-0.025, 0.025)
        self.gamma = nn.Parameter(gamma)
        self.register_buffer("running_sd", torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:  # statistics in fp32, also under bf16 autocast
            sd = torch.sqrt(batch_variance(x.float()) + self.eps)
            with torch.no_grad():
                self.running_sd.lerp_(sd, self.momentum)
        else:
            sd = self.running_sd
        return x / sd.to(x.dtype) * self.gamma


def batch_variance(x: torch.Tensor) -> torch.Tensor:
    """Per-channel variance (biased, as the paper's BN) over (N, H, W) of the global batch.

    In one process it is `x.var`. When the batch is shared by several processes, two
    differentiable all-reduces make it the global batch's: of the sums and counts (the mean),
    then of the squared deviations from that mean (two passes, as `x.var`, since
    E[x^2] - mean^2 would cancel digits). The gradients therefore reach every rank's
    slice as in one process, and the running sd is the same on every rank and equal to a
    single process's (up to float rounding).
    """
    if distributed.world_size() == 1:
        return x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    sums = distributed.sum_over_ranks(
        torch.cat([x.sum(dim=(0, 2, 3)),
                   x.new_tensor([x.numel() / x.shape[1]])]))
    count = sums[-1]
    mean = (sums[:-1] / count).view(1, -1, 1, 1)
    return distributed.sum_over_ranks((x - mean).pow(2).sum(dim=(0, 2, 3), keepdim=True)) / count


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [conv3x3(c_in, c_out), BiasFreeBatchNorm(c_out), nn.ReLU()]


class UNet(nn.Module):
    """The paper's bias-free UNet: `blocks` encoder blocks, a mid block, `blocks` decoder blocks.

    Encoder block b: two 3x3 convs (block 0 has no BN after its first conv), then 2x2 average
    pooling; channels double per level. Decoder block b: 2x2 transposed-conv upsampling,
    concatenation with the skip, two 3x3 convs; the last conv of decoder block 0 maps to one
    channel with no BN or ReLU.
    """

    def __init__(self, blocks: int = 3, width: int = 64, channels: int = 1):
        super().__init__()
        if not 1 <= blocks <= 4:
            raise ValueError(f"UNet blocks must be 1..4, got {blocks}")
        self.blocks = blocks
        ch = [width * 2**b for b in range(blocks + 1)]
        self.encoder = nn.ModuleList()
        for b in range(blocks):
            if b == 0:
                layers = [conv3x3(channels, ch[0]), nn.ReLU(), *conv_bn_relu(ch[0], ch[0])]
            else:
                layers = [*conv_bn_relu(ch[b - 1], ch[b]), *conv_bn_relu(ch[b], ch[b])]
            self.encoder.append(nn.Sequential(*layers))
        self.mid = nn.Sequential(*conv_bn_relu(ch[blocks - 1], ch[blocks]),
                                 *conv_bn_relu(ch[blocks], ch[blocks]))
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(ch[b + 1], ch[b], 2, stride=2, bias=False) for b in range(blocks))
        self.decoder = nn.ModuleList()
        for b in range(blocks):
            if b == 0:
                layers = [*conv_bn_relu(2 * ch[0], ch[0]), conv3x3(ch[0], channels)]
            else:
                layers = [*conv_bn_relu(2 * ch[b], ch[b]), *conv_bn_relu(ch[b], ch[b])]
            self.decoder.append(nn.Sequential(*layers))
        self.pool = nn.AvgPool2d(2)
        init_weights(self)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        if y.shape[-1] % 2**self.blocks or y.shape[-2] % 2**self.blocks:
            raise ValueError(f"a {self.blocks}-block UNet needs sides divisible by "
                             f"{2**self.blocks}, got {tuple(y.shape[-2:])}")
        skips = []
        x = y
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.mid(x)
        for b in reversed(range(self.blocks)):
            x = torch.cat([self.upsample[b](x), skips[b]], dim=1)
            x = self.decoder[b](x)
        return x


class BFCNN(nn.Module):
    """21 layers: conv+ReLU, 19 x (conv, BF batch norm, ReLU), conv. No pooling."""

    def __init__(self, width: int = 64, depth: int = 21, channels: int = 1):
        super().__init__()
        layers = [conv3x3(channels, width), nn.ReLU()]
        for _ in range(depth - 2):
            layers += conv_bn_relu(width, width)
        layers.append(conv3x3(width, channels))
        self.net = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


def init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")


def build_model(config: TrainConfig) -> nn.Module:
    if config.arch == "unet":
        return UNet(blocks=config.blocks, width=config.width)
    if config.arch == "bfcnn":
        return BFCNN(width=config.width)
    raise ValueError(f"unknown arch {config.arch!r}; use 'unet' or 'bfcnn'")


def denoise(model: nn.Module, y: torch.Tensor) -> torch.Tensor:
    """The denoiser f(y) = y - net(y) of a noise-predicting network."""
    return y - model(y)


def model_device(model: nn.Module) -> torch.device:
    """Where a model's tensors live: its first parameter's (or buffer's) device, else the CPU."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def receptive_field(config: TrainConfig) -> int:
    """Side of the square of input pixels that one central output pixel depends on, found by
    backpropagation through a float64 copy of the network whose every ReLU is active (positive
    weights, unit BN scales, positive input), so that no path is cut or underflows."""
    model = build_model(config).double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(1.0) if name.endswith("gamma") else p.abs_()
    side = 2**config.blocks * 32 if config.arch == "unet" else 96
    y = torch.ones(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    model(y)[0, 0, side // 2, side // 2].backward()
    rows = torch.nonzero(y.grad[0, 0].abs().sum(dim=1)).flatten()
    return int(rows.max() - rows.min() + 1)
