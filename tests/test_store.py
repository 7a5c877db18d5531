"""The node object store: zero-copy reads, freeing, churn, a full store, objects crossing
simulated nodes, configuration errors, and no files left behind."""
import pytest


@pytest.mark.parametrize("n", [1, 3])
def test_zero_copy_reads(run_job, n):
    res = run_job("store/zero_copy.py", n=n, timeout=90)
    res.assert_ok()
    assert res.value("shares_store") is True
    assert res.value("read_only") is False
    assert res.value("equal") is True
    assert res.value("write") == "refused"
    assert res.value("task_view") == [True, False, float(sum(range(4_000_000)))]
    assert res.value("result_shares_store") is True
    assert res.value("result_sum") == 4_000_000.0
    assert res.value("small_inline") is True


@pytest.mark.parametrize("n", [1, 3])
def test_freeing_churn_spilling_and_full_store(run_job, n):
    res = run_job("store/freeing.py", n=n, timeout=120, env={"HPCRAY_OBJECT_STORE_MEMORY": "64M"})
    res.assert_ok()
    assert res.value("view_kept") is True
    assert res.value("view_value") == 1_000_000.0
    assert res.value("after_view") == 0
    assert res.value("sums") == [500_000.0 * i for i in range(8)]
    assert res.value("after_results") == 0
    assert res.value("churn") == "ok"
    assert res.value("spilled") is True
    assert res.value("restored") == [float(i) for i in range(10)]
    message = res.value("too_big")
    assert "is full" in message and "80,000,000" in message, message
    message = res.value("pinned_full")
    assert "is full" in message and "24,000,000" in message, message
    assert res.value("views_intact") == [0.0, 1.0]
    assert res.value("after_full") == 0
    assert res.value("spill_files_left") == 0
    assert res.value("still_works") == 2_000_000.0


@pytest.mark.parametrize("transfer", ["p2p", "rma"])
def test_objects_cross_simulated_nodes(run_job, transfer):
    res = run_job("store/across_nodes.py", n=4, timeout=120,
                  env={"HPCRAY_RANKS_PER_NODE": 2, "HPCRAY_TRANSFER": transfer})
    res.assert_ok()
    assert res.value("nodes") == 2
    assert res.value("made_elsewhere") is True
    assert res.value("values") == [float(i) for i in range(6)]
    assert res.value("sizes") == [3_000_000] * 6
    assert res.value("read_elsewhere") is True
    assert res.value("sums") == [float(sum(range(3_000_000)))]
    assert res.value("chain") == 6_000_000.0


def test_embedded_driver_objects_reach_workers(run_job):
    """The embedded driver is a node of its own: its big objects are copied to the workers."""
    res = run_job("store/embedded_objects.py", embedded=True, timeout=90)
    res.assert_ok()
    assert res.value("sums") == [3_000_000.0] * 4
    assert res.value("back") == 3_000_000.0


def test_store_larger_than_dev_shm_is_a_clear_error(run_job):
    res = run_job("store/should_not_run.py", n=2, timeout=60,
                  env={"HPCRAY_OBJECT_STORE_MEMORY": "100T"})
    assert res.returncode != 0
    assert "should not run" not in res.stdout
    assert "does not fit in /dev/shm" in res.stderr


def test_tasks_go_where_their_argument_bytes_are(run_job):
    res = run_job("store/arg_locality.py", n=5, timeout=120, env={"HPCRAY_RANKS_PER_NODE": 2})
    res.assert_ok()
    assert res.value("some_elsewhere") is True
    assert all(res.value("ran_where_the_bytes_are")), res.value("ran_where_the_bytes_are")


@pytest.mark.parametrize("transfer", ["p2p", "rma"])
def test_one_copy_per_node(run_job, transfer):
    # nodes {0 head, 1, 2}, {3, 4, 5}, {6}
    res = run_job("store/one_copy_per_node.py", n=7, timeout=120,
                  env={"HPCRAY_RANKS_PER_NODE": 3, "HPCRAY_TRANSFER": transfer})
    res.assert_ok()
    assert res.value("values") == [7.0]
    assert res.value("nodes_with_many_readers") >= 1
    assert set(res.value("copies_per_node")) == {1}, res.value("copies_per_node")


@pytest.mark.parametrize("n", [1, 3])
def test_large_arguments_travel_through_the_store(run_job, n):
    res = run_job("store/large_args.py", n=n, timeout=90)
    res.assert_ok()
    assert res.value("by_value") == [[3_000_000.0, False]] * 3
    assert res.value("kwarg") == [6_000_000.0, False]
    assert res.value("small") == [10.0, False]         # read-only too, as in Ray
    assert res.value("freed") == 0


@pytest.mark.parametrize("mode", ["ok", "fail"])
def test_no_files_left_after_a_job(start_job, mode):
    """The job's own /dev/shm segments and spill directories are gone when it ends (those of
    other jobs running on the machine meanwhile are not the job's: helpers.JobTracker)."""
    job = start_job("store/store_job.py", n=3, args=(mode,),
                    env={"HPCRAY_OBJECT_STORE_MEMORY": "64M"})
    res = job.wait(60)
    if mode == "ok":
        res.assert_ok()
    else:
        assert res.returncode != 0 and "the script fails" in res.stderr
    assert res.files_left == [], res.describe()
    # the check saw the job's files while it ran: MPICH's segment, hpcray's spill directory
    assert any(name.startswith("mpich_shm_") for name in res.files_seen), res.describe()
    assert any("hpcray-spill-" in name for name in res.files_seen), res.describe()


def test_two_jobs_at_once_do_not_collide(start_job):
    """Two jobs of the same user on one node: separate stores, lock files and spill dirs."""
    jobs = [start_job("store/two_jobs.py", n=2, args=[v], name=f"job{v}",
                      env={"HPCRAY_OBJECT_STORE_MEMORY": "32M"}) for v in (1.0, 2.0)]
    results = [job.wait(90) for job in jobs]
    for value, res in zip((1.0, 2.0), results):
        res.assert_ok()
        assert res.value("sums") == [value * 1_000_000]
