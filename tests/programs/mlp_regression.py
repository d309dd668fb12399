"""The regression tutorial: an MLP fits a smooth function of three inputs.

`nn.Sequential`, `nn.MSELoss`, SGD with momentum under a `OneCycleLR` schedule stepped every
batch, a `DataLoader` over a `TensorDataset`, `model.apply(init_fn)` with weights drawn by
numpy, per-epoch train loss and a test loss under `torch.no_grad()` in eval mode.
"""

import json

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

device = "cuda" if torch.cuda.is_available() else "cpu"
rng = np.random.default_rng(0)


def make_data(n):
    X = rng.uniform(-2.0, 2.0, size=(n, 3)).astype(np.float32)
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] * X[:, 2:3] + 0.05 * rng.standard_normal((n, 1))
    return torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))


X_train, y_train = make_data(256)
X_test, y_test = make_data(128)
train_loader = DataLoader(TensorDataset(X_train, y_train), batch_size=32, shuffle=False)
test_loader = DataLoader(TensorDataset(X_test, y_test), batch_size=64)

model = nn.Sequential(
    nn.Linear(3, 32),
    nn.Tanh(),
    nn.Linear(32, 32),
    nn.ReLU(),
    nn.Linear(32, 1),
)


def init_fn(m):
    if isinstance(m, nn.Linear):
        w = rng.standard_normal((m.out_features, m.in_features)) / np.sqrt(m.in_features)
        with torch.no_grad():
            m.weight.copy_(torch.tensor(w, dtype=torch.float32))
        nn.init.constant_(m.bias, 0.01)


model.apply(init_fn)
model = model.to(device)
criterion = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
scheduler = torch.optim.lr_scheduler.OneCycleLR(
    optimizer, max_lr=0.1, epochs=6, steps_per_epoch=len(train_loader)
)

history = []
for epoch in range(6):
    model.train()
    running_loss = 0.0
    for inputs, targets in train_loader:
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        running_loss += loss.item() * inputs.size(0)
    train_loss = running_loss / len(train_loader.dataset)

    model.eval()
    test_loss = 0.0
    with torch.no_grad():
        for inputs, targets in test_loader:
            inputs, targets = inputs.to(device), targets.to(device)
            test_loss += criterion(model(inputs), targets).item() * len(inputs)
    test_loss /= len(test_loader.dataset)
    history += [train_loss, test_loss]
    print(f"Epoch [{epoch + 1}/6], Loss: {train_loss:.4f}, Test loss: {test_loss:.4f}")

with torch.no_grad():
    sample = torch.tensor([[0.5, -1.0, 1.5]], device=device)
    print(f"prediction at {sample.tolist()}: {model(sample).item():.4f}")
print("LOSSES", json.dumps(history))
