"""A Llama-style language model: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU.

Written as the Llama reference and Hugging Face code write it: `nn.RMSNorm`, rotary position
embeddings kept as non-persistent buffers and applied with `rotate_half`, keys and values of two
heads shared by four query heads (`repeat_kv` with `expand` + `reshape`), causal
`F.scaled_dot_product_attention`, a SwiGLU feed-forward with `F.silu`, and nanoGPT's training
loop that sets each group's learning rate by hand (warm-up then cosine decay).
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "tiny_shakespeare.txt"
DIM, N_LAYERS, N_HEADS, N_KV_HEADS, BLOCK = 32, 2, 4, 2, 16


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(x, n_rep):
    bs, n_kv_heads, slen, head_dim = x.shape
    if n_rep == 1:
        return x
    x = x[:, :, None, :, :].expand(bs, n_kv_heads, n_rep, slen, head_dim)
    return x.reshape(bs, n_kv_heads * n_rep, slen, head_dim)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.head_dim = DIM // N_HEADS
        self.wq = nn.Linear(DIM, N_HEADS * self.head_dim, bias=False)
        self.wk = nn.Linear(DIM, N_KV_HEADS * self.head_dim, bias=False)
        self.wv = nn.Linear(DIM, N_KV_HEADS * self.head_dim, bias=False)
        self.wo = nn.Linear(N_HEADS * self.head_dim, DIM, bias=False)

    def forward(self, x, cos, sin):
        bsz, seqlen, _ = x.shape
        q = self.wq(x).view(bsz, seqlen, N_HEADS, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(bsz, seqlen, N_KV_HEADS, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(bsz, seqlen, N_KV_HEADS, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = repeat_kv(k, N_HEADS // N_KV_HEADS)
        v = repeat_kv(v, N_HEADS // N_KV_HEADS)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(out.transpose(1, 2).contiguous().view(bsz, seqlen, -1))


class FeedForward(nn.Module):
    def __init__(self, hidden_dim):
        super().__init__()
        self.w1 = nn.Linear(DIM, hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, DIM, bias=False)
        self.w3 = nn.Linear(DIM, hidden_dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention_norm = nn.RMSNorm(DIM, eps=1e-6)
        self.attention = Attention()
        self.ffn_norm = nn.RMSNorm(DIM, eps=1e-6)
        self.feed_forward = FeedForward(hidden_dim=64)

    def forward(self, x, cos, sin):
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab_size, DIM)
        self.layers = nn.ModuleList(TransformerBlock() for _ in range(N_LAYERS))
        self.norm = nn.RMSNorm(DIM, eps=1e-6)
        self.output = nn.Linear(DIM, vocab_size, bias=False)
        head_dim = DIM // N_HEADS
        inv_freq = 1.0 / (10000.0 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        freqs = torch.outer(torch.arange(BLOCK).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos(), persistent=False)
        self.register_buffer("sin_cached", emb.sin(), persistent=False)

    def forward(self, tokens, targets=None):
        seqlen = tokens.size(1)
        h = self.tok_embeddings(tokens)
        cos, sin = self.cos_cached[:seqlen], self.sin_cached[:seqlen]
        for layer in self.layers:
            h = layer(h, cos, sin)
        logits = self.output(self.norm(h)).float()
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


def get_lr(it, learning_rate=6e-3, warmup_iters=4, lr_decay_iters=20, min_lr=6e-4):
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    text = DATA.read_text()[100_000:130_000]
    chars = sorted(set(text))
    data = np.array([chars.index(c) for c in text], dtype=np.int64)
    rng = np.random.default_rng(4)

    model = Transformer(len(chars))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.copy_(torch.from_numpy(rng.normal(0.0, 0.02, size=tuple(p.shape))))
    model.to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters, buffers not saved: {'cos_cached' not in model.state_dict()}")

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=get_lr(0),
        betas=(0.9, 0.95),
    )

    history = []
    for it in range(20):
        lr = get_lr(it)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        ix = rng.integers(0, len(data) - BLOCK - 1, size=12)
        x = torch.from_numpy(np.stack([data[i : i + BLOCK] for i in ix])).to(device)
        y = torch.from_numpy(np.stack([data[i + 1 : i + 1 + BLOCK] for i in ix])).to(device)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history.append(loss.item())
        if it % 5 == 0:
            print(f"iter {it}: loss {loss.item():.4f}, lr {lr:.2e}")
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
