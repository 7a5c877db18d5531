"""Broadcast of a large object to every simulated node: a tree of copies vs point-to-point.

    python benchmarks/broadcast.py [--nodes 4] [--size 1G] [--reps 5]

runs three jobs one after the other and prints them side by side:

* ``tree``: hpcray as it is (``HPCRAY_COPY_FANOUT=1``): the nodes that asked first serve the
  later ones, a binomial tree;
* ``point-to-point``: ``HPCRAY_COPY_FANOUT=0``: every node reads the object's home node;
* ``mpi4py Bcast``: a bare ``comm.Bcast`` of the same buffer from rank 0 to the others.

Each hpcray job is ``mpiexec -n NODES+1 python -m hpcray --ranks-per-node 1``: the driver's
node holds the object (a ``put``), and one task on each other node reads it, all at once.
Figures: median time of the broadcast (from submitting the tasks to the last result), GB/s
per node (size / time), and the most bytes one node sent: on a real cluster each node's link
carries that much, so it bounds the time by link bandwidth (direct: NODES x size from the home
node; tree: about log2(NODES + 1) x size).

On one host every simulated node shares the same memory bus and cores: a copy costs the same
CPU and memory traffic wherever it comes from, so in time the tree gains little here; what it
saves is the home node's link, which the last column shows. The first three repetitions warm
fresh /dev/shm pages (very slow on a VM) and are not counted.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

WARMUP = 3


def _bytes(text):
    from hpcray.config import parse_bytes
    return parse_bytes(text, "--size")


def inner(size, reps):
    """Under hpcray: broadcast ``reps`` fresh objects; print one JSON line of figures."""
    import hpcray as ray
    from hpcray.api import _runtime, submit_task

    @ray.remote
    def read(box):
        a = ray.get(box[0])
        return int(a[-1])

    @ray.remote
    def served():
        return _runtime().copies.served

    ray.init()
    nodes = len(ray.nodes())
    def counts():
        return [_runtime().copies.served] + ray.get(
            [submit_task(served, (), {}, node_hint=node) for node in range(1, nodes)])

    source = np.arange(size // 8, dtype=np.int64)
    times, most_sent = [], []
    for rep in range(WARMUP + reps):
        source[-1] = rep
        ref = ray.put(source)
        before = counts()
        start = time.perf_counter()
        out = ray.get([submit_task(read, ([ref],), {}, node_hint=node)
                       for node in range(1, nodes)])
        elapsed = time.perf_counter() - start
        assert out == [rep] * (nodes - 1), out
        if rep >= WARMUP:
            times.append(elapsed)
            most_sent.append(max(b - a for a, b in zip(before, counts())) * size)
        del ref
    print("FIGURES " + json.dumps({"seconds": statistics.median(times),
                                   "most_sent": statistics.median(most_sent)}), flush=True)


def bare_mpi4py(size, reps):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    buffer = np.arange(size // 8, dtype=np.int64)
    times = []
    for rep in range(WARMUP + reps):
        comm.Barrier()
        start = time.perf_counter()
        comm.Bcast(buffer, root=0)
        elapsed = comm.allreduce(time.perf_counter() - start, op=MPI.MAX)
        if rep >= WARMUP:
            times.append(elapsed)
    if comm.Get_rank() == 0:
        print("FIGURES " + json.dumps({"seconds": statistics.median(times), "most_sent": None}),
              flush=True)


def _run(command, env):
    out = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=900)
    for line in out.stdout.splitlines():
        if line.startswith("FIGURES "):
            return json.loads(line[len("FIGURES "):])
    sys.exit(f"{' '.join(command)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def outer(args):
    bindir = os.path.dirname(sys.executable)
    mpiexec = os.path.join(bindir, "mpiexec") if os.path.exists(
        os.path.join(bindir, "mpiexec")) else "mpiexec"
    ranks = ["-n", str(args.nodes + 1)]
    store = str(int(args.size * 2.5))
    hpcray = [mpiexec, *ranks, sys.executable, "-m", "hpcray", "--ranks-per-node", "1",
              "--object-store-memory", store, __file__, "--inner",
              "--size", str(args.size), "--reps", str(args.reps)]
    rows = [("hpcray tree (HPCRAY_COPY_FANOUT=1)", hpcray, {"HPCRAY_COPY_FANOUT": "1"}),
            ("hpcray point-to-point (FANOUT=0)", hpcray, {"HPCRAY_COPY_FANOUT": "0"}),
            ("mpi4py Bcast", [mpiexec, *ranks, sys.executable, __file__, "--mpi4py",
                              "--size", str(args.size), "--reps", str(args.reps)], {})]
    print(f"broadcast of {args.size / 2**30:.2f} GiB from the driver's node to {args.nodes} "
          f"simulated nodes, median of {args.reps}")
    print(f"{'':38} {'ms':>8} {'GB/s/node':>10} {'most sent by a node':>20}")
    for name, command, env in rows:
        figures = _run(command, env)
        seconds, sent = figures["seconds"], figures["most_sent"]
        sent = "" if sent is None else f"{sent / 1e9:.2f} GB"
        print(f"{name:38} {seconds * 1e3:8.0f} {args.size / seconds / 1e9:10.2f} {sent:>20}",
              flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4, help="nodes that receive the object")
    parser.add_argument("--size", type=_bytes, default=1 << 30, help="bytes (1G, 256M, ...)")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mpi4py", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.size, args.reps)
    elif args.mpi4py:
        bare_mpi4py(args.size, args.reps)
    else:
        outer(args)


if __name__ == "__main__":
    main()
