"""Data-parallel training across the job's ranks, written as a Ray program.

Logistic regression on synthetic data drawn from a known model: each ``Worker`` actor (one
per worker rank by default) generates its own shard of the data from ``--seed``. Every epoch
each worker computes the loss and gradient on its data, and the workers' gradients are
averaged:

* ``--mode allreduce`` (default): the workers form a collective group
  (``hpcray.util.collective``) and average with one MPI allreduce; each keeps the weights.
* ``--mode parameter-server``: the weights are split into shards, each owned by a
  ``ParameterServer`` actor; workers pull the weights and push gradient shards, and each
  server averages them (``average_gradients``) and takes the step.

A worker computes with torch on its GPU when its rank has one and with numpy otherwise:
the same formulas either way, so both modes print the same losses.

Run it inside an MPI job (rank 0 runs this script, the other ranks host the actors)::

    mpirun -n 4 python -m hpcray jobs/train.py [--epochs 10] [--workers N] [--seed 0]
                                               [--mode allreduce|parameter-server]

as a Slurm batch job, from the repository root (see jobs/train.slurm)::

    sbatch jobs/train.slurm

or on its own, where ``hpcray.init()`` starts local workers by itself::

    python jobs/train.py

It prints ``epoch N loss X`` once per epoch, then a summary line, and exits with status 1
if the final loss is not below the first one.
"""
import argparse
import sys
import time

import numpy as np

import hpcray as ray
from hpcray.util import collective

FEATURES = 32            # inputs per sample (a bias column is added)
SAMPLES = 2000           # samples per worker
SERVERS = 2              # parameter-server actors, each owning one shard of the weights
LEARNING_RATE = 1.0


def make_data(seed, worker):
    """Worker ``worker``'s samples ``(X, y)``: labels from a fixed random linear model."""
    true_weights = np.random.default_rng(seed).normal(size=FEATURES + 1)
    rng = np.random.default_rng([seed, worker + 1])
    X = np.hstack([rng.normal(size=(SAMPLES, FEATURES)), np.ones((SAMPLES, 1))])
    y = (X @ true_weights + rng.normal(size=SAMPLES) > 0).astype(np.float64)
    return X, y


def loss_and_gradient(w, X, y, xp):
    """Mean logistic loss and its gradient; ``xp`` is numpy or torch (same expressions)."""
    z = X @ w
    # log(1 + exp(z)) - y*z, written to be stable for large |z|: max(z, 0) + log1p(exp(-|z|))
    loss = ((z + xp.abs(z)) / 2 - y * z + xp.log1p(xp.exp(-xp.abs(z)))).mean()
    gradient = X.T @ (1 / (1 + xp.exp(-z)) - y) / len(y)
    return float(loss), gradient


def average_gradients(gradients):
    """The mean of the workers' gradients for one shard of the weights (parameter-server
    mode; in allreduce mode the workers average among themselves with one MPI allreduce)."""
    return np.mean(gradients, axis=0)


@ray.remote
class ParameterServer:
    """Owns one shard of the weights; applies the averaged gradient once every worker
    has pushed its gradient for the epoch."""

    def __init__(self, size, num_workers):
        self.weights = np.zeros(size)
        self.num_workers = num_workers
        self.pushed = []

    def pull(self):
        return self.weights

    def push(self, gradient):
        self.pushed.append(gradient)
        if len(self.pushed) == self.num_workers:
            self.weights = self.weights - LEARNING_RATE * average_gradients(self.pushed)
            self.pushed = []


@ray.remote
class Worker:
    """Holds one shard of the data; computes on the rank's GPU if it has one."""

    def __init__(self, servers, seed, index, num_workers):
        self.servers = servers                 # None: average by allreduce among workers
        self.num_workers = num_workers
        if servers is None:
            self.weights = np.zeros(FEATURES + 1)
            collective.init_collective_group(num_workers, index, group_name="train")
        X, y = make_data(seed, index)
        try:
            import torch
            cuda = torch.cuda.is_available()
        except ImportError:
            cuda = False
        if cuda:
            self.xp, self.device = torch, "cuda"
            self.X = torch.as_tensor(X, device="cuda")
            self.y = torch.as_tensor(y, device="cuda")
        else:
            self.xp, self.device, self.X, self.y = np, "cpu", X, y

    def where(self):
        return ray.get_runtime_context().get_rank(), self.device

    def step(self):
        """One epoch; returns this worker's loss before the step."""
        if self.servers is None:
            loss, gradient = self._loss_and_gradient(self.weights)
            collective.allreduce(gradient, group_name="train")     # sum over workers
            self.weights -= LEARNING_RATE * gradient / self.num_workers
            return loss
        # parameter-server mode: pull the weights, compute the gradient, push its shards
        weights = np.concatenate(ray.get([server.pull.remote() for server in self.servers]))
        loss, gradient = self._loss_and_gradient(weights)
        shards = np.array_split(gradient, len(self.servers))
        ray.get([server.push.remote(shard) for server, shard in zip(self.servers, shards)])
        return loss

    def _loss_and_gradient(self, weights):
        if self.device == "cuda":
            loss, gradient = loss_and_gradient(
                self.xp.as_tensor(weights, device="cuda"), self.X, self.y, self.xp)
            return loss, gradient.cpu().numpy()
        return loss_and_gradient(weights, self.X, self.y, np)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=None,
                        help="worker actors (default: one per worker rank)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", choices=("allreduce", "parameter-server"), default="allreduce",
                        help="how gradients are averaged (default: allreduce)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the loss is checked to go down)")

    ray.init()
    resources = ray.cluster_resources()
    cpus = resources.get("CPU", 1.0)
    workers = args.workers or max(int(cpus), 1)
    # One worker per rank when there are enough ranks (each holds a CPU; more workers than
    # CPUs share ranks and hold none), and a GPU each when the job has one for every worker.
    options = {"num_cpus": 1 if workers <= cpus else 0}
    if resources.get("GPU", 0) >= workers:
        options["num_gpus"] = 1

    servers = None
    if args.mode == "parameter-server":
        sizes = [len(shard) for shard in np.array_split(np.zeros(FEATURES + 1), SERVERS)]
        servers = [ParameterServer.remote(size, workers) for size in sizes]
    team = [Worker.options(**options).remote(servers, args.seed, i, workers)
            for i in range(workers)]
    placement = ray.get([worker.where.remote() for worker in team])

    start = time.perf_counter()
    losses = []
    for epoch in range(1, args.epochs + 1):
        losses.append(float(np.mean(ray.get([worker.step.remote() for worker in team]))))
        print(f"epoch {epoch} loss {losses[-1]:.6f}", flush=True)
    seconds = time.perf_counter() - start

    devices = sorted({device for _, device in placement})
    ranks = sorted({rank for rank, _ in placement})
    print(f"trained {args.epochs} epochs: {workers} workers on ranks {ranks} "
          f"({', '.join(devices)}{', 1 GPU each' if 'num_gpus' in options else ''}), "
          f"{'allreduce' if servers is None else f'{SERVERS} parameter servers'}, "
          f"loss {losses[0]:.6f} -> {losses[-1]:.6f} in {seconds:.2f} s", flush=True)
    if losses[-1] >= losses[0]:
        print("training failed: the loss did not go down", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
