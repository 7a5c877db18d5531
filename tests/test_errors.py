"""Errors: remote exceptions (type, remote traceback, worker survival),
retries, and serialization failures at every point of a task's life (in the
spirit of CPython's concurrent.futures test_deadlock.py: one tiny object per
failure point, each followed by a check that the job still works)."""
import socket

import pytest

EXCEPTIONS = r"""
import socket
import hpcray as ray

@ray.remote
def explode_with_valueerror(x):
    raise ValueError("boom-%d" % x)

@ray.remote
def ok(x):
    return x

@ray.remote
def rank():
    return ray.get_runtime_context().get_rank()

@ray.remote
def outer_calls_failing_inner():
    return ray.get(explode_with_valueerror.remote(7))

@ray.remote
def consume(x):
    return x

class CustomError(Exception):
    pass

@ray.remote
def raise_custom():
    raise CustomError("custom-payload")

class TwoArgError(Exception):            # does not survive a plain pickle round trip
    def __init__(self, a, b):
        super().__init__(f"two-arg {a} {b}")

@ray.remote
def raise_two_arg():
    raise TwoArgError(1, 2)

@check
def task_error():
    ray.get(explode_with_valueerror.remote(1))

@check
def isinstance_checks():
    try:
        ray.get(explode_with_valueerror.remote(2))
    except Exception as e:
        return {"TaskError": isinstance(e, ray.exceptions.TaskError),
                "RayTaskError": isinstance(e, ray.exceptions.RayTaskError),
                "ValueError": isinstance(e, ValueError),
                "alias": issubclass(ray.exceptions.RayTaskError, ray.exceptions.TaskError)
                         or issubclass(ray.exceptions.TaskError, ray.exceptions.RayTaskError)}
    return "no exception"

@check
def except_valueerror_clause():
    try:
        ray.get(explode_with_valueerror.remote(3))
    except ValueError as e:
        return "caught-as-ValueError"

@check
def worker_survives():
    return ray.get([ok.remote(i) for i in range(5)])

@check
def same_worker_after_error():
    # with one worker (n=2) the failing task and the next one share a rank
    r1 = ray.get(rank.remote())
    try:
        ray.get(explode_with_valueerror.remote(4))
    except Exception:
        pass
    return [r1, ray.get(rank.remote())]

@check
def error_in_list_get():
    ray.get([ok.remote(1), explode_with_valueerror.remote(5), ok.remote(2)])

@check
def nested_task_error():
    ray.get(outer_calls_failing_inner.remote())

@check
def dependency_error():
    ray.get(consume.remote(explode_with_valueerror.remote(8)))

@check
def custom_exception_class():
    try:
        ray.get(raise_custom.remote())
    except CustomError as e:
        return ["CustomError", isinstance(e, ray.exceptions.TaskError)]

@check
def unpicklable_exception_args():
    ray.get(raise_two_arg.remote())

@check
def put_of_error_ref_in_wait():
    r = explode_with_valueerror.remote(9)
    ready, _ = ray.wait([r], timeout=30)
    return len(ready)

@check
def still_works():
    return ray.get(ok.remote("alive"))
"""


