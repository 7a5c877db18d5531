"""Nothing reachable that the job does not need: its listening sockets and the modes of what it
creates, looked at from outside while it runs (``tests/jobs/exposure/hold.py``), in every
launch mode.

hpcray's own processes (ranks, their supervisors and worker processes, the embedded driver
and its spawned workers) must hold no listening socket at all: on one host the MPI library is
told to use shared memory (``hpcray/launch/network.py``), and each process closes its copies
of the launcher's listening sockets, which Hydra lets them inherit. What listens is the
launcher, on the ports the README documents: Hydra's control port, which Hydra binds on every
interface with no option for loopback, and, in the embedded default, the port of MPICH's
singleton start; srun's ports are Slurm's.
"""
import os
import socket
import stat
import time
import uuid

import psutil
import pytest

from helpers import _is_python
from hpcray.launch import network
from test_slurm import _slurm_up

JOB = "exposure/hold.py"
TAG = "HPCRAY_EXPOSURE_TAG"


def _tagged(tag):
    """The processes started for this test's job (they inherit its tag)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(TAG) == tag:
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _listeners(proc):
    """(ip, port, kind) of every socket ``proc`` listens with: TCP in LISTEN, UDP bound."""
    held = []
    try:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN or (conn.type == socket.SOCK_DGRAM
                                                     and not conn.raddr):
                held.append((conn.laddr.ip, conn.laddr.port,
                             "tcp" if conn.type == socket.SOCK_STREAM else "udp"))
    except psutil.Error:
        pass
    return held


def _loopback(ip):
    return ip.startswith("127.") or ip == "::1"


def _hold(start_job, tmp_path, tag, **how):
    """Start the job, wait until it holds still; returns (job, release file)."""
    ready, release = tmp_path / f"ready-{tag}", tmp_path / f"release-{tag}"
    env = {TAG: tag, "READY_FILE": str(ready), "RELEASE_FILE": str(release),
           **how.pop("env", {})}
    job = start_job(JOB, env=env, **how)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if job.proc.poll() is not None or time.monotonic() > deadline:
            release.write_text("go")
            result = job.wait(timeout=30)
            pytest.fail(f"the job never got ready:\n{result.describe()}")
        time.sleep(0.1)
    time.sleep(0.5)                            # (worker processes of every rank are up)
    return job, release


def _release(job, release):
    release.write_text("go")
    result = job.wait(timeout=60)
    result.assert_ok()
    return result


MODES = {
    "embedded": dict(embedded=True),
    "mpiexec": dict(n=3),
    "simulated_nodes": dict(n=3, env={"MPIR_CVAR_NOLOCAL": "1", "HPCRAY_RANKS_PER_NODE": "1"}),
    "srun": dict(n=3, launcher="srun"),
}


@pytest.mark.parametrize("mode", sorted(MODES))
def test_single_host_job_listens_on_nothing_of_its_own(start_job, tmp_path, monkeypatch, mode):
    if mode == "srun" and not _slurm_up():
        pytest.skip("no Slurm cluster (slurm/local-cluster.sh start)")
    for chosen in ("UCX_TLS", "MPIR_CVAR_CH4_NETMOD", "FI_PROVIDER", "UCX_NET_DEVICES"):
        monkeypatch.delenv(chosen, raising=False)          # hpcray's choice, not the user's
    tag = uuid.uuid4().hex
    how = dict(MODES[mode])
    job, release = _hold(start_job, tmp_path, tag, **how)
    try:
        processes = _tagged(tag)
        ours = [proc for proc in processes if _is_python(proc)]
        launchers = [proc for proc in processes if not _is_python(proc)]
        assert len(ours) >= 3, f"found only {ours} of the job"
        named = network.launcher_ports(launchers)
        own = {(proc.pid, " ".join(proc.cmdline()[:4])): _listeners(proc) for proc in ours}
        own = {who: held for who, held in own.items() if held}
        assert not own, f"hpcray's processes listen on sockets: {own}"
        exposed = {(proc.name(), held) for proc in launchers for held in _listeners(proc)
                   if not _loopback(held[0])}
        if mode != "srun":                     # (srun's ports are Slurm's: SrunPortRange)
            unexplained = {(name, held) for name, held in exposed if held[1] not in named}
            assert not unexplained, (f"the launcher listens on more than Hydra's control "
                                     f"port {named}: {unexplained}")
    finally:
        result = _release(job, release)
    # hpcray's choice of transports is taken back once MPI has read it: the user's code
    # (and an MPI program it starts on other nodes) sees the environment it was given.
    assert "UCX_TLS seen by tasks ['None'] by the driver None" in result.stdout, result.stdout


def _private(mode_bits):
    return mode_bits & 0o077 == 0


def _modes_of_what_runs(pids, harness_files):
    """Every shared segment mapped and every file held open by ``pids`` -> its mode; and
    the System V segments they created."""
    modes = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as maps:
                for line in maps:
                    fields = line.split(None, 5)
                    if len(fields) == 6 and fields[5].startswith("/dev/shm/"):
                        info = os.stat(f"/proc/{pid}/map_files/{fields[0]}")
                        modes[f"pid {pid} maps {fields[5].strip()}"] = info.st_mode
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    info = os.stat(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode) and target not in harness_files:
                    modes[f"pid {pid} holds {target}"] = info.st_mode
        except OSError:
            continue                           # (a worker process that just ended)
    with open("/proc/sysvipc/shm") as table:
        header = table.readline().split()
        for line in table:
            row = dict(zip(header, line.split()))
            if int(row["cpid"]) in pids:
                modes[f"System V segment {row['shmid']} of pid {row['cpid']}"] = int(
                    row["perms"], 8)
    return modes


def _modes_under(path):
    found = {}
    for folder, dirs, files in os.walk(path):
        found[folder] = os.stat(folder).st_mode
        for name in files:
            found[os.path.join(folder, name)] = os.stat(os.path.join(folder, name)).st_mode
    return found


@pytest.mark.parametrize("mode", ["mpiexec", "embedded"])
def test_what_the_job_creates_is_the_users_alone(start_job, tmp_path, monkeypatch, mode):
    """Shared segments (MPICH's, UCX's, the store's), lock, spill and log files, the job
    directory: no bit for the group or others, even under ``umask 000``."""
    for chosen in ("UCX_TLS", "MPIR_CVAR_CH4_NETMOD", "FI_PROVIDER"):
        monkeypatch.delenv(chosen, raising=False)
    spill = tmp_path / "spill"
    spill.mkdir()
    tag = uuid.uuid4().hex
    how = dict(MODES[mode])
    how["env"] = {**how.get("env", {}), "HPCRAY_OBJECT_STORE_MEMORY": str(16 << 20),
                  "SPILL_MB": "48", "HPCRAY_SPILL_DIR": str(spill)}
    old_umask = os.umask(0)                    # the job inherits it: modes are hpcray's own
    try:
        job, release = _hold(start_job, tmp_path, tag, **how)
    finally:
        os.umask(old_umask)
    try:
        processes = [proc for proc in _tagged(tag) if _is_python(proc)]
        harness = {str(job.stdout_path), str(job.stderr_path)}
        running = _modes_of_what_runs({proc.pid for proc in processes}, harness)
        spilled = _modes_under(spill)
    finally:
        result = _release(job, release)
    assert any("/dev/shm/" in what for what in running), running      # (it looked)
    assert any(what.endswith(".log") for what in running), running
    assert len(spilled) >= 3, f"nothing spilled: {spilled}"     # spill/, its node dir, a file
    job_dirs = [path for path in tmp_path.iterdir() if path.name.startswith("hpcray-")]
    assert len(job_dirs) == 1, job_dirs
    created = {**running, **{k: v for k, v in spilled.items() if k != str(spill)},
               **_modes_under(job_dirs[0])}
    public = {what: oct(bits & 0o777) for what, bits in created.items()
              if not _private(bits)}
    assert not public, f"readable or writable by others: {public}\n{result.stderr[-2000:]}"


@pytest.mark.parametrize("how", [dict(embedded=True), dict(n=2, launcher="python")])
def test_a_users_own_listening_socket_is_left_alone(run_job, how):
    result = run_job("exposure/own_socket.py", timeout=60, **how)
    result.assert_ok()
    assert "OWN SOCKET OK" in result.stdout


@pytest.mark.parametrize("environ, hosts, settings", [
    ({}, 1, {"UCX_TLS": network.SHARED_MEMORY_ONLY}),                     # embedded default
    ({"PMI_RANK": "0", "PMI_SIZE": "4", "MPI_LOCALNRANKS": "4"}, 1,
     {"UCX_TLS": network.SHARED_MEMORY_ONLY}),                            # mpiexec, one host
    ({"PMI_RANK": "0", "PMI_SIZE": "4", "MPI_LOCALNRANKS": "2"}, 2, {}),  # two hosts
    ({"PMI_RANK": "0", "PMI_FD": "9", "SLURM_STEP_NUM_NODES": "1"}, 1,
     {"UCX_TLS": network.SHARED_MEMORY_ONLY}),                            # srun, one node
    ({"PMI_RANK": "0", "SLURM_STEP_NUM_NODES": "3"}, 3, {}),              # srun, three
    ({"PMIX_RANK": "0"}, None, {}),                                       # unknown: as it is
    ({"PMI_RANK": "0", "PMI_SIZE": "2", "MPI_LOCALNRANKS": "2", "UCX_TLS": "tcp,self"}, 1,
     {}),                                                                 # the user's choice
    ({"MPIR_CVAR_CH4_NETMOD": "ofi"}, 1, {}),
])
def test_transports_are_chosen_from_the_launchers_variables(environ, hosts, settings):
    assert network.hosts_of_job(environ) == hosts
    assert network.local_settings(environ) == settings
