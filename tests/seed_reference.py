"""An independent re-implementation of the seed code's model (the architecture of Raschka's "Build a Large Language
Model (from Scratch)", which the post's training code used), written the straightforward way: explicit causal mask
buffer, manual softmax attention, hand-written LayerNorm and GELU. Tests use it as the reference that gptnb's
GPTModel must match, weight for weight and logit for logit."""
import math

import torch
import torch.nn as nn


class RefLayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.eps, self.scale, self.shift = 1e-5, nn.Parameter(torch.ones(d)), nn.Parameter(torch.zeros(d))

    def forward(self, x):
        mean, var = x.mean(-1, keepdim=True), x.var(-1, keepdim=True, unbiased=False)
        return self.scale * ((x - mean) / torch.sqrt(var + self.eps)) + self.shift   # normalise, then scale


class RefGELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


class RefAttention(nn.Module):
    def __init__(self, d, ctx, drop, heads, qkv_bias):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.W_query, self.W_key, self.W_value = (nn.Linear(d, d, bias=qkv_bias) for _ in range(3))
        self.out_proj = nn.Linear(d, d)
        self.dropout = nn.Dropout(drop)
        self.register_buffer("mask", torch.triu(torch.ones(ctx, ctx), diagonal=1))

    def forward(self, x):
        # The seed code's order of operations (all projections, key first; then views; then transposes): autograd
        # sums x's gradient contributions in that order, so any other order changes the gradients' last bits.
        b, t, d = x.shape
        k, q, v = (w(x) for w in (self.W_key, self.W_query, self.W_value))
        k, q, v = (z.view(b, t, self.heads, self.hd) for z in (k, q, v))
        k, q, v = (z.transpose(1, 2) for z in (k, q, v))
        scores = (q @ k.transpose(2, 3)).masked_fill(self.mask.bool()[:t, :t], -torch.inf)
        weights = self.dropout(torch.softmax(scores / self.hd**0.5, dim=-1))
        return self.out_proj((weights @ v).transpose(1, 2).contiguous().view(b, t, d))


class RefBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["emb_dim"]
        self.att = RefAttention(d, c["context_length"], c["drop_rate"], c["n_heads"], c["qkv_bias"])
        self.ff = nn.Module()
        self.ff.layers = nn.Sequential(nn.Linear(d, 4 * d), RefGELU(), nn.Linear(4 * d, d))
        self.norm1, self.norm2 = RefLayerNorm(d), RefLayerNorm(d)
        self.drop_shortcut = nn.Dropout(c["drop_rate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff.layers(self.norm2(x)))


class RefGPT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.tok_emb = nn.Embedding(c["vocab_size"], c["emb_dim"])
        self.pos_emb = nn.Embedding(c["context_length"], c["emb_dim"])
        self.drop_emb = nn.Dropout(c["drop_rate"])
        self.trf_blocks = nn.Sequential(*[RefBlock(c) for _ in range(c["n_layers"])])
        self.final_norm = RefLayerNorm(c["emb_dim"])
        self.out_head = nn.Linear(c["emb_dim"], c["vocab_size"], bias=False)

    def forward(self, idx):
        x = self.drop_emb(self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1])))
        return self.out_head(self.final_norm(self.trf_blocks(x)))
