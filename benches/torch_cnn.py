"""PyTorch CPU reference for benches/cnn.rs: the same CNN, batch, data shape and optimiser.

conv 1->16 (3x3, pad 1) -> ReLU -> conv 16->32 (3x3, stride 2, pad 1) -> ReLU ->
conv 32->64 (3x3, stride 2, pad 1) -> ReLU -> global average pool -> linear 64->10;
batch 64 of 28x28 random images, random labels, cross-entropy, plain SGD (lr 0.01),
10 warm-up steps, then the timed steps. Usage: torch_cnn.py STEPS THREADS
"""
import sys
import time

import torch
from torch import nn

steps, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(1)
net = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
    nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
    nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
)
x = torch.rand(64, 1, 28, 28)
y = torch.randint(0, 10, (64,))
opt = torch.optim.SGD(net.parameters(), lr=0.01)
loss_fn = nn.CrossEntropyLoss()


def step():
    opt.zero_grad()
    loss_fn(net(x), y).backward()
    opt.step()


for _ in range(10):
    step()
t = time.perf_counter()
for _ in range(steps):
    step()
rate = steps / (time.perf_counter() - t)
print(f"pytorch cnn: {rate:.1f} steps/s ({threads} threads, batch 64, 28x28, {steps} steps, torch {torch.__version__})")
