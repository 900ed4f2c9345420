"""Train the digits classifier: a short random search on a log scale, then a cosine-decayed run.

    python -m digits.train [--trials N] [--epochs N]
"""
from __future__ import annotations

import argparse
import math
import random

import torch
from torch import nn

from .data import load
from .layers import DigitsNet


def train(lr: float, weight_decay: float, epochs: int, seed: int = 0) -> tuple:
    """Train from scratch; return (model, test accuracy)."""
    torch.manual_seed(seed)
    train_x, train_y, test_x, test_y = load()
    model = DigitsNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(train_y)).split(64):
            optimizer.zero_grad()
            loss_fn(model(train_x[batch]), train_y[batch]).backward()
            optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
    return model, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    sampler = random.Random(0)
    best = (0.0, 0.0, -math.inf)
    for trial in range(args.trials):
        lr = 10 ** sampler.uniform(-3.5, -1.5)
        weight_decay = 10 ** sampler.uniform(-5, -2)
        _, accuracy = train(lr, weight_decay, epochs=max(1, args.epochs // 3))
        print(f"trial {trial}: lr={lr:.2e} weight_decay={weight_decay:.1e} accuracy={accuracy:.3f}")
        if accuracy > best[2]:
            best = (lr, weight_decay, accuracy)
    _, accuracy = train(best[0], best[1], epochs=args.epochs)
    print(f"final: lr={best[0]:.2e} weight_decay={best[1]:.1e} test accuracy={accuracy:.3f}")


if __name__ == "__main__":
    main()
