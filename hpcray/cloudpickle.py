"""``hpcray.cloudpickle``, as ``ray.cloudpickle``: the cloudpickle that pickles refs so that
their objects stay alive (out-of-band serialization: an ObjectRef pickled here is kept by its
owner until ``hpcray._private.internal_api.free``). Public API floor (7): imports no module of
hpcray."""
from cloudpickle import (CloudPickler, Pickler, dump, dumps, load, loads,
                         register_pickle_by_value, unregister_pickle_by_value)

__all__ = ["CloudPickler", "Pickler", "dump", "dumps", "load", "loads",
           "register_pickle_by_value", "unregister_pickle_by_value"]
