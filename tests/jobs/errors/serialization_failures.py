"""Job of tests/test_errors.py::test_serialization_failures."""
import threading
import hpcray as ray
from jobkit import check, record

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
