"""ECAPA-TDNN (Desplanques et al., Interspeech 2020) with a swappable attention normaliser.

Layout (the top-level submodule names are a contract; see docs/architecture.md):
  conv_in   Conv1d(n_mels -> C, k=5) + ReLU + BN
  block1-3  SE-Res2Blocks (k=3, dilations 2/3/4, scale 8, SE bottleneck 128); the input of
            block n is the sum of the stem output and every earlier block output (dense sums)
  conv_mfa  multi-layer feature aggregation: Conv1d(3C -> mfa_channels, k=1) + ReLU
  asp       attentive statistics pooling with global context; its `softmax` attribute is the
            normaliser over time and can be swapped (slimaudio.compress.pwl)
  bn_asp    BN over the pooled [mean, std]
  fc        Linear(2 * mfa_channels -> embedding_dim)
  bn_fc     BN over the embedding

Input: log-mel features [batch, frames, n_mels]; the model subtracts each utterance's mean
over time (cepstral mean normalisation) so the exported graph carries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

STD_EPS = 1e-4  # floor on variances before sqrt, as in the reference implementations


@dataclass(frozen=True)
class EcapaConfig:
    n_mels: int = 80
    channels: int = 1024
    mfa_channels: int = 1536
    attention_channels: int = 128
    embedding_dim: int = 192
    scale: int = 8
    se_bottleneck: int = 128
    kernel_size: int = 3
    dilations: Sequence[int] = field(default=(2, 3, 4))
    # Options where published ECAPA-TDNNs differ (defaults: this project's own model;
    # SpeechBrain's: dense_sums False, input_cmn False, std_eps 1e-12, padding_mode reflect,
    # mfa_bn True, fc_bn False; see slimaudio/models/speechbrain_import.py).
    dense_sums: bool = True      # block n's input: stem + every earlier block (else the last)
    input_cmn: bool = True       # subtract each utterance's mean over time inside the model
    std_eps: float = STD_EPS     # floor on variances before sqrt in the pooling
    padding_mode: str = "zeros"  # of the k > 1 convolutions ("reflect": SpeechBrain)
    mfa_bn: bool = False         # BatchNorm after the MFA convolution's ReLU
    fc_bn: bool = True           # BatchNorm over the embedding

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EcapaConfig:
        d = dict(d)
        d["dilations"] = tuple(d.get("dilations", (2, 3, 4)))
        return cls(**d)


class DilatedConv1d(nn.Conv1d):
    """Conv1d that runs oneDNN for dilated kernels at inference on CPU.

    For small inputs (batch 1, few channels) torch's heuristic picks its naive
    `slow_conv_dilated2d` kernel for dilated convolutions, several times slower than oneDNN;
    the Res2Net branches (width C/8, dilation 2-4) hit exactly that case when whole test
    utterances are embedded one at a time. Same maths; training, autograd and ONNX export
    take the ordinary path.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.dilation[0] > 1 and self.padding_mode == "zeros" and not torch.is_grad_enabled() and x.device.type == "cpu"
                and x.dtype == torch.float32 and torch.backends.mkldnn.is_available()
                and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()):
            return torch.ops.aten.mkldnn_convolution(
                x.contiguous(), self.weight, self.bias, list(self.padding), list(self.stride),
                list(self.dilation), self.groups)
        return super().forward(x)


