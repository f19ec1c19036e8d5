"""Small plain-torch models for `cnncalc import` tests: one that uses many modules and functions
with a layer kind, and one per way an import fails. Factories take no arguments, as SOURCE's do.
Only torch is needed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Sink(nn.Module):
    """Modules and functional ops of many kinds, in one 2-D network (input 3×32×32)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        self.dw = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.gn = nn.GroupNorm(4, 16)
        self.act = nn.Hardswish()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.pad = nn.ReflectionPad2d((1, 2, 0, 1))
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.convt = nn.ConvTranspose2d(16, 8, 2, stride=2, bias=False)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.prelu = nn.PReLU(8)
        self.shuffle = nn.ChannelShuffle(2)
        self.same = nn.Conv2d(8, 8, (1, 3), padding="same", dilation=(1, 2))
        self.head = nn.Sequential(nn.AdaptiveMaxPool2d((2, None)), nn.Flatten(), nn.Dropout(0.1),
                                  nn.Linear(8 * 2 * 34, 10), nn.LayerNorm(10), nn.GELU("tanh"),
                                  nn.Linear(10, 5), nn.LogSoftmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)                                    # 16×32×32
        y = self.act(self.gn(self.dw(x)))                   # 16×16×16
        x = x + self.up(y)                                  # add
        a, b = x.chunk(2, dim=1)                            # two slices of 8
        x = torch.cat([b, a, b[:, :4]], 1)                  # 20 channels
        x = x[:, 2:18]                                      # 16
        gate = torch.sigmoid(F.adaptive_avg_pool2d(x, 1))   # 16×1×1
        x = F.leaky_relu(x * gate, 0.2)                     # broadcast mul
        x = self.pool(self.pad(x))                          # 16×17×17
        x = F.interpolate(x, size=(16, 16), mode="nearest")
        x = self.convt(x)                                   # 8×32×32
        x = self.prelu(self.inorm(x))
        x = self.shuffle(x).contiguous()
        x = F.pad(x, (1, 1, 2, 2))                          # 8×36×34
        x = x[..., 2:34, :]                                 # centre crop of the height: 8×32×34
        x = self.same(x)
        x = F.avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False) + \
            F.max_pool2d(x, 2, 2)                           # 8×16×17
        x = x.mean((2, 3), keepdim=True) * x                 # global average pool, mul
        x = F.interpolate(x, scale_factor=2)                 # 8×32×34
        return self.head(x)


class Shared(nn.Module):
    """One convolution called twice: its weights are shared."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv(x))


class Reused(nn.Module):
    """One ReLU module called three times (torchvision's Bottleneck does so)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 1)
        self.conv2 = nn.Conv2d(4, 4, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(self.relu(x)))))


class DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x


class Attention(nn.Module):
    """A matmul of two activations: no layer kind."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.matmul(y, y.transpose(-1, -2))


class Lstm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


class TwoInputs(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


def not_a_module() -> int:
    return 3


def raises() -> nn.Module:
    raise ValueError("no weights here")


def needs_width(width: int) -> nn.Module:
    return nn.Conv2d(3, width, 1)


NOT_CALLABLE = 5


def _channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision.models.shufflenetv2.channel_shuffle, as written there."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, num_channels, height, width)


def stochastic_depth(input: torch.Tensor, p: float, mode: str, training: bool = True):
    """Stands for torchvision.ops.stochastic_depth, which torchvision wraps for fx."""
    return input


stochastic_depth.__module__ = "torchvision.ops.stochastic_depth"
torch.fx.wrap("stochastic_depth")


class Shuffle(nn.Module):
    """ShuffleNetV2's unit at stride 1: chunk, a branch, concatenate, shuffle."""

    def __init__(self) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8),
                                    nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        out = torch.cat((x1, self.branch(x2)), dim=1)
        out = _channel_shuffle(out, 2)
        return out + stochastic_depth(out, 0.1, "row", self.training)


class HalfShuffle(nn.Module):
    """A view to groups that is not undone: no kind."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.size()
        return x.view(n, 2, c // 2, h, w).sum(1)


class Audio(nn.Module):
    """1-D: M5-like, on 1×L."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 80, stride=4)
        self.bn1 = nn.BatchNorm1d(8)
        self.pool = nn.MaxPool1d(4)
        self.conv2 = nn.Conv1d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = F.avg_pool1d(self.conv2(x), x.shape[-1])
        return self.fc(x.view(x.size(0), -1))


class Clip(nn.Module):
    """3-D: a C3D-like stem on 3×D×H×W."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool3d((1, 2, 2))
        self.norm = nn.InstanceNorm3d(8, affine=True, track_running_stats=True)
        self.up = nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear")
        self.head = nn.AdaptiveAvgPool3d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.pool(F.relu(self.conv(x))))
        return torch.flatten(self.head(self.up(x)), 1)


class Mlp(nn.Module):
    """A vector input."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.SiLU(),
                                 nn.Dropout(0.3), nn.Linear(32, 32), nn.Mish(),
                                 nn.LayerNorm(32, eps=1e-6), nn.Linear(32, 4), nn.Softmax(-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Segment(nn.Module):
    """Returns a dict, upsampled to the input's size as torchvision's segmentation heads do."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=4, padding=1), nn.ReLU6())
        self.classifier = nn.Conv2d(8, 3, 1)
        self.gamma = nn.Parameter(torch.ones(8, 1, 1))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        features = self.gamma * self.backbone(x)
        out = F.interpolate(self.classifier(features), size=size, mode="bilinear",
                            align_corners=False)
        return {"out": out}


class PlusOne(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) + 1


class WithAux(nn.Module):
    """An auxiliary head that only training runs (GoogLeNet's)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.aux = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.training:
            return x, self.aux(x)
        return x


class LastPool(nn.Module):
    """Channels last, then a pooling that means something else there."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x.permute(0, 2, 3, 1), 2).permute(0, 3, 1, 2)


class StdConv2d(nn.Conv2d):
    """A weight-standardised convolution (BiT's): F.conv2d of a weight computed in forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Standardised(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = StdConv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.norm = nn.GroupNorm(2, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(F.relu(self.norm(self.conv(x))), 1).flatten(1)
        return F.linear(x, self.fc.weight, self.fc.bias)


# factories (SOURCE's callables): the classes themselves
sink, shared, reused, data_dependent, attention = Sink, Shared, Reused, DataDependent, Attention
lstm, two_inputs, shuffle, half_shuffle = Lstm, TwoInputs, Shuffle, HalfShuffle
audio, clip, mlp, segment, plus_one = Audio, Clip, Mlp, Segment, PlusOne
with_aux = WithAux
last_pool = LastPool
standardised = Standardised
