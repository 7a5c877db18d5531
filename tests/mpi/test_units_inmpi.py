"""Unit tests that need several MPI ranks, run by pytest-mpi:

    mpiexec -n 2 python -m pytest --with-mpi tests/mpi

(``tests/test_inmpi.py`` runs exactly that.) Without ``--with-mpi`` they are skipped. MPI is
imported inside the tests, so collecting them never initializes MPI in a plain pytest.
"""
import pytest

from hpcray.wire import messages


@pytest.mark.mpi(min_size=2)
def test_node_load_counts_a_task_when_sent_and_settles_on_arrival():
    from mpi4py import MPI
    from hpcray.store.node_load import NodeLoad
    comm = MPI.COMM_WORLD
    node_comm = comm.Split_type(MPI.COMM_TYPE_SHARED)
    ranks = node_comm.allgather(comm.Get_rank())
    load = NodeLoad(node_comm, ranks, executors=set(ranks))
    try:
        if comm.Get_rank() == 0:
            load.placed(1)
            load.placed(1)
        comm.Barrier()
        assert load.loads()[1] == 2                  # counted before it arrives
        assert load.pick(2, lambda rank: True) == 0
        comm.Barrier()
        if comm.Get_rank() == 1:
            load.taken_in(0)                         # one arrived: own +1, in flight -1
        comm.Barrier()
        assert load.loads()[1] == 2
        if comm.Get_rank() == 1:
            load.add(-1)                             # it finished
        comm.Barrier()
        assert load.loads()[1] == 1
        assert load.pick(1, lambda rank: True) == 0
        assert load.pick(5, lambda rank: rank != 0) == 1   # what the rank admits counts
        comm.Barrier()
    finally:
        load.close()
        node_comm.Free()


@pytest.mark.mpi(min_size=2)
def test_transport_sends_queued_messages_as_one_batch_in_order():
    from mpi4py import MPI
    from hpcray.wire.transport import Transport
    comm = MPI.COMM_WORLD.Dup()
    transport = Transport(comm)
    try:
        if comm.Get_rank() == 0:
            for i in range(3):
                transport.send(1, messages.done(i, None))
            transport.send(0, messages.done(-1, None))   # to itself: never through MPI
            assert transport.queued == 3
            transport.set_session(4)                     # queued ones leave first, as session 0
            assert transport.queued == 0
            transport.send(1, messages.done(9, None))
            transport.flush()
            seen = []
            assert transport.poll(lambda session, message: seen.append((session, message))) == 1
            assert seen == [(0, messages.done(-1, None))]
            assert transport.drain(5.0)
        elif comm.Get_rank() == 1:
            raw = comm.recv(source=0, tag=MPI.ANY_TAG)
            assert raw == (0, [messages.done(i, None) for i in range(3)])
            assert comm.recv(source=0, tag=MPI.ANY_TAG) == (4, messages.done(9, None))
        comm.Barrier()
    finally:
        comm.Free()
