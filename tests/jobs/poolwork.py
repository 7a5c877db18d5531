"""The work functions the Pool and Executor jobs (util/pool.py, util/executor.py) give their
workers: plain functions of an importable module (the workers import it from tests/jobs,
which the job's PYTHONPATH holds)."""
import time


def sq(x):
    return x * x


def add(a, b=0):
    return a + b


def fail_on_13(x):
    if x == 13:
        raise ValueError(f"bad {x}")
    return x


def slow(t):
    time.sleep(t)
    return t
