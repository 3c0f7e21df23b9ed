"""Workload 4 in PyTorch: autoencoder 784-128-64-128-784 (ReLU, sigmoid output),
MSE against the input, Adam 1e-3. Times one training step on the first `--batch`
Fashion-MNIST images, as `nnc bench bench/autoencoder.nn` does.

    /usr/bin/python3 bench/torch_autoencoder.py --batch 128 --threads 1
"""
import torch
from torch import nn

import torch_common as tc

a = tc.parse_args(batch=128)
x, _ = tc.fashion("train")          # all of it in memory, as nnc bench loads it
xb = x[:a.batch].flatten(1)

net = nn.Sequential(
    nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),      # encoder
    nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784), nn.Sigmoid())   # decoder
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
mse = nn.MSELoss()


def step():
    loss = mse(net(xb), xb)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


tc.step_report("autoencoder", a, step)
