"""What recording costs (issue 14: within 5 % of the figures with recording off).

Runs the microbenchmark's task and actor rows under ``mpirun -n 3 python -m hpcray``,
alternating ``HPCRAY_RECORD=1`` (the default: every task recorded for the state API, the
timeline and the dashboard) and ``HPCRAY_RECORD=0``, several rounds each, interleaved so that
the machine's drift hits both alike; prints the median of each row per setting and the
difference. Usage::

    python benchmarks/recording_cost.py [--rounds 5] [--duration 1.0]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROWS = ("single_client_tasks_sync", "sync_task_round_trip_us", "single_client_tasks_async",
        "1_1_actor_calls_sync", "actor_call_round_trip_us", "1_1_actor_calls_async")
HERE = os.path.dirname(os.path.abspath(__file__))


def run_once(record, duration, ranks):
    env = dict(os.environ, HPCRAY_RECORD=record, HPCRAY_JOB_DIR="off")
    command = ["mpiexec", "-n", str(ranks), sys.executable, "-m", "hpcray",
               os.path.join(HERE, "microbenchmark.py"), "--no-ray", "--json",
               "--duration", str(duration), "--only", ",".join(ROWS)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"microbenchmark failed:\n{done.stderr[-3000:]}")
    document = json.loads(done.stdout[done.stdout.index("{"):])
    metrics = document["runs"]["hpcray"]["metrics"]
    return {row: metrics[row].get("value") for row in ROWS if row in metrics}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=1.0)
    parser.add_argument("--ranks", type=int, default=3)
    options = parser.parse_args()
    samples = {"1": {row: [] for row in ROWS}, "0": {row: [] for row in ROWS}}
    for round_ in range(options.rounds):
        for record in ("1", "0") if round_ % 2 == 0 else ("0", "1"):
            for row, value in run_once(record, options.duration, options.ranks).items():
                if value is not None:
                    samples[record][row].append(value)
    print(f"{'row':32s} {'recording on':>14s} {'off':>14s} {'on vs off':>10s}")
    for row in ROWS:
        on, off = samples["1"][row], samples["0"][row]
        if not on or not off:
            print(f"{row:32s} (no figure)")
            continue
        on, off = statistics.median(on), statistics.median(off)
        better = "us" not in row                       # rates: higher is better
        change = (on - off) / off * 100
        cost = -change if better else change
        print(f"{row:32s} {on:14.1f} {off:14.1f} {cost:+9.1f}%  (cost; negative: faster)")


if __name__ == "__main__":
    main()
