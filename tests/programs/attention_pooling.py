"""Set pooling with nn.MultiheadAttention, a ModuleDict of task heads and registered buffers.

Variable-length sequences of feature vectors (padded, with a `key_padding_mask`) go through a
projection plus sinusoidal positions (a non-persistent buffer built as PyTorch's tutorial builds
it), self-attention, a residual LayerNorm and masked mean pooling; a `nn.ModuleDict` holds a
classification and a regression head, and a persistent buffer counts the examples seen.
Adagrad trains the sum of the two losses.
"""

import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

SEQ, FEAT, D_MODEL = 8, 6, 16


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x):
        return x + self.pe[: x.size(1)]


class SetModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(FEAT, D_MODEL)
        self.pos = PositionalEncoding(D_MODEL, SEQ)
        self.attn = nn.MultiheadAttention(D_MODEL, num_heads=2, batch_first=True)
        self.norm = nn.LayerNorm(D_MODEL)
        self.heads = nn.ModuleDict({"cls": nn.Linear(D_MODEL, 2), "reg": nn.Linear(D_MODEL, 1)})
        self.register_buffer("examples_seen", torch.tensor(0))

    def forward(self, x, pad_mask):
        h = self.pos(self.proj(x))
        a, weights = self.attn(h, h, h, key_padding_mask=pad_mask)
        h = self.norm(h + a)
        keep = (~pad_mask).unsqueeze(-1).float()
        pooled = (h * keep).sum(dim=1) / keep.sum(dim=1)
        if self.training:
            self.examples_seen += x.size(0)
        return {name: head(pooled) for name, head in self.heads.items()}, weights


def make_data(rng, n):
    x = rng.standard_normal((n, SEQ, FEAT)).astype(np.float32)
    lengths = rng.integers(2, SEQ + 1, size=n)
    pad = np.arange(SEQ)[None, :] >= lengths[:, None]
    x[pad] = 0.0
    valid = (~pad)[..., None]
    y_cls = ((x[..., 0] * valid[..., 0]).sum(1) > 0).astype(np.int64)
    y_reg = ((x[..., 1:3] * valid).sum((1, 2)) / lengths).astype(np.float32)
    return (
        torch.from_numpy(x),
        torch.from_numpy(pad),
        torch.from_numpy(y_cls),
        torch.from_numpy(y_reg),
    )


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(2024)
    train = TensorDataset(*make_data(rng, 160))
    test = make_data(rng, 64)
    loader = DataLoader(train, batch_size=32, drop_last=True)

    model = SetModel()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("norm"):
                continue
            scale = 1.0 / math.sqrt(p.shape[-1]) if p.dim() > 1 else 0.1
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape)) * scale))
    model.to(device)
    print("buffers:", sorted(name for name, _ in model.named_buffers()))
    print("in state_dict:", sorted(k for k in model.state_dict() if "." not in k))
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.05)

    history = []
    for epoch in range(3):
        model.train()
        for x, pad, y_cls, y_reg in loader:
            x, pad, y_cls, y_reg = (t.to(device) for t in (x, pad, y_cls, y_reg))
            out, _ = model(x, pad)
            loss = F.cross_entropy(out["cls"], y_cls) + F.mse_loss(out["reg"].squeeze(-1), y_reg)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(loss.item())
        print(f"epoch {epoch}: loss {loss:.4f}, seen {int(model.examples_seen)}")

    model.eval()
    with torch.no_grad():
        x, pad, y_cls, y_reg = (t.to(device) for t in test)
        out, weights = model(x, pad)
        test_loss = F.cross_entropy(out["cls"], y_cls) + F.mse_loss(out["reg"].squeeze(-1), y_reg)
        accuracy = (out["cls"].argmax(-1) == y_cls).float().mean().item()
        masked_weight = weights.masked_select(pad.unsqueeze(1).expand_as(weights)).abs().max()
        lengths = (~pad).sum(dim=1)
        first = weights[0, : lengths[0], : lengths[0]]
        print(f"first example: {int(lengths[0])} tokens, rows sum to {first.sum(-1).min():.4f}")
    print(
        f"test loss {test_loss.item():.4f}, accuracy {accuracy:.3f}, "
        f"attention on padding {masked_weight.item():.1e}"
    )
    history += [test_loss.item(), float(model.examples_seen.item())]
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
