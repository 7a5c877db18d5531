"""Owners free what nobody references any more: results, puts, and task arguments."""
import pytest


@pytest.mark.parametrize("n", [1, 3])
def test_dropped_refs_are_freed(run_job, n):
    res = run_job("lifetimes/dropped_refs.py", n=n, timeout=90)
    res.assert_ok()
    assert res.value("owned_after") == 2          # only `kept` and `nested` remain
    assert res.value("bookkeeping") == [0, 0, 0, 2]
    assert res.value("kept") == "kept"
    assert res.value("nested") == "kept"


def test_refs_passed_between_ranks_are_counted(run_job):
    # one node, one worker: every object lives in the store the driver can see
    res = run_job("lifetimes/borrowing.py", n=2, timeout=120)
    res.assert_ok()
    assert res.value("held_by_box") is True
    assert res.value("through_box") == 1_000_000.0
    assert res.value("box_freed") == 0
    assert res.value("borrowed_alive") is True
    assert res.value("read_by_borrower") == 2_000_000.0
    assert res.value("borrow_released") == 0
    assert res.value("returned_ref") == 3_000_000.0
    assert res.value("returned_freed") == 0
