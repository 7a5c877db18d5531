"""One broken path: an internal fault on any rank, under every launcher, fails every pending
get, wait and future at once with RuntimeBrokenError naming the rank, host and cause; later
calls fail fast; the job still ends promptly and leaves nothing behind."""
import pytest

JOB = "broken/inject_fault.py"


def _check_broken(res, where):
    rank = res.value("sabotaged_rank")
    kind, message = res.value("get_error")
    assert kind == "RuntimeBrokenError"
    assert f"rank {rank}" in message and "injected fault" in message and "host" in message
    assert res.value("get_seconds") < 20             # at once, not after the slow task
    assert res.value("future_error") == "RuntimeBrokenError"
    for call in ("submit", "put", "wait"):
        kind, seconds = res.value(call)
        assert kind == "RuntimeBrokenError" and seconds < 1.0, (call, kind, seconds)
    assert f"internal fault on rank {rank}" in res.stderr
    assert not res.leftover and not res.files_left


@pytest.mark.parametrize("where", ["handler", "turn", "head"])
def test_a_fault_on_a_worker_breaks_every_wait_under_python_m_hpcray(run_job, where):
    res = run_job(JOB, n=3, args=[where, "catch"], timeout=120)
    res.assert_ok()
    assert res.duration < 40                            # the slow task is abandoned
    _check_broken(res, where)


def test_same_under_mpiexec_python_script(run_job):
    res = run_job(JOB, n=3, args=["handler", "catch", "attach"], timeout=120,
                  launcher="python")
    res.assert_ok()
    _check_broken(res, "handler")


def test_same_in_the_embedded_default(run_job):
    res = run_job(JOB, args=["handler", "catch", "embedded"], timeout=120, embedded=True)
    res.assert_ok()
    _check_broken(res, "handler")


def test_an_uncaught_broken_runtime_ends_the_job_with_status_1(run_job):
    res = run_job(JOB, n=3, args=["handler", "uncaught"], timeout=120)
    assert res.returncode == 1, res.describe()
    assert "RuntimeBrokenError" in res.stderr and "injected fault" in res.stderr
    assert res.duration < 40
    assert not res.leftover and not res.files_left
