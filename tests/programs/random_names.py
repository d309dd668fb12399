"""makemore's MLP on names.txt, with randomness left in: only a comparable loss drop is expected.

Weights from `nn.init` (xavier_uniform_, normal_) through `model.apply`, the words shuffled by
`torch.randperm`, a `random_split` into train and validation sets, a shuffling `DataLoader` with
two worker processes, dropout, and names sampled with `torch.multinomial` from a seeded
`torch.Generator`, after the usual `set_seed`. Two libraries draw different random numbers, so
the losses are not the same; both should fall by about as much.
"""

import json
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, random_split

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "names.txt"
BLOCK = 3


def build_dataset(words, stoi):
    X, Y = [], []
    for w in words:
        context = [0] * BLOCK
        for ch in w + ".":
            ix = stoi[ch]
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]
    return torch.tensor(X), torch.tensor(Y)


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def main():
    set_seed(42)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    words = DATA.read_text().splitlines()[:1500]
    chars = sorted(set("".join(words)))
    stoi = {s: i + 1 for i, s in enumerate(chars)}
    stoi["."] = 0
    itos = {i: s for s, i in stoi.items()}

    words = [words[i] for i in torch.randperm(len(words)).tolist()]
    X, Y = build_dataset(words, stoi)
    train_set, val_set = random_split(
        TensorDataset(X, Y), [0.9, 0.1], generator=torch.Generator().manual_seed(1)
    )
    loader = DataLoader(train_set, batch_size=64, shuffle=True, drop_last=True, num_workers=2)
    val_loader = DataLoader(val_set, batch_size=512)

    model = nn.Sequential(
        nn.Embedding(len(stoi), 10),
        nn.Flatten(),
        nn.Linear(BLOCK * 10, 64),
        nn.Tanh(),
        nn.Dropout(0.1),
        nn.Linear(64, len(stoi)),
    )

    def init_fn(m):
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=1.0)

    model.apply(init_fn)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    history = []
    for step, (xb, yb) in enumerate(loader):
        if step == 60:
            break
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
        if step % 10 == 0:
            print(f"{step:4d}: {loss.item():.4f}")

    model.eval()
    with torch.no_grad():
        val = sum(
            F.cross_entropy(model(xb.to(device)), yb.to(device), reduction="sum")
            for xb, yb in val_loader
        ) / len(val_set)
        print(f"val loss {val:.4f}")
        g = torch.Generator().manual_seed(2147483647)
        for _ in range(5):
            out, context = [], [0] * BLOCK
            while len(out) < 20:
                probs = F.softmax(model(torch.tensor([context], device=device)), dim=1)
                ix = torch.multinomial(probs, num_samples=1, generator=g).item()
                context = context[1:] + [ix]
                if ix == 0:
                    break
                out.append(itos[ix])
            print("".join(out))
    history.append(val.item())
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
