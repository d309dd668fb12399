"""Bump detection in 1-D signals: Conv1d blocks in a ModuleList, BatchNorm1d, BCEWithLogitsLoss.

Residual blocks (Conv1d -> BatchNorm1d -> SiLU, with an `nn.Identity` or 1x1 conv shortcut)
kept in an `nn.ModuleList`, global average pooling and a linear head; SGD with per-group
learning rates, the head's group added later with `add_param_group`, an `ExponentialLR`
schedule that scales both groups, and the learning rates read back from `param_groups`.
"""

import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

LENGTH = 32


class Block(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel_size=5, padding=2, bias=False)
        self.bn = nn.BatchNorm1d(c_out)
        self.shortcut = nn.Identity() if c_in == c_out else nn.Conv1d(c_in, c_out, 1)

    def forward(self, x):
        return F.silu(self.bn(self.conv(x))) + self.shortcut(x)


class BumpNet(nn.Module):
    def __init__(self, channels=(1, 8, 8)):
        super().__init__()
        self.blocks = nn.ModuleList(
            [Block(channels[i], channels[i + 1]) for i in range(len(channels) - 1)]
        )
        self.head = nn.Linear(channels[-1], 1)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=-1)).squeeze(-1)


def make_signals(rng, n):
    t = np.arange(LENGTH)
    x = 0.5 * rng.standard_normal((n, 1, LENGTH))
    y = rng.integers(0, 2, size=n)
    centers = rng.integers(4, LENGTH - 4, size=n)
    x[:, 0] += y[:, None] * 1.5 * np.exp(-0.5 * ((t[None, :] - centers[:, None]) / 1.5) ** 2)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rng = np.random.default_rng(8)
    x_train, y_train = make_signals(rng, 256)
    x_test, y_test = make_signals(rng, 128)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64)

    model = BumpNet()

    def init_fn(m):
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            fan_in = m.weight[0].numel()
            w = rng.standard_normal(tuple(m.weight.shape)) * np.sqrt(1.0 / fan_in)
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(w))
                if m.bias is not None:
                    m.bias.zero_()

    model.apply(init_fn)
    model = model.to(device)
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.SGD(
        model.blocks.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    optimizer.add_param_group({"params": model.head.parameters(), "lr": 0.3})
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.8)

    history = []
    for epoch in range(4):
        model.train()
        total = 0.0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            logits = model(xb)
            loss = criterion(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
            history.append(loss.item())
        scheduler.step()
        lrs = [group["lr"] for group in optimizer.param_groups]
        model.eval()
        with torch.no_grad():
            logits = model(x_test.to(device))
            test_loss = criterion(logits, y_test.to(device)).item()
            probs = torch.sigmoid(logits).detach().cpu().numpy()
        acc = float(np.mean((probs > 0.5) == y_test.numpy().astype(bool)))
        history.append(test_loss)
        print(
            f"epoch {epoch}: train {total / len(loader):.4f} test {test_loss:.4f} "
            f"acc {acc:.3f} lrs {', '.join(f'{lr:.4f}' for lr in lrs)}"
        )
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
