"""Workload 5 in PyTorch: a DCGAN for 28x28 Fashion-MNIST. Times one discriminator
step followed by one generator step (BCE with logits, Adam 2e-4, betas 0.5/0.999)
on the first `--batch` real images, with fresh noise every step, as
bench/dcgan.nn describes.

    /usr/bin/python3 bench/torch_dcgan.py --batch 64 --threads 1
"""
import torch
from torch import nn

import torch_common as tc

Z = 100
a = tc.parse_args(batch=64)
x, _ = tc.fashion("train")
real = x[:a.batch] * 2 - 1                                       # pixels to [-1, 1]

G = nn.Sequential(
    nn.Linear(Z, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
    nn.Unflatten(1, (128, 7, 7)),
    nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),   # [B, 64, 14, 14]
    nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), nn.Tanh())                        # [B, 1, 28, 28]
D = nn.Sequential(
    nn.Conv2d(1, 64, 4, stride=2, padding=1), nn.LeakyReLU(0.2),                          # [B, 64, 14, 14]
    nn.Conv2d(64, 128, 4, stride=2, padding=1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),   # [B, 128, 7, 7]
    nn.Flatten(), nn.Linear(128 * 7 * 7, 1), nn.Flatten(0))                               # one logit
opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
ones, zeros = torch.ones(a.batch), torch.zeros(a.batch)


def step():
    fake = G(torch.randn(a.batch, Z)).detach()                   # the D step must not move G
    loss_d = bce(D(real), ones) + bce(D(fake), zeros)
    loss_d.backward()
    opt_d.step()
    opt_d.zero_grad(set_to_none=True)
    loss_g = bce(D(G(torch.randn(a.batch, Z))), ones)
    loss_g.backward()
    opt_g.step()
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)                             # D got gradients from the G step


tc.step_report("dcgan", a, step)