class Conv1dReluBn(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel_size: int = 1, dilation: int = 1,
                 padding_mode: str = "zeros") -> None:
        super().__init__(
            DilatedConv1d(c_in, c_out, kernel_size, dilation=dilation,
                          padding=dilation * (kernel_size - 1) // 2, padding_mode=padding_mode),
            nn.ReLU(),
            nn.BatchNorm1d(c_out),
        )


class Res2Conv1dReluBn(nn.Module):
    """Res2Net convolution: split channels into `scale` groups; group i (i >= 1) is convolved
    after adding the previous group's output; group 0 passes through (hierarchical residuals)."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int,
                 padding_mode: str = "zeros") -> None:
        super().__init__()
        if channels % scale:
            raise ValueError(f"ecapa: channels {channels} must be divisible by scale {scale}")
        self.width = channels // scale
        self.convs = nn.ModuleList(
            Conv1dReluBn(self.width, self.width, kernel_size, dilation, padding_mode)
            for _ in range(scale - 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(x, self.width, dim=1)
        out = [chunks[0]]
        y = chunks[0]
        for i, conv in enumerate(self.convs, start=1):
            y = conv(chunks[i] if i == 1 else chunks[i] + y)
            out.append(y)
        return torch.cat(out, dim=1)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, bottleneck: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv1d(channels, bottleneck, 1)
        self.fc2 = nn.Conv1d(bottleneck, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=2, keepdim=True)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))
        return x * s


class SERes2Block(nn.Module):
    def __init__(self, channels: int, kernel_size: int, dilation: int, scale: int,
                 se_bottleneck: int, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.conv1 = Conv1dReluBn(channels, channels, 1)
        self.res2 = Res2Conv1dReluBn(channels, kernel_size, dilation, scale, padding_mode)
        self.conv2 = Conv1dReluBn(channels, channels, 1)
        self.se = SqueezeExcitation(channels, se_bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se(self.conv2(self.res2(self.conv1(x))))


class Softmax(nn.Module):
    """The baseline normaliser: softmax over time (the last axis)."""

    defer_normalisation = False

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, dim=-1)


class AttentiveStatsPool(nn.Module):
    """Attentive statistics pooling with global context.

    Each frame is concatenated with the utterance mean and std; attention
    Conv1d-ReLU-BN-Tanh-Conv1d gives per-channel logits over time; `softmax` turns them into
    weights; output is the weighted mean and std, [batch, 2 * channels].

    A normaliser whose `defer_normalisation` is True returns unnormalised non-negative weights
    g (`unnormalised(e)`); the pooled sums are then divided by sum(g) once per channel instead
    of dividing every frame (identical maths, one pass over [batch, channels, frames] fewer).
    x*x is computed once and shared by the global context and the weighted std.
    """

    def __init__(self, channels: int, attention_channels: int, std_eps: float = STD_EPS) -> None:
        super().__init__()
        self.std_eps = std_eps
        self.attention = nn.Sequential(
            nn.Conv1d(3 * channels, attention_channels, 1),
            nn.ReLU(),
            nn.BatchNorm1d(attention_channels),
            nn.Tanh(),
            nn.Conv1d(attention_channels, channels, 1),
        )
        self.softmax: nn.Module = Softmax()

    def _logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x2 = x * x
        mean = x.mean(dim=-1, keepdim=True)
        std = torch.sqrt(torch.clamp(x2.mean(dim=-1, keepdim=True) - mean * mean,
                                     min=self.std_eps))
        ctx = torch.cat([x, mean.expand_as(x), std.expand_as(x)], dim=1)
        return self.attention(ctx), x2

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Attention logits [B, C, T] (the input of the normaliser)."""
        return self._logits(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e, x2 = self._logits(x)
        norm = self.softmax
        if getattr(norm, "defer_normalisation", False):
            g = norm.unnormalised(e)
            s = g.sum(dim=-1)
            mu = (x * g).sum(dim=-1) / s
            m2 = (x2 * g).sum(dim=-1) / s
        else:
            w = norm(e)
            mu = (x * w).sum(dim=-1)
            m2 = (x2 * w).sum(dim=-1)
        sg = torch.sqrt(torch.clamp(m2 - mu * mu, min=self.std_eps))
        return torch.cat([mu, sg], dim=1)


class EcapaTdnn(nn.Module):
    def __init__(self, cfg: EcapaConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.cfg = cfg or EcapaConfig(**kwargs)
        c = self.cfg
        if len(c.dilations) != 3:
            raise ValueError("ecapa: exactly three SE-Res2Block dilations are expected")
        self.conv_in = Conv1dReluBn(c.n_mels, c.channels, 5, padding_mode=c.padding_mode)
        self.block1, self.block2, self.block3 = (
            SERes2Block(c.channels, c.kernel_size, d, c.scale, c.se_bottleneck, c.padding_mode)
            for d in c.dilations
        )
        mfa_bn = [nn.BatchNorm1d(c.mfa_channels)] if c.mfa_bn else []
        self.conv_mfa = nn.Sequential(nn.Conv1d(3 * c.channels, c.mfa_channels, 1), nn.ReLU(),
                                      *mfa_bn)
        self.asp = AttentiveStatsPool(c.mfa_channels, c.attention_channels, c.std_eps)
        self.bn_asp = nn.BatchNorm1d(2 * c.mfa_channels)
        self.fc = nn.Linear(2 * c.mfa_channels, c.embedding_dim)
        self.bn_fc: nn.Module = nn.BatchNorm1d(c.embedding_dim) if c.fc_bn else nn.Identity()

    def trunk(self, feats: torch.Tensor) -> torch.Tensor:
        """Frame-level features [B, mfa_channels, T] before pooling."""
        x = feats.transpose(1, 2)
        if self.cfg.input_cmn:
            x = x - x.mean(dim=2, keepdim=True)
        x = self.conv_in(x)
        o1 = self.block1(x)
        if self.cfg.dense_sums:
            o2 = self.block2(x + o1)
            o3 = self.block3(x + o1 + o2)
        else:
            o2 = self.block2(o1)
            o3 = self.block3(o2)
        return self.conv_mfa(torch.cat([o1, o2, o3], dim=1))

    def head(self, frames: torch.Tensor) -> torch.Tensor:
        """Embedding [B, embedding_dim] from trunk features (pooling onwards)."""
        return self.bn_fc(self.fc(self.bn_asp(self.asp(frames))))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(feats))

    def set_softmax(self, module: nn.Module) -> EcapaTdnn:
        """Swap the attention normaliser (softmax or a slimaudio.compress.pwl variant)."""
        self.asp.softmax = module
        return self


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
