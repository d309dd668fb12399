"""A tiny transformer learns two-digit addition (minGPT's adder task) with nn.TransformerEncoder.

The sequence is the digits of a and b followed by the digits of a + b reversed; a causal
`nn.TransformerEncoder` (square subsequent mask) predicts each next digit, and only the answer
positions count (`ignore_index=-1`). Adam with a warm-up `LambdaLR`, evaluation in eval mode.
"""

import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

NDIGIT = 2


def make_problems(rng, n):
    a = rng.integers(0, 10**NDIGIT, size=n)
    b = rng.integers(0, 10**NDIGIT, size=n)
    rows = []
    for x, y in zip(a, b):
        astr = f"{x:0{NDIGIT}d}"
        bstr = f"{y:0{NDIGIT}d}"
        cstr = f"{x + y:0{NDIGIT + 1}d}"[::-1]
        rows.append([int(s) for s in astr + bstr + cstr])
    seq = torch.tensor(rows, dtype=torch.long)
    x = seq[:, :-1].clone()
    y = seq[:, 1:].clone()
    y[:, : 2 * NDIGIT - 1] = -1
    return x, y


class Adder(nn.Module):
    def __init__(self, block_size, d_model=32, nhead=4, num_layers=2):
        super().__init__()
        self.tok = nn.Embedding(10, d_model)
        self.pos = nn.Parameter(torch.zeros(1, block_size, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=64, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 10)

    def forward(self, idx):
        t = idx.size(1)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=idx.device)
        h = self.tok(idx) + self.pos[:, :t]
        h = self.encoder(h, mask=mask, is_causal=True)
        return self.head(h)


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(5)
    train_x, train_y = make_problems(rng, 512)
    test_x, test_y = make_problems(rng, 128)

    model = Adder(block_size=train_x.size(1))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                continue
            p.copy_(torch.tensor(0.1 * rng.standard_normal(p.shape), dtype=torch.float32))
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 5))

    history = []
    for step in range(16):
        ix = rng.integers(0, len(train_x), size=32)
        xb, yb = train_x[ix].to(device), train_y[ix].to(device)
        logits = model(xb)
        loss = F.cross_entropy(logits.reshape(-1, 10), yb.reshape(-1), ignore_index=-1)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
        history.append(loss.item())
        if step % 5 == 0:
            print(f"step {step}: loss {loss.item():.4f} lr {scheduler.get_last_lr()[0]:.2e}")

    model.eval()
    with torch.no_grad():
        logits = model(test_x.to(device))
        test_loss = F.cross_entropy(logits.reshape(-1, 10), test_y.reshape(-1), ignore_index=-1)
        answer = test_y[:, 2 * NDIGIT - 1 :]
        pred = logits[:, 2 * NDIGIT - 1 :].argmax(-1)
        digits_right = (pred == answer).float().mean()
    history.append(test_loss.item())
    print(f"test loss {test_loss:.4f}, digits right {digits_right.item():.2%}")
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
