"""AV-HuBERT's visual front end: a 3-D conv stem and a ResNet-18 trunk, in plain torch.

Module names follow facebookresearch/av_hubert (``frontend3D``, ``trunk.layerN.M.{conv1,bn1,relu1,
relu2,conv2,bn2,downsample}``) so that the official checkpoints load by key name.
"""

import torch
from torch import nn


def _activation(kind: str, channels: int) -> nn.Module:
    if kind == "prelu":
        return nn.PReLU(num_parameters=channels)
    if kind == "relu":
        return nn.ReLU()
    raise ValueError(f"resnet_relu_type must be prelu or relu, got {kind!r}")


class BasicBlock(nn.Module):
    """conv3x3-BN-act, conv3x3-BN, + residual, then act (the second act comes after the add)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, relu_type: str = "prelu"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = _activation(relu_type, planes)
        self.relu2 = _activation(relu_type, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + residual)


RESNET18_WIDTHS = (64, 128, 256, 512)


class ResNetTrunk(nn.Module):
    """ResNet-18 without stem and classifier: (N, w0, H, W) -> (N, w3).

    ``widths`` are the channels of the four stages; AV-HuBERT uses ResNet-18's (64, 128, 256, 512).
    Narrower stages only serve small models (the mini recipe, tests).
    """

    def __init__(self, relu_type: str = "prelu", widths=RESNET18_WIDTHS, blocks=(2, 2, 2, 2)):
        super().__init__()
        planes_in = widths[0]
        for i, (planes, n) in enumerate(zip(widths, blocks), start=1):
            stride = 1 if i == 1 else 2
            layer = [BasicBlock(planes_in, planes, stride, relu_type)]
            layer += [BasicBlock(planes, planes, 1, relu_type) for _ in range(n - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*layer))
            planes_in = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


class ResEncoder(nn.Module):
    """(B, 1, T, H, W) frames -> (B, T, widths[-1]); time is never downsampled (25 Hz in and out)."""

    def __init__(self, relu_type: str = "prelu", widths=RESNET18_WIDTHS):
        super().__init__()
        self.output_size = widths[-1]
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, widths[0], kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(widths[0]),
            _activation(relu_type, widths[0]),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.trunk = ResNetTrunk(relu_type, widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = self.frontend3D(x)  # (B, 64, T, H', W')
        t = x.shape[2]
        x = x.transpose(1, 2).reshape(b * t, x.shape[1], x.shape[3], x.shape[4])  # batch-major
        return self.trunk(x).view(b, t, -1)
