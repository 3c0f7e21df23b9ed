"""Workload 3 in PyTorch: a small Fashion-MNIST CNN, cross-entropy, Adam 1e-3,
batch 64: `--epochs` epochs over the first `--n-train` training images (all
60,000 by default), each epoch timed, then the test accuracy, as
`nnc train bench/fmnist_cnn.nn` would.

    /usr/bin/python3 bench/torch_fmnist_cnn.py --epochs 1 --threads 1
"""
import torch
from torch import nn

import torch_common as tc

a = tc.parse_args(batch=64)
x, y = tc.fashion("train")
x, y = x[:a.n_train], y[:a.n_train]
xt, yt = tc.fashion("test")

net = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # [B, 32, 14, 14]
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # [B, 64, 7, 7]
    nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
gen = torch.Generator().manual_seed(a.seed)

times = tc.train_epochs(net, opt, nn.CrossEntropyLoss(), x, y, a.batch, a.epochs, gen)
tc.epoch_report("fmnist_cnn", a, times, tc.accuracy(net, xt, yt))
