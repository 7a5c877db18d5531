# Defect 4: an ObjectRef built from bytes that name no object. It was accepted, then a rank's
# progress thread died (TypeError) and MPI_Abort(70) ended the job. As in Ray, bytes of the
# wrong length (or not bytes) are refused at construction; 28 bytes that name nothing are
# accepted, and using the ref gives a clear error where it is used; the job goes on.
import hpcray as ray
from jobkit import check
from hpcray import ObjectRef


@ray.remote
def identity(value):
    return value


@ray.remote
def get_inside(box):
    return ray.get(box[0])


bad = ObjectRef(b"x" * 28)


@check("get")
def _():
    return ray.get(bad, timeout=20)


@check("wait")
def _():
    ready, not_ready = ray.wait([bad], timeout=20)
    return [len(ready), len(not_ready)]


@check("as_argument")
def _():
    return ray.get(identity.remote(bad), timeout=20)


@check("nested_in_argument")
def _():
    return ray.get(get_inside.remote([bad]), timeout=20)


@check("inside_a_put")
def _():
    return ray.get(ray.get(ray.put([bad]))[0], timeout=20)


@check("future")
def _():
    return bad.future().result(timeout=20)


@check("short_bytes")
def _():
    return ObjectRef(b"x" * 5)


@check("not_bytes")
def _():
    return ObjectRef("x" * 28)


@check("round_trip")
def _():
    ref = ray.put("kept")
    again = ObjectRef(ref.binary())
    return [again == ref, len(ref.binary()), ray.get(again)]


@check("repr")
def _():
    return repr(bad).startswith("ObjectRef(")


@check("job_goes_on")
def _():
    return ray.get([identity.remote(i) for i in range(8)], timeout=30)
