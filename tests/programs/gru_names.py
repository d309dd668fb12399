"""A GRU name model on names.txt: padded character sequences, `ignore_index`, RMSprop.

makemore's `CharDataset` (a `Dataset` subclass) turns each name into a start token, the
letters and padding, with targets of -1 that `F.cross_entropy(..., ignore_index=-1)` skips. A
single-layer `nn.GRU` (sequence-first, with an explicit initial state) reads the characters, a
`DataLoader` batches the dataset's items, RMSprop trains it, and greedy decoding writes a few
names at the end.
"""

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "names.txt"
MAX_LEN = 12


class CharDataset(Dataset):
    def __init__(self, words, chars, max_word_length):
        self.words = words
        self.chars = chars
        self.max_word_length = max_word_length
        self.stoi = {ch: i + 1 for i, ch in enumerate(chars)}
        self.itos = {i: s for s, i in self.stoi.items()}

    def __len__(self):
        return len(self.words)

    def get_vocab_size(self):
        return len(self.chars) + 1

    def encode(self, word):
        return torch.tensor([self.stoi[w] for w in word], dtype=torch.long)

    def decode(self, ix):
        return "".join(self.itos[i] for i in ix)

    def __getitem__(self, idx):
        ix = self.encode(self.words[idx])
        x = torch.zeros(self.max_word_length + 1, dtype=torch.long)
        y = torch.zeros(self.max_word_length + 1, dtype=torch.long)
        x[1 : 1 + len(ix)] = ix
        y[: len(ix)] = ix
        y[len(ix) + 1 :] = -1  # index -1 masks the loss at the inactive locations
        return x, y


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
    dataset = CharDataset(words, chars, max(len(w) for w in words))
    print(f"{len(dataset)} names, vocabulary of {dataset.get_vocab_size()}")
    loader = DataLoader(dataset, batch_size=32)

    model = CharGRU(dataset.get_vocab_size(), 12, 24)
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
        X, Y = next(iter(DataLoader(dataset, batch_size=len(dataset))))
        logits, _ = model(X.to(device))
        full = F.cross_entropy(logits.view(-1, logits.size(-1)), Y.view(-1), ignore_index=-1)
        history.append(full.item())
        print(f"loss over all names: {full:.4f}")
        for first in "abc":
            h = None
            idx = dataset.encode(first).view(1, 1).to(device)
            out = [idx.item()]
            for _ in range(MAX_LEN):
                logits, h = model(idx, h)
                ix = logits[0, -1].argmax().item()
                if ix == 0:
                    break
                out.append(ix)
                idx = torch.tensor([[ix]], device=device)
            print(dataset.decode(out))
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
