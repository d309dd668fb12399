"""Fashion-MNIST: a small CNN (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Dropout, Linear) trained
with a DataLoader, Adam or SGD with momentum and a learning-rate schedule, to over 91% test
accuracy on the 10,000 test images.

    apt-get install -y dataset-fashion-mnist
    python examples/fashion_mnist.py [--epochs 5] [--limit N] [--data DIR]

The images are read with numpy from the four IDX files (train-images-idx3-ubyte.gz, ...) in
--data (default /usr/share/datasets/fashion-mnist). Written with PyTorch's names only: changing
the imports to torch runs the same program under PyTorch.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import bprop as bp
import bprop.nn as nn
import bprop.nn.functional as F
import numpy as np
import numpy.typing as npt
from bprop.utils.data import DataLoader, TensorDataset

DEFAULT_DATA = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]  # fmt: skip
MEAN, STD = 0.2860, 0.3530  # of the training images' pixels in [0, 1]


def read_idx(path: Path) -> npt.NDArray[np.uint8]:
    """An IDX file (gzip-compressed): a magic number giving the rank, the sizes, the bytes."""
    if not path.is_file():
        sys.exit(f"fashion_mnist.py: {path} is missing; install the data with\n"
                 "    apt-get install -y dataset-fashion-mnist\n"
                 "or pass the folder holding the four IDX .gz files with --data")  # fmt: skip
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08: unsigned bytes
        sys.exit(f"fashion_mnist.py: {path} is not an IDX file of unsigned bytes")
    rank = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(rank))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def load(folder: Path, split: str) -> tuple[bp.Tensor, bp.Tensor]:
    """Images as (n, 1, 28, 28) float32, standardised; labels as int64."""
    images = read_idx(folder / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{split}-labels-idx1-ubyte.gz")
    x = ((images.astype(np.float32) / 255.0 - MEAN) / STD)[:, None, :, :]
    return bp.from_numpy(np.ascontiguousarray(x)), bp.from_numpy(labels.astype(np.int64))


def block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU, 2x2 max pool: halves the image side."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.MaxPool2d(2),
    )  # fmt: skip


def cnn(width: int, dropout: float, hidden: int = 128) -> nn.Sequential:
    """28x28 -> 14x14 -> 7x7 feature maps, then two fully connected layers."""
    return nn.Sequential(
        block(1, width), block(width, 2 * width), nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(2 * width * 7 * 7, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, 10),
    )  # fmt: skip


def evaluate(model: nn.Module, loader: DataLoader) -> tuple[float, float]:
    """Mean loss and accuracy over a loader, in eval mode (running batch-norm statistics)."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with bp.no_grad():
        for x, y in loader:
            logits = model(x)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(dim=1) == y).sum().item())
            count += y.shape[0]
    model.train()
    return total_loss / count, correct / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of IDX files")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="use only N training images")
    parser.add_argument("--test-limit", type=int, default=None, help="use only N test images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=16, help="channels of the first conv")
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--lr", type=float, default=None, help="default 2e-3 (Adam), 0.05 (SGD)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x_train, y_train = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    if args.test_limit is not None:
        x_test, y_test = x_test[: args.test_limit], y_test[: args.test_limit]
    print(f"Fashion-MNIST: {x_train.shape[0]} training and {x_test.shape[0]} test images, 28x28")

    bp.manual_seed(args.seed)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size,
                              shuffle=True)  # fmt: skip
    test_loader = DataLoader(TensorDataset(x_test, y_test), batch_size=1000)
    model = cnn(args.width, args.dropout)
    optimizer = (
        bp.optim.Adam(model.parameters(), lr=args.lr or 2e-3)
        if args.optimizer == "adam"
        else bp.optim.SGD(model.parameters(), lr=args.lr or 0.05, momentum=0.9, nesterov=True)
    )
    # Cosine decay per batch, over the whole run: fast early progress, a fine finish.
    scheduler = bp.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=args.epochs * len(train_loader)
    )
    parameters = sum(p.numel() for p in model.parameters())
    print(f"CNN: {parameters} parameters, {len(train_loader)} batches of {args.batch_size}")

    start = time.perf_counter()
    accuracy = 0.0
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        total, count = 0.0, 0
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * y.shape[0]
            count += y.shape[0]
        test_loss, accuracy = evaluate(model, test_loader)
        print(f"epoch {epoch:2d}  train loss {total / count:.4f}  test loss {test_loss:.4f}"
              f"  test accuracy {accuracy:.2%}  ({time.perf_counter() - epoch_start:.1f} s)",
              flush=True)  # fmt: skip
    elapsed = time.perf_counter() - start
    print(f"{args.epochs} epochs in {elapsed:.1f} s; final test accuracy {accuracy:.2%}")


if __name__ == "__main__":
    main()
