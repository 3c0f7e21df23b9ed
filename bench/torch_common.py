"""Shared helpers of the PyTorch side of nnc's benchmarks.

Each bench/torch_*.py script builds one workload, times it and prints one line
that bench/run.sh parses:

    RESULT workload=NAME key=value key=value ...

Threads: run.sh sets OPENBLAS_NUM_THREADS and OMP_NUM_THREADS (and, for one
of the runs, OMP_WAIT_POLICY=PASSIVE) before Python starts, because OpenBLAS
and libgomp read them when they are loaded; --threads N then calls
torch.set_num_threads(N).
"""

import argparse
import gzip
import os
import statistics
import time

import numpy as np
import torch

FASHION = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
COVID = os.path.join(HERE, "..", "data", "hw1", "covid.train.csv")


def parse_args(batch, extra=None):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--repeats", type=int, default=11, help="timed runs after the warm-up")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--n-train", type=int, default=60000, help="train on the first N images")
    p.add_argument("--seed", type=int, default=0)
    if extra:
        extra(p)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    return a


def read_idx(path):
    """An IDX file (gzip-compressed) as a numpy array: magic 0 0 type ndim, then
    ndim big-endian int32 sizes, then the data (unsigned bytes here)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion(split="train"):
    """Fashion-MNIST as nnc reads it: x float32 [N, 1, 28, 28] in [0, 1], y int64 [N]."""
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(f"{FASHION}/{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(f"{FASHION}/{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(y)


def covid():
    """HW1's training data: columns 0..116 as x (id included, 117), 117 as y."""
    d = np.loadtxt(COVID, delimiter=",", skiprows=1, dtype=np.float32)
    return torch.from_numpy(d[:, :117].copy()), torch.from_numpy(d[:, 117].copy())


def time_step(step, repeats, min_seconds=0.05, warmup=5):
    """Like `nnc bench`: warm up, then `repeats` measurements, each of enough
    back-to-back steps to last at least min_seconds. Returns ms per step:
    (median, min, max)."""
    t = time.perf_counter()
    step()
    once = time.perf_counter() - t
    inner = 1
    while inner * once < min_seconds and inner < 100000:
        inner *= 2
    for _ in range(warmup):
        step()
    ms = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            step()
        ms.append((time.perf_counter() - t) * 1000 / inner)
    return statistics.median(ms), min(ms), max(ms)


def train_epochs(net, opt, loss_fn, x, y, batch, epochs, gen):
    """Epochs over (x, y) in a fresh random order each, the last batch smaller,
    as nnc train does; the loss and the accuracy of every batch are kept, as
    nnc's training step computes them. Returns the wall time of each epoch, ms."""
    n = x.shape[0]
    times = []
    net.train()
    for _ in range(epochs):
        t = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        loss_sum, correct = 0.0, 0
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            xb, yb = x[idx], y[idx]
            logits = net(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        times.append((time.perf_counter() - t) * 1000)
    return times


@torch.no_grad()
def accuracy(net, x, y, batch=1000):
    net.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct / x.shape[0]


def report(workload, **kv):
    """The one line run.sh reads."""
    parts = [f"workload={workload}", f"torch={torch.__version__}",
             f"threads={torch.get_num_threads()}"]
    for k, v in kv.items():
        parts.append(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}")
    print("RESULT " + " ".join(parts), flush=True)


def step_report(workload, a, step):
    med, lo, hi = time_step(step, a.repeats)
    report(workload, batch=a.batch, ms_median=med, ms_min=lo, ms_max=hi,
           samples_per_s=a.batch * 1000.0 / med)


def epoch_report(workload, a, times, test_acc):
    report(workload, batch=a.batch, images=a.n_train, epochs=len(times),
           epoch_ms_median=statistics.median(times), epoch_ms_min=min(times),
           epoch_ms_max=max(times), test_acc=test_acc)
