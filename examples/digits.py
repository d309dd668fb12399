"""Digits: train an MLP and a small CNN on scikit-learn's bundled 8x8 digit images (1,797 real
images, offline) with bp.Trainer, then save a checkpoint, reload it and evaluate again.

    pip install ".[examples]" && python examples/digits.py [--epochs 30] [--no-progress]

Writes digits_loss.png (the loss curves) and digits_mlp.safetensors (the checkpoint) in the
current directory."""

from __future__ import annotations

import argparse
import sys
import time

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import numpy.typing as npt
from bprop import nn

try:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ImportError:
    sys.exit('This demo needs scikit-learn, tqdm and matplotlib: pip install ".[examples]"')


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10),
    )  # fmt: skip


def train(
    name: str,
    model: nn.Module,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    x_test: npt.NDArray[np.float32],
    y_test: npt.NDArray[np.int64],
    epochs: int,
    progress: bool,
) -> tuple[bp.Trainer, bp.History, float | None]:
    optimizer = bp.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = bp.Trainer(model, F.cross_entropy, optimizer)
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=epochs, batch_size=32, seed=0,
                          validation_data=(x_test, y_test), progress=progress)  # fmt: skip
    seconds = time.perf_counter() - start
    accuracy = trainer.evaluate(x_test, y_test)["accuracy"]
    print(f"{name}: {len(history.epochs)} epochs in {seconds:.2f} s, loss {history.loss[0]:.3f}"
          f" -> {history.loss[-1]:.3f}, test accuracy {accuracy:.2%}")  # fmt: skip
    return trainer, history, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    progress = not args.no_progress

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=0.2, random_state=0,
        stratify=digits.target,
    )  # fmt: skip
    print(f"digits: {len(x_train)} training and {len(x_test)} test images, 8x8")

    bp.manual_seed(0)
    flat_train, flat_test = x_train.reshape(-1, 64), x_test.reshape(-1, 64)
    model = mlp()
    trainer, history, accuracy = train("MLP 64-128-10", model, flat_train, y_train, flat_test,
                                       y_test, args.epochs, progress)  # fmt: skip

    bp.manual_seed(0)
    train("CNN conv8-conv16", cnn(), x_train[:, None], y_train, x_test[:, None], y_test,
          max(args.epochs // 2, 1), progress)  # fmt: skip

    bp.save(model.state_dict(), "digits_mlp.safetensors")
    reloaded = mlp()
    reloaded.load_state_dict(bp.load("digits_mlp.safetensors"))
    again = bp.Trainer(reloaded, F.cross_entropy, bp.optim.SGD(reloaded.parameters(), lr=0.05))
    reloaded_accuracy = again.evaluate(flat_test, y_test)["accuracy"]
    print(f"checkpoint digits_mlp.safetensors reloaded: test accuracy {reloaded_accuracy:.2%}"
          + (" (same)" if reloaded_accuracy == accuracy else " (DIFFERENT)"))  # fmt: skip
    history.plot("digits_loss.png")
    print("loss curves: digits_loss.png")


if __name__ == "__main__":
    main()
