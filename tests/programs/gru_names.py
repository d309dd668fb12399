"""A GRU name model on names.txt: padded character sequences, `ignore_index`, RMSprop.

Each name becomes '.' + name + '.' over a 27-letter vocabulary, padded to a fixed length with
targets of -1 that `F.cross_entropy(..., ignore_index=-1)` skips. A single-layer `nn.GRU`
(sequence-first, with an explicit initial state) reads the characters, a `DataLoader` serves
the batches, RMSprop trains it, and greedy decoding writes a few names at the end.
"""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "names.txt"
MAX_LEN = 12


class CharGRU(nn.Module):
    def __init__(self, vocab_size, n_embd, n_hidden):
        super().__init__()
        self.n_hidden = n_hidden
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.gru = nn.GRU(n_embd, n_hidden)
        self.lm_head = nn.Linear(n_hidden, vocab_size)

    def forward(self, idx, h=None):
        b, t = idx.shape
        if h is None:
            h = torch.zeros(1, b, self.n_hidden, device=idx.device)
        emb = self.wte(idx).transpose(0, 1)  # (t, b, n_embd)
        out, h = self.gru(emb, h)
        return self.lm_head(out.transpose(0, 1)), h


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(11)
    words = [w for w in DATA.read_text().splitlines() if w and len(w) < MAX_LEN]
    words = [words[i] for i in rng.permutation(len(words))[:256]]
    chars = sorted(set("".join(words)))
    stoi = {ch: i + 1 for i, ch in enumerate(chars)}
    stoi["."] = 0
    itos = {i: s for s, i in stoi.items()}

    X = torch.zeros(len(words), MAX_LEN, dtype=torch.long)
    Y = torch.full((len(words), MAX_LEN), -1, dtype=torch.long)
    for i, w in enumerate(words):
        ix = torch.tensor([0] + [stoi[c] for c in w])
        X[i, : len(ix)] = ix
        Y[i, : len(ix) - 1] = ix[1:]
        Y[i, len(ix) - 1] = 0
    loader = DataLoader(TensorDataset(X, Y), batch_size=32)

    model = CharGRU(len(stoi), 12, 24)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.normal(0.0, 0.15, size=tuple(p.shape)), dtype=torch.float32))
    model.to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.01, alpha=0.9)

    history = []
    for epoch in range(2):
        for step, (xb, yb) in enumerate(loader):
            xb, yb = xb.to(device), yb.to(device)
            logits, _ = model(xb)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), yb.view(-1), ignore_index=-1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.append(loss.item())
            if step % 4 == 0:
                print(f"epoch {epoch} step {step} | loss {loss.item():.4f}")

    model.eval()
    with torch.no_grad():
        logits, _ = model(X.to(device))
        full = F.cross_entropy(logits.view(-1, logits.size(-1)), Y.view(-1), ignore_index=-1)
        history.append(full.item())
        print(f"loss over all names: {full:.4f}")
        for first in "abc":
            h = None
            idx = torch.tensor([[stoi[first]]], device=device)
            name = first
            for _ in range(MAX_LEN):
                logits, h = model(idx, h)
                ix = logits[0, -1].argmax().item()
                if ix == 0:
                    break
                name += itos[ix]
                idx = torch.tensor([[ix]], device=device)
            print(name)
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
