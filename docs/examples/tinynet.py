"""A small residual network in plain torch, for docs/import.md: `cnncalc import
docs/examples/tinynet.py:tinynet --input 3x32x32`. The other factories show what import refuses."""

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Two 3×3 convolutions and an identity shortcut, one ReLU module called twice."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class TinyNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(Block(16), Block(16))
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def tinynet() -> nn.Module:
    return TinyNet()


class Gram(TinyNet):
    """A Gram matrix of the features (style losses): a matmul of two activations."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1(self.stem(x)).flatten(2)
        return torch.matmul(x, x.transpose(1, 2))


class Tied(TinyNet):
    """The first block run twice: its weights are shared."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer1[0](self.layer1[0](self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class EarlyExit(TinyNet):
    """Stops when the stem's output is confident enough: control flow on tensor values."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if x.mean() > 0.5:
            return x
        return self.layer1(x)


gram, tied, early_exit = Gram, Tied, EarlyExit  # a class is a factory too
