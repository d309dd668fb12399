"""Checkpoints: keep the best model with `copy.deepcopy`, save, load and resume training.

A classifier with decay / no-decay parameter groups in AdamW and a cosine schedule trains for
a few epochs, keeping `copy.deepcopy(model)` whenever the validation loss improves. The full
training state (model, optimizer, scheduler, epoch, best loss) goes to a file with
`torch.save`, the weights also through an `io.BytesIO`; a fresh model and optimizer loaded from
the file resume and must reproduce the losses of the run that went on uninterrupted.
"""

import copy
import io
import json
import os
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

device = "cuda" if torch.cuda.is_available() else "cpu"


class Classifier(nn.Module):
    def __init__(self, n_in=4, n_hidden=16, n_classes=3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.LayerNorm(n_hidden))
        self.head = nn.Linear(n_hidden, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def numpy_init(seed):
    rng = np.random.default_rng(seed)

    def init_fn(m):
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.copy_(torch.tensor(rng.standard_normal(tuple(m.weight.shape)) * 0.5))
                m.bias.copy_(torch.tensor(rng.standard_normal(tuple(m.bias.shape)) * 0.1))

    return init_fn


def make_optimizer(model):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if name.endswith("weight") and p.dim() == 2 else no_decay).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.02,
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
    return optimizer, scheduler


def main():
    rng = np.random.default_rng(21)
    centers = rng.standard_normal((3, 4)) * 2.0
    labels = rng.integers(0, 3, size=240)
    feats = centers[labels] + rng.standard_normal((240, 4))
    x = torch.tensor(feats, dtype=torch.float32, device=device)
    y = torch.tensor(labels, device=device)
    x_train, y_train, x_val, y_val = x[:192], y[:192], x[192:], y[192:]

    def train_epoch(model, optimizer, scheduler):
        model.train()
        losses = []
        for i in range(0, len(x_train), 64):
            loss = F.cross_entropy(model(x_train[i : i + 64]), y_train[i : i + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
        return losses

    @torch.no_grad()
    def val_loss(model):
        model.eval()
        return F.cross_entropy(model(x_val), y_val).item()

    model = Classifier().to(device)
    model.apply(numpy_init(0))
    optimizer, scheduler = make_optimizer(model)

    history = []
    best_val, best_model = float("inf"), None
    for epoch in range(4):
        history += train_epoch(model, optimizer, scheduler)
        val = val_loss(model)
        history.append(val)
        if val < best_val:
            best_val, best_model = val, copy.deepcopy(model)
        print(f"epoch {epoch}: val loss {val:.4f} (best {best_val:.4f})")

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ckpt.pt")
        torch.save(
            {
                "epoch": 4,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "best_val": best_val,
                "note": "after four epochs",
            },
            path,
        )
        buffer = io.BytesIO()
        torch.save(best_model.state_dict(), buffer)

        # The uninterrupted run goes on for two more epochs.
        straight = []
        for _ in range(2):
            straight += train_epoch(model, optimizer, scheduler)
        print("straight:", " ".join(f"{v:.4f}" for v in straight))

        # A fresh process would do this: build, load, resume.
        resumed_model = Classifier().to(device)
        resumed_model.apply(numpy_init(99))
        resumed_opt, resumed_sched = make_optimizer(resumed_model)
        checkpoint = torch.load(path, map_location=device)
        resumed_model.load_state_dict(checkpoint["model"])
        resumed_opt.load_state_dict(checkpoint["optimizer"])
        resumed_sched.load_state_dict(checkpoint["scheduler"])
        start_epoch = checkpoint["epoch"]
        print(
            f"resuming at epoch {start_epoch} ({checkpoint['note']}), "
            f"best val {checkpoint['best_val']:.4f}"
        )
        resumed = []
        for _ in range(start_epoch, start_epoch + 2):
            resumed += train_epoch(resumed_model, resumed_opt, resumed_sched)
        print("resumed: ", " ".join(f"{v:.4f}" for v in resumed))
        assert np.allclose(straight, resumed, rtol=1e-5), (straight, resumed)

    buffer.seek(0)
    restored = Classifier().to(device)
    restored.load_state_dict(torch.load(buffer))
    history += straight + resumed
    history += [best_val, val_loss(best_model), val_loss(restored), val_loss(model)]
    print(
        f"best model val {val_loss(best_model):.4f}, restored {val_loss(restored):.4f}, "
        f"last model val {val_loss(model):.4f}"
    )
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