@pytest.mark.parametrize("n", [1, 2])
def test_task_exceptions(run_job, n):
    res = run_job(EXCEPTIONS, n=n, timeout=90)
    host = socket.gethostname()

    err = res.error("task_error")
    assert "TaskError" in err["mro"] or "RayTaskError" in err["mro"], err
    assert "ValueError" in err["mro"], err
    # the remote traceback must be in str(e) or in str(e.__cause__) (not only in
    # the driver-side traceback, whose source lines could mention anything)
    text = (err["msg"] or "") + "\n" + (err["cause"] or "")
    assert "boom-1" in text, err
    assert "explode_with_valueerror" in text, err   # remote traceback: function name
    assert "rank" in text.lower(), err
    assert host in text, (host, err)

    assert res.value("isinstance_checks") == {"TaskError": True, "RayTaskError": True,
                                              "ValueError": True, "alias": True}
    assert res.value("except_valueerror_clause") == "caught-as-ValueError"
    assert res.value("worker_survives") == [0, 1, 2, 3, 4]
    r1, r2 = res.value("same_worker_after_error")
    if n == 2:
        assert r1 == r2 == 1
    err = res.error("error_in_list_get")
    assert "ValueError" in err["mro"] and "boom-5" in err["text"], err
    err = res.error("nested_task_error")
    assert "TaskError" in err["mro"] or "RayTaskError" in err["mro"], err
    assert "boom-7" in err["text"], err
    err = res.error("dependency_error")
    assert "TaskError" in err["mro"] or "RayTaskError" in err["mro"], err
    assert "boom-8" in err["text"], err
    assert res.value("custom_exception_class") == ["CustomError", True]
    err = res.error("unpicklable_exception_args")
    assert "TaskError" in err["mro"] or "RayTaskError" in err["mro"], err
    assert "two-arg 1 2" in err["text"] or "TwoArgError" in err["text"], err
    assert res.value("put_of_error_ref_in_wait") == 1
    assert res.value("still_works") == "alive"
    res.assert_ok()


RETRIES = r"""
import os, sys
import hpcray as ray

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
"""


@pytest.mark.parametrize("n", [1, 2])
def test_retries(run_job, tmp_path, n):
    d = tmp_path / "attempts"
    d.mkdir()
    res = run_job(RETRIES, n=n, args=[str(d)], timeout=90)
    assert res.value("retry_true") == ["third-time-lucky", 3]
    assert res.value("retry_exhausted") == ["ValueError", True, 2]
    assert res.value("retry_list_match") == ["ok-after-valueerror", 3]
    assert res.value("retry_list_no_match") == ["KeyError", 1]
    assert res.value("default_retry_exceptions_false") == ["ValueError", 1]
    assert res.value("options_enable_retries") == ["ok", 2]
    assert res.value("options_retry_list") == ["ok", 2]
    res.assert_ok()


SERIALIZATION = r"""
import threading
import hpcray as ray

def _fail_unpickle(msg):
    raise RuntimeError(msg)

class ErrorAtPickle:
    def __reduce__(self):
        raise RuntimeError("error-at-pickle")

class ErrorAtUnpickle:
    def __reduce__(self):
        return _fail_unpickle, ("error-at-unpickle",)

@ray.remote
def ok(x=None):
    return "alive"

@ray.remote
def takes(a, b, third_param=None, **kw):
    return "ran"

@ray.remote
def return_lock():
    return threading.Lock()

@ray.remote
def return_error_at_pickle():
    return ErrorAtPickle()

@ray.remote
def return_error_at_unpickle():
    return ErrorAtUnpickle()

@ray.remote(num_returns=2)
def two_returns_one_bad():
    return 1, threading.Lock()

@ray.remote
def raise_unpicklable_exception():
    e = ValueError("exception-with-lock")
    e.lock = threading.Lock()
    raise e

@ray.remote
def inner_returns_lock():
    return ray.get(return_lock.remote())

def alive():
    return ray.get(ok.remote())

# --- argument fails to pickle on the driver (at .remote()) ----------------
@check
def arg_lock_positional():
    takes.remote(0, 1, threading.Lock())
record("alive_1", alive())

@check
def arg_lock_keyword():
    takes.remote(0, 1, my_unpicklable_kw=threading.Lock())
record("alive_2", alive())

@check
def arg_error_at_pickle():
    takes.remote(0, ErrorAtPickle())
record("alive_3", alive())

@check
def arg_lock_is_serialization_error():
    try:
        takes.remote(threading.Lock(), 1)
    except Exception as e:
        return [isinstance(e, TypeError), isinstance(e, ray.exceptions.SerializationError)]

# --- argument fails to unpickle on the worker -------------------------------
@check
def arg_error_at_unpickle():
    return ray.get(takes.remote(0, ErrorAtUnpickle()), timeout=30)
record("alive_4", alive())

# --- put --------------------------------------------------------------------
@check
def put_lock():
    ray.put(threading.Lock())
record("alive_5", alive())

# --- result fails to pickle on the worker -----------------------------------
@check
def return_lock_get():
    return ray.get(return_lock.remote(), timeout=30)
record("alive_6", alive())

@check
def return_error_at_pickle_get():
    return ray.get(return_error_at_pickle.remote(), timeout=30)
record("alive_7", alive())

@check
def two_returns_one_bad_get():
    a, b = two_returns_one_bad.remote()
    return ray.get([a, b], timeout=30)
record("alive_8", alive())

# --- result fails to unpickle on the driver ---------------------------------
@check
def return_error_at_unpickle_get():
    return ray.get(return_error_at_unpickle.remote(), timeout=30)
record("alive_9", alive())

# --- the exception itself cannot be pickled ---------------------------------
@check
def unpicklable_exception():
    ray.get(raise_unpicklable_exception.remote(), timeout=30)
record("alive_10", alive())

# --- nested: a task gets the serialization error of its child ---------------
@check
def nested_return_lock():
    ray.get(inner_returns_lock.remote(), timeout=30)
record("alive_11", alive())

# --- a ref to a bad result passed on to another task ------------------------
@check
def dependent_on_bad_result():
    return ray.get(ok.remote(return_lock.remote()), timeout=30)
record("alive_12", alive())
"""


