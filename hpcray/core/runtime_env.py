"""Ray's ``runtime_env`` for a task or an actor: ``env_vars``, and ``working_dir`` and
``py_modules`` given as local paths (an MPI job's nodes share a filesystem, so nothing is
packed or shipped: the path is used where it is).

What a spec carries is :func:`check`'s result: ``{"env_vars": {name: value},
"working_dir": absolute path, "py_modules": [absolute paths]}`` (keys present only when
given). :func:`applied` sets it around one task or call and puts everything back after;
:func:`apply` sets it for good (a process of its own that hosts one actor).
"""
import contextlib
import os
import socket
import sys

from ..exceptions import RuntimeEnvSetupError

SUPPORTED = ("env_vars", "working_dir", "py_modules")


def check(runtime_env, what="runtime_env"):
    """The runtime_env as specs carry it (None if empty).

    Raises:
        ValueError: a field hpcray does not support (the message lists those it does), a
            path that is not a local directory, or env_vars that are not strings.
    """
    if runtime_env is None:
        return None
    if not isinstance(runtime_env, dict):
        raise ValueError(f"{what} must be a dict, got {type(runtime_env).__name__}")
    unsupported = sorted(set(runtime_env) - set(SUPPORTED))
    if unsupported:
        raise ValueError(
            f"{what} fields {unsupported} are not supported by hpcray: an MPI job installs "
            f"nothing at run time. Supported: env_vars, and working_dir and py_modules as "
            f"local paths on the job's shared filesystem; install packages in the job's "
            f"environment instead of pip/conda/uv/container")
    checked = {}
    env_vars = runtime_env.get("env_vars")
    if env_vars:
        if not isinstance(env_vars, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items()):
            raise ValueError(f"{what}['env_vars'] must be a dict of str to str, got "
                             f"{env_vars!r}")
        checked["env_vars"] = dict(env_vars)
    if runtime_env.get("working_dir") is not None:
        checked["working_dir"] = _local_dir(runtime_env["working_dir"], f"{what}['working_dir']")
    modules = runtime_env.get("py_modules")
    if modules:
        if not isinstance(modules, (list, tuple)):
            raise ValueError(f"{what}['py_modules'] must be a list of paths, got {modules!r}")
        checked["py_modules"] = [_local_path(m, f"{what}['py_modules']") for m in modules]
    return checked or None


def merged(job_env, task_env):
    """The job's runtime_env (``init(runtime_env=)``) under a task's: the task's fields win,
    env_vars are merged."""
    if not job_env:
        return task_env
    if not task_env:
        return job_env
    result = dict(job_env)
    result.update(task_env)
    if "env_vars" in job_env and "env_vars" in task_env:
        result["env_vars"] = {**job_env["env_vars"], **task_env["env_vars"]}
    return result


def _local_path(path, what):
    if not isinstance(path, (str, os.PathLike)) or "://" in str(path):
        raise ValueError(f"{what}: {path!r} is not a local path (hpcray uses paths on the "
                         f"job's shared filesystem; remote URIs are not fetched)")
    full = os.path.abspath(os.fspath(path))
    if not os.path.exists(full):
        raise ValueError(f"{what}: {full} does not exist")
    return full


def _local_dir(path, what):
    full = _local_path(path, what)
    if not os.path.isdir(full):
        raise ValueError(f"{what}: {full} is not a directory")
    return full


def _import_paths(env):
    paths = []
    if "working_dir" in env:
        paths.append(env["working_dir"])
    for module in env.get("py_modules", ()):
        paths.append(os.path.dirname(module) if os.path.isfile(module) or
                     os.path.isfile(os.path.join(module, "__init__.py")) else module)
    return paths


def apply(env):
    """Set ``env`` for the rest of this process's life.

    Raises:
        RuntimeEnvSetupError: its working_dir or py_modules are not there on this node (the
            filesystem is not shared, or they were removed).
    """
    for path in [env.get("working_dir"), *env.get("py_modules", ())]:
        if path is not None and not os.path.exists(path):
            raise RuntimeEnvSetupError(f"runtime_env path {path} does not exist on this node "
                                       f"({socket.gethostname()}): working_dir and py_modules "
                                       f"must be on a filesystem every node shares")
    os.environ.update(env.get("env_vars", {}))
    for path in reversed(_import_paths(env)):
        sys.path.insert(0, path)
    if "working_dir" in env:
        os.chdir(env["working_dir"])


@contextlib.contextmanager
def applied(env):
    """Set ``env`` while the block runs, then put the environment, the import path and the
    working directory back as they were."""
    if not env:
        yield
        return
    names = env.get("env_vars", {})
    saved = {name: os.environ.get(name) for name in names}
    path, cwd = list(sys.path), os.getcwd()
    apply(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sys.path[:] = path
        if os.getcwd() != cwd:
            os.chdir(cwd)
