"""Workload 1 in PyTorch: HW1's MLP 117-16-8-1, MSE, SGD lr 1e-5 momentum 0.9.
Times one training step (forward, MSE, backward, optimizer step, zero_grad) on
the first `--batch` rows of covid.train.csv, as `nnc bench bench/hw1_mlp.nn` does.

    /usr/bin/python3 bench/torch_hw1_mlp.py --batch 256 --threads 1
"""
import torch
from torch import nn

import torch_common as tc

a = tc.parse_args(batch=256)
x, y = tc.covid()
xb, yb = x[:a.batch], y[:a.batch]

net = nn.Sequential(nn.Linear(117, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1))
opt = torch.optim.SGD(net.parameters(), lr=1e-5, momentum=0.9)
mse = nn.MSELoss()


def step():
    loss = mse(net(xb).squeeze(1), yb)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


tc.step_report("hw1_mlp", a, step)