@pytest.mark.parametrize("n", [1, 2])
def test_serialization_failures(run_job, n):
    res = run_job(SERIALIZATION, n=n, timeout=120)

    err = res.error("arg_lock_positional")
    assert "TypeError" in err["mro"] and "SerializationError" in err["mro"], err
    import re
    assert "third_param" in err["msg"] or re.search(r"\b[23]\b", err["msg"]), err
    err = res.error("arg_lock_keyword")
    assert "TypeError" in err["mro"] and "SerializationError" in err["mro"], err
    assert "my_unpicklable_kw" in err["msg"], err
    err = res.error("arg_error_at_pickle")
    assert "SerializationError" in err["mro"], err
    assert "error-at-pickle" in err["text"], err
    assert res.value("arg_lock_is_serialization_error") == [True, True]

    # failures on the worker / at get: an exception, never a hang or a dead job
    err = res.error("arg_error_at_unpickle")
    assert "GetTimeoutError" not in err["mro"], err
    assert "error-at-unpickle" in err["text"], err

    err = res.error("put_lock")
    assert "GetTimeoutError" not in err["mro"], err

    err = res.error("return_lock_get")
    assert "TaskError" in err["mro"] or "RayTaskError" in err["mro"], err
    assert re.search(r"serializ|pickl", err["text"], re.I), err
    err = res.error("return_error_at_pickle_get")
    assert "TaskError" in err["mro"] or "RayTaskError" in err["mro"], err
    assert "error-at-pickle" in err["text"], err
    err = res.error("two_returns_one_bad_get")
    assert "GetTimeoutError" not in err["mro"], err

    err = res.error("return_error_at_unpickle_get")
    assert "GetTimeoutError" not in err["mro"], err
    assert "error-at-unpickle" in err["text"], err

    err = res.error("unpicklable_exception")
    assert "GetTimeoutError" not in err["mro"], err
    assert "exception-with-lock" in err["text"], err
    err = res.error("nested_return_lock")
    assert "GetTimeoutError" not in err["mro"], err
    err = res.error("dependent_on_bad_result")
    assert "GetTimeoutError" not in err["mro"], err

    for i in range(1, 13):
        assert res.value(f"alive_{i}") == "alive", i
    res.assert_ok()
