"""An MNIST-style CNN script on synthetic 12x12 images of bars (three classes).

Conv2d without bias before BatchNorm2d (running statistics used in eval mode), MaxPool2d,
Dropout, Flatten, CrossEntropyLoss, Adam and StepLR stepped once an epoch, accuracy counted
with `argmax`. The weights are set by a loop over `named_parameters()` with numpy draws.
"""

import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def make_images(rng, n):
    images = 0.3 * rng.standard_normal((n, 1, 12, 12))
    labels = rng.integers(0, 3, size=n)
    for i, label in enumerate(labels):
        pos = rng.integers(2, 10)
        if label == 0:
            images[i, 0, pos, :] += 1.0
        elif label == 1:
            images[i, 0, :, pos] += 1.0
        else:
            images[i, 0, np.arange(12), np.arange(12)] += 1.0
    return torch.tensor(images, dtype=torch.float32), torch.tensor(labels)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.0)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 3 * 3, 3)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = self.dropout(self.flatten(x))
        return self.fc(x)


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(7)
    train_x, train_y = make_images(rng, 192)
    test_x, test_y = make_images(rng, 96)
    train_loader = DataLoader(TensorDataset(train_x, train_y), batch_size=32, shuffle=False)
    test_loader = DataLoader(TensorDataset(test_x, test_y), batch_size=48, shuffle=False)

    model = Net()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("weight") and param.dim() > 1:
                fan_in = param[0].numel()
                w = rng.standard_normal(tuple(param.shape)) * np.sqrt(2.0 / fan_in)
                param.copy_(torch.from_numpy(w).float())
            elif name.startswith("fc"):
                param.zero_()
    model = model.to(device)

    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    history = []
    for epoch in range(1, 4):
        model.train()
        for batch_idx, (data, target) in enumerate(train_loader):
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            history.append(loss.item())
            if batch_idx % 3 == 0:
                print(
                    f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)}]"
                    f"\tLoss: {loss.item():.6f}"
                )
        scheduler.step()

        model.eval()
        test_loss = 0.0
        correct = 0
        with torch.no_grad():
            for data, target in test_loader:
                data, target = data.to(device), target.to(device)
                output = model(data)
                test_loss += F.cross_entropy(output, target, reduction="sum").item()
                pred = output.argmax(dim=1, keepdim=True)
                correct += pred.eq(target.view_as(pred)).sum().item()
        test_loss /= len(test_loader.dataset)
        history.append(test_loss)
        print(
            f"Test set: Average loss: {test_loss:.4f}, Accuracy: {correct}/"
            f"{len(test_loader.dataset)} ({100.0 * correct / len(test_loader.dataset):.0f}%)"
            f", lr {scheduler.get_last_lr()[0]:.4f}"
        )

    history.append(model.bn1.running_mean.sum().item())
    history.append(model.bn2.running_var.mean().item())
    print("LOSSES", json.dumps(history))


if __name__ == "__main__":
    main()
