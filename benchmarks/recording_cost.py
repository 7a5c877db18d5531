"""What recording costs (issue 14: within 5 % of the figures with recording off).

Alternates ``HPCRAY_RECORD=1`` (the default: every task recorded for the state API, the
timeline and the dashboard) and ``HPCRAY_RECORD=0``, several rounds each, interleaved so that
the machine's drift hits both alike, and prints per setting:

* the median of the microbenchmark's task and actor rows (``mpirun -n 3 python -m hpcray
  benchmarks/microbenchmark.py``): wall-clock figures, noisy on a small VM (+-15 % from one
  run to the next here), hence the rounds; and the median of each round's paired cost (the
  two settings ran next to each other), per row and over all rows;
* the CPU time the whole job (every rank and worker process) spends on a fixed workload of
  3,000 sync tasks, 3,000 sync actor calls and 10,000 async tasks (``getrusage`` of the
  finished job): the steadier measure of what recording adds;
* the same job's cold figures: its first task, its first actor (creation and call), and its
  first ``list_tasks`` after the workload (with recording off there is nothing to list).

Usage::

    python benchmarks/recording_cost.py [--rounds 6] [--duration 1.0]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

from microbenchmark_job import MPIEXEC, run_rows

ROWS = ("single_client_tasks_sync", "sync_task_round_trip_us", "single_client_tasks_async",
        "1_1_actor_calls_sync", "actor_call_round_trip_us", "1_1_actor_calls_async")


def run_once(record, duration, ranks):
    env = dict(os.environ, HPCRAY_RECORD=record, HPCRAY_JOB_DIR="off")
    return run_rows(ROWS, env, duration, ranks)


WORKLOAD = """
import json, time
import hpcray as ray
from hpcray.util import state
ray.init()
@ray.remote
def noop():
    return None
@ray.remote
class A:
    def m(self):
        return None
t0 = time.perf_counter()
ray.get(noop.remote())
t1 = time.perf_counter()
actor = A.remote()
ray.get(actor.m.remote())
t2 = time.perf_counter()
ray.get([noop.remote() for _ in range(200)])
for _ in range(3000):
    ray.get(noop.remote())
for _ in range(3000):
    ray.get(actor.m.remote())
for _ in range(10):
    ray.get([noop.remote() for _ in range(1000)])
t3 = time.perf_counter()
tasks = state.list_tasks(limit=100)
t4 = time.perf_counter()
print("COLD " + json.dumps({"first_task_ms": (t1 - t0) * 1e3,
                            "first_actor_call_ms": (t2 - t1) * 1e3,
                            "first_list_tasks_ms": (t4 - t3) * 1e3, "listed": len(tasks)}))
"""


def cpu_of_workload(record, ranks, script):
    """CPU seconds (user + system) of every process of one job running WORKLOAD, and the
    job's cold figures (its first task, first actor call, first ``list_tasks``)."""
    env = dict(os.environ, HPCRAY_RECORD=record, HPCRAY_JOB_DIR="off")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, "-m", "hpcray",
                           script], capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"the workload failed:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in done.stdout.splitlines() if line.startswith("COLD "))
    cold = json.loads(line[len("COLD "):])
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), cold


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--ranks", type=int, default=3)
    options = parser.parse_args()
    samples = {"1": {row: [] for row in ROWS}, "0": {row: [] for row in ROWS}}
    cpu = {"1": [], "0": []}
    cold = {"1": {}, "0": {}}
    with tempfile.TemporaryDirectory() as folder:
        script = os.path.join(folder, "workload.py")
        with open(script, "w") as handle:
            handle.write(WORKLOAD)
        for round_ in range(options.rounds):
            for record in ("1", "0") if round_ % 2 == 0 else ("0", "1"):
                for row, value in run_once(record, options.duration, options.ranks).items():
                    if value is not None:
                        samples[record][row].append(value)
                seconds, figures = cpu_of_workload(record, options.ranks, script)
                cpu[record].append(seconds)
                for name, value in figures.items():
                    cold[record].setdefault(name, []).append(value)
    print(f"{'row':32s} {'recording on':>14s} {'off':>14s} {'on vs off':>10s} "
          f"{'paired':>8s}  (cost in %; negative: faster)")
    pooled = []
    for row in ROWS:
        on, off = samples["1"][row], samples["0"][row]
        if not on or not off:
            print(f"{row:32s} (no figure)")
            continue
        better = "us" not in row                       # rates: higher is better
        # Paired: each round's two runs ran next to each other, so the machine's drift
        # cancels out of their ratio; the median of those ratios is the robust figure.
        paired = [((b / a - 1) if better else (a / b - 1)) * 100 for a, b in zip(on, off)]
        pooled += paired
        on, off = statistics.median(on), statistics.median(off)
        change = (on - off) / off * 100
        cost = -change if better else change
        print(f"{row:32s} {on:14.1f} {off:14.1f} {cost:+9.1f}% "
              f"{statistics.median(paired):+7.1f}%")
    quartiles = statistics.quantiles(pooled, n=4) if len(pooled) > 1 else pooled * 3
    print(f"{'all rows, paired':32s} {'':14s} {'':14s} {'':10s} "
          f"{statistics.median(pooled):+7.1f}%  (quartiles {quartiles[0]:+.1f}% .. "
          f"{quartiles[2]:+.1f}%, {len(pooled)} pairs)")
    on, off = statistics.median(cpu["1"]), statistics.median(cpu["0"])
    print(f"{'CPU s of the fixed workload':32s} {on:14.2f} {off:14.2f} "
          f"{(on - off) / off * 100:+9.1f}%  (all processes of the job)")
    for name in ("first_task_ms", "first_actor_call_ms", "first_list_tasks_ms"):
        on, off = statistics.median(cold["1"][name]), statistics.median(cold["0"][name])
        print(f"{'cold: ' + name:32s} {on:14.2f} {off:14.2f} {(on - off) / off * 100:+9.1f}%")
    listed = statistics.median(cold["1"]["listed"]), statistics.median(cold["0"]["listed"])
    print(f"{'tasks list_tasks returned':32s} {listed[0]:14.0f} {listed[1]:14.0f}  "
          f"(recording off: nothing to list)")


if __name__ == "__main__":
    main()
