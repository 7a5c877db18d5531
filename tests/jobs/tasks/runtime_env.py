"""Job of tests/test_tasks.py::test_runtime_env: Ray's runtime_env for tasks and actors:
env_vars for that task or actor only, working_dir and py_modules as local paths, the job's
from init(runtime_env=), and a clear error for the fields hpcray does not support."""
import os
import sys

import hpcray as ray
from jobkit import check, record

shared = sys.argv[1]                           # a directory with data.txt and mypkg/
ray.init(runtime_env={"env_vars": {"JOB_LEVEL": "job", "BOTH": "job"}})


@ray.remote
def env(*names):
    return [os.environ.get(name) for name in names]


@ray.remote
def in_working_dir():
    import mypkg                               # (on the path: py_modules)
    with open("data.txt") as f:                # (relative to working_dir)
        return [f.read().strip(), mypkg.VALUE]


@ray.remote
class Reader:
    def read(self, name):
        return os.environ.get(name)


with_vars = env.options(runtime_env={"env_vars": {"TASK_ONLY": "yes", "BOTH": "task"}})
record("task_env", ray.get(with_vars.remote("TASK_ONLY", "BOTH", "JOB_LEVEL")))
record("other_task", ray.get(env.remote("TASK_ONLY", "BOTH", "JOB_LEVEL")))
record("driver", os.environ.get("TASK_ONLY"))
record("working_dir_and_py_modules", ray.get(in_working_dir.options(runtime_env={
    "working_dir": shared, "py_modules": [os.path.join(shared, "mypkg")]}).remote()))
actor = Reader.options(runtime_env={"env_vars": {"ACTOR_VAR": "actor"}}).remote()
plain = Reader.remote()
record("actor_env", [ray.get(actor.read.remote("ACTOR_VAR")), ray.get(actor.read.remote("JOB_LEVEL")),
                     ray.get(plain.read.remote("ACTOR_VAR"))])


@check
def working_dir_gone_where_it_runs():
    import tempfile
    gone = tempfile.mkdtemp()
    task = env.options(runtime_env={"working_dir": gone})   # (checked here: it exists)
    os.rmdir(gone)
    return ray.get(task.remote("X"))


@check
def unsupported_field():
    env.options(runtime_env={"pip": ["requests"]}).remote()


@check
def remote_uri():
    env.options(runtime_env={"working_dir": "s3://bucket/code.zip"}).remote()
