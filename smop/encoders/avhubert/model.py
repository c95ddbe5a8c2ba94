"""The AV-HuBERT network (video path), built from a resolved config dict."""

from typing import Optional

import torch
from torch import nn

from smop.encoders.avhubert.resnet import RESNET18_WIDTHS, ResEncoder
from smop.encoders.avhubert.transformer import TransformerEncoder
from smop.utils.masks import make_pad_mask


class VideoFeatureExtractor(nn.Module):
    def __init__(self, dim: int, relu_type: str, widths=RESNET18_WIDTHS):
        super().__init__()
        self.resnet = ResEncoder(relu_type, widths)
        self.proj = nn.Linear(self.resnet.output_size, dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) -> (B, T, D)."""
        x = self.resnet(video.unsqueeze(1).to(self.resnet.frontend3D[0].weight.dtype))
        return self.proj(x.to(self.proj.weight.dtype))


class AVHubertNet(nn.Module):
    """Module tree and key names of fairseq's ``AVHubertModel``, without the audio branch and the
    pretraining heads. Follows ``extract_finetune`` with ``source={'audio': None, 'video': V}``."""

    def __init__(self, cfg: dict):
        super().__init__()
        dim = cfg["encoder_embed_dim"]
        if cfg["modality_fuse"] not in ("concat", "add"):
            raise ValueError(f"unknown modality_fuse {cfg['modality_fuse']!r}")
        self.fuse = cfg["modality_fuse"]
        fused = 2 * dim if self.fuse == "concat" else dim
        self.feature_extractor_video = VideoFeatureExtractor(
            dim, cfg["resnet_relu_type"], tuple(cfg.get("resnet_widths", RESNET18_WIDTHS))
        )
        self.layer_norm = nn.LayerNorm(fused)
        self.post_extract_proj = nn.Linear(fused, dim)
        self.encoder = TransformerEncoder(
            dim,
            cfg["encoder_ffn_embed_dim"],
            cfg["encoder_layers"],
            cfg["encoder_attention_heads"],
            layer_norm_first=cfg["layer_norm_first"],
            conv_pos=cfg["conv_pos"],
            conv_pos_groups=cfg["conv_pos_groups"],
            dropout=cfg.get("dropout", 0.0),
        )

    def forward(self, video: torch.Tensor, lengths: torch.Tensor, output_layer: Optional[int] = None) -> torch.Tensor:
        """(B, T, H, W) normalised frames, (B,) -> (B, T, D)."""
        x = self.feature_extractor_video(video)
        if self.fuse == "concat":
            # The absent audio stream is zeros after its projection, and comes first.
            x = torch.cat([torch.zeros_like(x), x], dim=-1)
        x = self.post_extract_proj(self.layer_norm(x))
        return self.encoder(x, make_pad_mask(lengths, x.shape[1]), output_layer)
