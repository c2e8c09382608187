"""Additive angular margin softmax (ArcFace / AAM-softmax), as used to train ECAPA-TDNN."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class AAMSoftmax(nn.Module):
    """Cross-entropy on s * cos(theta + m) for the target class and s * cos(theta) otherwise.

    Where theta + m would pass pi (cos no longer decreasing) the target logit falls back to
    cos(theta) - m * sin(m), the usual 'hard margin' correction.
    """

    def __init__(self, embedding_dim: int, n_classes: int, margin: float = 0.2,
                 scale: float = 30.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_dim))
        nn.init.xavier_normal_(self.weight, gain=1.0)
        self.scale = float(scale)
        self.set_margin(margin)

    def set_margin(self, margin: float) -> None:
        """Change the margin (training ramps it up from 0 to the target)."""
        self.margin = float(margin)
        self.cos_m, self.sin_m = math.cos(margin), math.sin(margin)
        self.th = math.cos(math.pi - margin)
        self.mm = math.sin(math.pi - margin) * margin

    def logits(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = F.linear(F.normalize(emb), F.normalize(self.weight))
        sine = torch.sqrt((1.0 - cosine * cosine).clamp(0.0, 1.0))
        phi = cosine * self.cos_m - sine * self.sin_m
        phi = torch.where(cosine - self.th > 0, phi, cosine - self.mm)
        one_hot = F.one_hot(labels, cosine.shape[1]).to(cosine.dtype)
        return self.scale * (one_hot * phi + (1.0 - one_hot) * cosine)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, accuracy of the margin-free prediction)."""
        logits = self.logits(emb, labels)
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():
            cosine = F.linear(F.normalize(emb), F.normalize(self.weight))
            acc = (cosine.argmax(dim=1) == labels).float().mean()
        return loss, acc
