"""A user's own listening socket, opened before ``init()`` (``mpiexec python script.py``, and
the embedded default), still accepts after it: hpcray closes only the launcher's sockets."""
import socket

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)

import hpcray as ray  # noqa: E402

ray.init()


@ray.remote
def one():
    return 1


assert ray.get(one.remote()) == 1
if ray.get_runtime_context().get_rank() == 0:     # the driver (other ranks served in init)
    client = socket.create_connection(server.getsockname(), timeout=10)
    accepted, _ = server.accept()
    client.sendall(b"still mine")
    assert accepted.recv(64) == b"still mine"
    print("OWN SOCKET OK")
ray.shutdown()
