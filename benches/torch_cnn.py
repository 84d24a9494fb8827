"""PyTorch CPU reference for benches/cnn.rs: the same CNN, batch, data shape and optimiser.

Networks: `bench` (the default), conv 1->16 (3x3, pad 1) -> ReLU -> conv 16->32 (3x3,
stride 2, pad 1) -> ReLU -> conv 32->64 (3x3, stride 2, pad 1) -> ReLU -> global average
pool -> linear 64->10; `attention`, conv 8-16-32-32 with layers 2 and 3 at stride 2, He
(Kaiming uniform) initialisation. Batch 64 of 28x28 random images, random labels,
cross-entropy, plain SGD (lr 0.01), 10 warm-up steps, then the timed steps.
Usage: torch_cnn.py STEPS THREADS [bench|attention]
"""
import sys
import time

import torch
from torch import nn

steps, threads = int(sys.argv[1]), int(sys.argv[2])
shape = sys.argv[3] if len(sys.argv) > 3 else "bench"
torch.set_num_threads(threads)
torch.manual_seed(1)
layers = {"bench": [(16, 1), (32, 2), (64, 2)], "attention": [(8, 1), (16, 2), (32, 2), (32, 1)]}[shape]
modules, c_in = [], 1
for c_out, stride in layers:
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
    if shape == "attention":
        nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")
    modules += [conv, nn.ReLU()]
    c_in = c_out
net = nn.Sequential(*modules, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 10))
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
print(f"pytorch cnn: {rate:.1f} steps/s ({threads} threads, {shape} network, batch 64, 28x28, {steps} steps, torch {torch.__version__})")
