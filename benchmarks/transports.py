"""What the shared-memory-only transports of a one-host job cost (issue 15): nothing, or say so.

A job on one host runs with ``UCX_TLS=self,posix,cma`` unless the user chose a transport
(``hpcray/launch/network.py``): then no rank listens on the network. This runs, between
simulated nodes (``mpiexec -n 3 python -m hpcray --ranks-per-node 1`` with
``MPIR_CVAR_NOLOCAL=1``: each rank a node of its own, talking through the MPI library's
network module), the microbenchmark's task round trip, a 100 MB transfer, and the cold start
of ``python script.py`` (``init()`` and its first task, in a fresh process), under:

* ``hpcray``: hpcray's choice (``UCX_TLS`` unset: shared memory and self);
* ``ucx default``: ``UCX_TLS=all``, what UCX picks by itself, and what every job ran with
  before (the ranks' TCP listeners included);
* ``tcp``: ``UCX_TLS=tcp,self``, the tests' emulated network, for scale.

Settings alternate, several rounds each, and the medians are printed.

Usage::

    python benchmarks/transports.py [--rounds 4] [--duration 1.0]
"""
import argparse
import os
import statistics

from microbenchmark_job import run_rows

ROWS = ("init_and_first_task_seconds", "sync_task_round_trip_us",
        "transfer_100MB_between_nodes_gigabytes")
SETTINGS = (("hpcray", {}), ("ucx default", {"UCX_TLS": "all"}),
            ("tcp", {"UCX_TLS": "tcp,self"}))


def run_once(setting, duration):
    env = {name: value for name, value in os.environ.items()
           if name not in ("UCX_TLS", "MPIR_CVAR_CH4_NETMOD", "FI_PROVIDER")}
    env.update(setting, MPIR_CVAR_NOLOCAL="1", HPCRAY_JOB_DIR="off")
    return run_rows(ROWS, env, duration, hpcray_args=("--ranks-per-node", "1"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=1.0)
    options = parser.parse_args()
    samples = {name: {row: [] for row in ROWS} for name, _ in SETTINGS}
    for round_ in range(options.rounds):
        order = SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]
        for name, setting in order:
            for row, value in run_once(setting, options.duration).items():
                if value is not None:
                    samples[name][row].append(value)
    print(f"{'simulated nodes (NOLOCAL=1)':40s}" + "".join(f"{name:>14s}"
                                                           for name, _ in SETTINGS))
    for row in ROWS:
        medians = [statistics.median(samples[name][row]) if samples[name][row] else None
                   for name, _ in SETTINGS]
        print(f"{row:40s}" + "".join(f"{m:14.2f}" if m is not None else f"{'-':>14s}"
                                     for m in medians))
    hpcray, default = (statistics.median(samples[name]["sync_task_round_trip_us"])
                       for name in ("hpcray", "ucx default"))
    print(f"round trip, hpcray's choice vs UCX's default: {(hpcray - default) / default:+.1%}")


if __name__ == "__main__":
    main()
