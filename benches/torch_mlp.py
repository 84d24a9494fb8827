"""PyTorch CPU reference for benches/mlp.rs: the same MLP, rows, batches and optimiser.

Shapes: `tabular`, 10 features -> 32 -> 2 classes, batch 32, 2,000 rows; `fidelity`,
40 -> 128 -> 128 -> 10, batch 128, 4,096 rows. Gaussian features, random labels,
cross-entropy, AdamW (lr 0.01, weight decay 1e-4), a fresh shuffle each epoch, no validation;
one warm-up run of 2 epochs, then EPOCHS timed epochs (network built inside the timing, as
kdlab's train does).
Usage: torch_mlp.py EPOCHS THREADS [tabular|fidelity]
"""
import sys
import time

import torch
from torch import nn

epochs, threads = int(sys.argv[1]), int(sys.argv[2])
shape = sys.argv[3] if len(sys.argv) > 3 else "tabular"
torch.set_num_threads(threads)
torch.manual_seed(1)
features, hidden, classes, batch, rows = {
    "tabular": (10, [32], 2, 32, 2000),
    "fidelity": (40, [128, 128], 10, 128, 4096),
}[shape]
x = torch.randn(rows, features)
y = torch.randint(0, classes, (rows,))


def run(epochs):
    start = time.perf_counter()
    layers, width = [], features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    net = nn.Sequential(*layers, nn.Linear(width, classes))
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(rows)
        for i in range(0, rows, batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
    return time.perf_counter() - start


run(2)
steps = epochs * -(-rows // batch)
rate = steps / run(epochs)
widths = "-".join(str(h) for h in hidden)
print(f"pytorch mlp: {rate:.1f} steps/s ({threads} threads, {shape}: {features}-{widths}-{classes}, batch {batch}, {rows} rows, {epochs} epochs, torch {torch.__version__})")
