"""A small causal language model with F.scaled_dot_product_attention and an EMA copy.

nanoGPT's fast attention path (`F.scaled_dot_product_attention(..., is_causal=True)`), bias-free
LayerNorm, an exponential moving average of the weights kept in a `copy.deepcopy` of the model,
gradients accumulated over two micro-batches, a warm-up then cosine schedule (`SequentialLR` of
`LinearLR` and `CosineAnnealingLR`), and evaluation under `torch.inference_mode()` with top-5
accuracy from `topk`.
"""

import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tiny_shakespeare.txt"
BLOCK, N_EMBD, N_HEAD = 16, 32, 4


class SelfAttention(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.qkv = nn.Linear(N_EMBD, 3 * N_EMBD, bias=False)
        self.proj = nn.Linear(N_EMBD, N_EMBD, bias=False)
        self.dropout = dropout

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (t.view(B, T, N_HEAD, C // N_HEAD).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0, is_causal=True
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class TinyLM(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, N_EMBD)
        self.pos_emb = nn.Embedding(BLOCK, N_EMBD)
        self.ln1 = nn.LayerNorm(N_EMBD, bias=False)
        self.attn = SelfAttention()
        self.ln2 = nn.LayerNorm(N_EMBD, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(N_EMBD, 4 * N_EMBD),
            nn.GELU(approximate="tanh"),
            nn.Linear(4 * N_EMBD, N_EMBD),
        )
        self.ln_f = nn.LayerNorm(N_EMBD, bias=False)
        self.head = nn.Linear(N_EMBD, vocab_size)

    def forward(self, idx):
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        x = x + self.attn(self.ln1(x))
        x = x + self.mlp(self.ln2(x))
        return self.head(self.ln_f(x))


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    text = DATA.read_text()[:30000]
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text], dtype=torch.long)
    rng = np.random.default_rng(99)

    model = TinyLM(len(chars))
    for name, p in model.named_parameters():
        if name.startswith("ln"):
            continue
        std = 0.02 if p.dim() > 1 else 0.01
        with torch.no_grad():
            p.copy_(torch.tensor(rng.normal(0.0, std, size=p.shape), dtype=p.dtype))
    model.to(device)
    ema = copy.deepcopy(model).requires_grad_(False)

    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.2, total_iters=4)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=16)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[4])

    def batch(batch_size=16):
        ix = rng.integers(0, len(data) - BLOCK - 1, size=batch_size)
        x = torch.stack([data[i : i + BLOCK] for i in ix])
        y = torch.stack([data[i + 1 : i + 1 + BLOCK] for i in ix])
        return x.to(device), y.to(device)

    history = []
    accumulation_steps = 2
    for step in range(20):
        optimizer.zero_grad(set_to_none=True)
        for _ in range(accumulation_steps):
            x, y = batch(8)
            logits = model(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
            (loss / accumulation_steps).backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), model.parameters()):
                p_ema.mul_(0.8).add_(p.detach(), alpha=0.2)
        history.append(loss.item())
        if step % 5 == 0:
            print(f"step {step:2d} loss {loss.item():.4f} lr {optimizer.param_groups[0]['lr']:.5f}")

    x, y = batch(64)
    with torch.inference_mode():
        for name, net in (("model", model), ("ema", ema)):
            net.eval()
            logits = net(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            top5 = logits.topk(5, dim=-1).indices
            hit = (top5 == y.unsqueeze(-1)).any(dim=-1).float().mean()
            print(f"{name}: loss {loss:.4f} top-5 accuracy {hit:.3f}")
            history.append(loss.item())
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
