"""Job of tests/test_errors.py::test_retries."""
import os, sys
import hpcray as ray
from jobkit import check

D = sys.argv[1]

def attempt(tag):
    path = os.path.join(D, tag)
    with open(path, "a") as fh:
        fh.write("x\n")
    with open(path) as fh:
        return len(fh.read().splitlines())

def attempts(tag):
    path = os.path.join(D, tag)
    if not os.path.exists(path):
        return 0
    with open(path) as fh:
        return len(fh.read().splitlines())

@ray.remote(max_retries=2, retry_exceptions=True)
def flaky_twice(tag):
    if attempt(tag) <= 2:
        raise ValueError("transient")
    return "third-time-lucky"

@ray.remote(max_retries=1, retry_exceptions=True)
def always_fails(tag):
    attempt(tag)
    raise ValueError("permanent")

@ray.remote(max_retries=3, retry_exceptions=[ValueError])
def flaky_valueerror(tag):
    if attempt(tag) <= 2:
        raise ValueError("transient")
    return "ok-after-valueerror"

@ray.remote(max_retries=3, retry_exceptions=[ValueError])
def raises_keyerror(tag):
    attempt(tag)
    raise KeyError("not-retried")

@ray.remote(max_retries=3)
def default_no_app_retry(tag):
    attempt(tag)
    raise ValueError("no-retry-by-default")

@ray.remote
def plain(tag):
    if attempt(tag) <= 1:
        raise ValueError("fails-once")
    return "ok"

@check
def retry_true():
    return [ray.get(flaky_twice.remote("a")), attempts("a")]

@check
def retry_exhausted():
    try:
        ray.get(always_fails.remote("b"))
    except ValueError as e:
        return ["ValueError", isinstance(e, ray.exceptions.TaskError), attempts("b")]
    return "no exception"

@check
def retry_list_match():
    return [ray.get(flaky_valueerror.remote("c")), attempts("c")]

@check
def retry_list_no_match():
    try:
        ray.get(raises_keyerror.remote("d"))
    except KeyError as e:
        return ["KeyError", attempts("d")]
    return "no exception"

@check
def default_retry_exceptions_false():
    try:
        ray.get(default_no_app_retry.remote("e"))
    except ValueError:
        return ["ValueError", attempts("e")]
    return "no exception"

@check
def options_enable_retries():
    r = plain.options(max_retries=2, retry_exceptions=True).remote("f")
    return [ray.get(r), attempts("f")]

@check
def options_retry_list():
    r = plain.options(max_retries=1, retry_exceptions=[ValueError]).remote("g")
    return [ray.get(r), attempts("g")]
