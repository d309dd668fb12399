"""A bidirectional LSTM tagger: marks the peaks of integer sequences of varying length.

A token is a peak when it is larger than both neighbours, so the tag needs context from both
sides: `nn.Embedding(padding_idx=0)`, a two-layer `nn.LSTM(batch_first=True,
bidirectional=True)`, a linear tagger over both directions, `nn.CrossEntropyLoss` skipping the
padded positions (their targets are -100, its default `ignore_index`), Adam, and
`ReduceLROnPlateau` stepped with the validation loss.
"""

import json

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

VOCAB, MAX_LEN, PAD = 12, 10, 0


def make_sequences(rng, n):
    tokens = np.zeros((n, MAX_LEN), dtype=np.int64)
    tags = np.full((n, MAX_LEN), -100, dtype=np.int64)
    for i in range(n):
        length = rng.integers(3, MAX_LEN + 1)
        seq = rng.integers(1, VOCAB, size=length)
        padded = np.concatenate([[0], seq, [0]])
        tokens[i, :length] = seq
        tags[i, :length] = (seq > padded[:-2]) & (seq > padded[2:])
    return torch.from_numpy(tokens), torch.from_numpy(tags)


class Tagger(nn.Module):
    def __init__(self, n_embd=8, n_hidden=12):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, n_embd, padding_idx=PAD)
        self.lstm = nn.LSTM(n_embd, n_hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.tagger = nn.Linear(2 * n_hidden, 2)

    def forward(self, tokens):
        out, (h_n, c_n) = self.lstm(self.embed(tokens))
        return self.tagger(out)


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(17)
    train_loader = DataLoader(TensorDataset(*make_sequences(rng, 192)), batch_size=48)
    val_tokens, val_tags = make_sequences(rng, 96)

    model = Tagger()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.tensor(rng.uniform(-0.3, 0.3, size=tuple(p.shape)), dtype=torch.float32))
        model.embed.weight[PAD].fill_(0)
    print(", ".join(f"{name} {tuple(p.shape)}" for name, p in model.lstm.named_parameters()))
    model.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=0.5, patience=0
    )

    history = []
    for epoch in range(8):
        model.train()
        for tokens, tags in train_loader:
            tokens, tags = tokens.to(device), tags.to(device)
            logits = model(tokens)
            loss = criterion(logits.view(-1, 2), tags.view(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(loss.item())
        model.eval()
        with torch.no_grad():
            logits = model(val_tokens.to(device))
            val_loss = criterion(logits.flatten(0, 1), val_tags.to(device).flatten()).item()
            mask = val_tags != -100
            acc = (logits.argmax(-1)[mask] == val_tags[mask]).float().mean()
        scheduler.step(val_loss)
        history.append(val_loss)
        print(
            f"epoch {epoch}: val loss {val_loss:.4f}, tag accuracy {acc:.3f}, "
            f"lr {optimizer.param_groups[0]['lr']}"
        )
    assert model.embed.weight[PAD].abs().sum().item() == 0.0
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
