"""The floor of a task's round trip with worker processes, on this machine: the same four
hops with none of hpcray's work in between.

A task submitted by the driver crosses driver rank -> executing rank (MPI) -> its worker
process (Unix socket) -> executing rank -> driver rank. This script sends a 400-byte pickle
along that path, each side waiting as hpcray's do (MPI: ``improbe`` in a loop, yielding the
CPU; the worker: ``recv``, a 50 us spin, then ``select``; the rank: ``select`` on its worker),
and prints the median round trip of:

* ``mpi``: driver rank <-> executing rank only (the floor of in-rank execution);
* ``socket``: executing rank <-> worker process only;
* ``chain``: all four hops (the floor of a task's round trip with worker processes);
* ``wake``: executing rank <-> worker process when both sides sleep in ``select`` with no
  spin at all: the cost of waking a sleeping process, twice per round trip. On a virtual
  machine this is what any hop costs whose receiver was not polling hot.

hpcray's ``sync_task_round_trip_us`` adds its own work (submission, scheduling, records,
results) on top of the ``chain`` figure. Run with two ranks::

    mpirun -n 2 python benchmarks/hops.py
"""
import os
import pickle
import select
import socket
import sys
import time

from mpi4py import MPI

ROUNDS = 3000
MODES = ("mpi", "socket", "chain", "wake")
PAYLOAD = b"x" * 400


def mpi_receive(comm, source):
    while True:
        message = comm.improbe(source, 0)
        if message is not None:
            return message.recv()
        os.sched_yield()


def socket_receive(sock, spin):
    started = time.monotonic()
    while True:
        try:
            return sock.recv(65536, socket.MSG_DONTWAIT)
        except BlockingIOError:
            if time.monotonic() - started < spin:
                os.sched_yield()
                continue
            select.select([sock], [], [])


def worker_process(sock):
    spin = 5e-5
    while True:
        data = socket_receive(sock, spin)
        if not data or data == b"end":
            os._exit(0)
        message = pickle.loads(data)
        spin = 0.0 if message[0] == "wake" else 5e-5
        sock.send(pickle.dumps(("done", message)))


def through_worker(sock, message):
    sock.send(pickle.dumps(message))
    select.select([sock], [], [], None if message[0] == "wake" else 0.0002)
    return pickle.loads(socket_receive(sock, 0.0))


def median_us(samples):
    samples.sort()
    return samples[len(samples) // 2] * 1e6


def main():
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    if comm.Get_size() != 2:
        sys.exit("run with two ranks: mpirun -n 2 python benchmarks/hops.py")
    if rank == 1:
        mine, theirs = socket.socketpair()
        if os.fork() == 0:
            mine.close()
            worker_process(theirs)
        theirs.close()
    comm.Barrier()
    results = {}
    for mode in MODES:
        if rank == 0:
            samples = []
            for i in range(ROUNDS):
                started = time.perf_counter()
                comm.isend((mode, i, PAYLOAD), 1, 0)
                mpi_receive(comm, 1)
                samples.append(time.perf_counter() - started)
            results[mode] = median_us(samples)
        else:
            socket_samples = []
            for _ in range(ROUNDS):
                message = mpi_receive(comm, 0)
                if mode == "chain":
                    message = through_worker(mine, message)
                elif mode in ("socket", "wake"):
                    started = time.perf_counter()
                    message = through_worker(mine, message)
                    socket_samples.append(time.perf_counter() - started)
                comm.isend(message, 0, 0)
            if socket_samples:
                comm.send(median_us(socket_samples), 0, 1)
        if rank == 0 and mode in ("socket", "wake"):
            results[mode] = comm.recv(source=1, tag=1)
        comm.Barrier()
    if rank == 1:
        mine.send(b"end")
        os.wait()
    else:
        for mode in MODES:
            print(f"{mode:>6}: {results[mode]:7.1f} us median round trip")
    comm.Barrier()


if __name__ == "__main__":
    main()
