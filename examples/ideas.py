"Two ideas of our own for a gptnb study: `gptnb sweep mine --interventions baseline,examples/ideas.py:rmsnorm`."
import torch
from torch import nn

from gptnb.interventions import Intervention
from gptnb.model import LayerNorm


class RMSNorm(nn.Module):
    "x / rms(x) · weight: no mean subtraction, no bias (Zhang & Sennrich, 2019)."
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))   # ones: no random draw needed

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def to_rmsnorm(model, mcfg, tcfg):
    "Swap every LayerNorm of the built model for an RMSNorm of the same width (in place)."
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, LayerNorm): setattr(parent, name, RMSNorm(child.scale.numel(), child.eps))


rmsnorm = Intervention("rmsnorm", "RMSNorm (weight, no bias) instead of every LayerNorm", model=to_rmsnorm)

adamw_beta2_99 = Intervention(
    "adamw-beta2-99", "AdamW with betas (0.9, 0.99) instead of (0.9, 0.999)",
    optimizer=lambda model, t: torch.optim.AdamW(model.parameters(), lr=t.lr, betas=(0.9, 0.99), eps=t.eps,
                                                 weight_decay=t.weight_decay))

wd_005 = Intervention.overrides("wd-005", "weight decay 0.05", train={"weight_decay": 0.05})
