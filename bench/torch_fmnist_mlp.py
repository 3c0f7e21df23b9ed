"""Workload 2 in PyTorch: Fashion-MNIST MLP 784-512-256-10 with ReLU, cross-entropy,
Adam 1e-3, batch 128: `--epochs` epochs over the first `--n-train` training images
(all 60,000 by default), each epoch timed, then the test accuracy, as
`nnc train bench/fmnist_mlp.nn` does.

    /usr/bin/python3 bench/torch_fmnist_mlp.py --epochs 1 --threads 1
"""
import torch
from torch import nn

import torch_common as tc

a = tc.parse_args(batch=128)
x, y = tc.fashion("train")
x, y = x[:a.n_train], y[:a.n_train]
xt, yt = tc.fashion("test")

net = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(),
                    nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
gen = torch.Generator().manual_seed(a.seed)

times = tc.train_epochs(net, opt, nn.CrossEntropyLoss(), x, y, a.batch, a.epochs, gen)
tc.epoch_report("fmnist_mlp", a, times, tc.accuracy(net, xt, yt))
