"""One end of the socket between a rank and a worker process: length-prefixed pickles.

The rank never blocks on a worker: it reads what has arrived (:meth:`Channel.receive_ready`)
and queues what it sends (:meth:`Channel.post`, then :meth:`Channel.flush` as the socket
takes it). A worker blocks: :meth:`Channel.receive` polls for a moment (a blocking read
costs a wake-up of tens of microseconds on a virtual machine), then sleeps in ``select``.
"""
import os
import pickle
import select
import socket
import struct
import threading
import time

HEADER = struct.Struct("<Q")
CHUNK = 1 << 20
# Reads go into one buffer per channel: ``recv(n)`` allocates n bytes on every call, and for
# a large n that costs more than the read itself (24 us for 1 MiB against 3.5 us for 64 KiB).
READ_BUFFER = 1 << 18
# A worker polls this long for its next message before it sleeps: long enough to catch the
# next task of a burst, short enough not to take the CPU its rank and the driver need
# between two tasks (on a machine with fewer cores than processes).
SPIN = 5e-5


class Channel:
    __slots__ = ("sock", "fd", "inbox", "outbox", "send_lock", "closed", "buffer")

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.send_lock = threading.Lock()
        self.closed = False
        self.buffer = memoryview(bytearray(READ_BUFFER))

    def fileno(self):
        return self.fd

    # ------------------------------------------------------------------ sending
    def send(self, message):
        """Send one message, blocking until the socket took it (the worker's side)."""
        data = pickle.dumps(message, protocol=5)
        with self.send_lock:
            self.sock.sendall(HEADER.pack(len(data)) + data if len(data) < CHUNK
                              else HEADER.pack(len(data)))
            if len(data) >= CHUNK:
                self.sock.sendall(data)

    def send_all(self, messages):
        """Send the messages in one write, blocking until the socket took them (the
        worker's side)."""
        if len(messages) == 1:
            self.send(messages[0])
            return
        frames = []
        for message in messages:
            data = pickle.dumps(message, protocol=5)
            frames.append(HEADER.pack(len(data)))
            frames.append(data)
        with self.send_lock:
            self.sock.sendall(b"".join(frames))

    def post(self, message, flush=True):
        """Queue one message and send what the socket takes now (the rank's side: never
        blocks); ``flush=False``: only queue it (a burst leaves in one write on the next
        :meth:`flush`). Returns False once the peer is gone."""
        if self.closed:
            return False
        data = pickle.dumps(message, protocol=5)
        with self.send_lock:
            self.outbox += HEADER.pack(len(data))
            self.outbox += data
            return self._flush() if flush else True

    def flush(self):
        with self.send_lock:
            return self._flush()

    def _flush(self):
        outbox = self.outbox
        while outbox:
            try:
                sent = self.sock.send(outbox, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return True
            except OSError:
                self.closed = True
                outbox.clear()
                return False
            del outbox[:sent]
        return True

    def pending(self):
        return bool(self.outbox)

    # ------------------------------------------------------------------ receiving
    def _take(self):
        inbox = self.inbox
        if len(inbox) < 8:
            return None
        size = HEADER.unpack_from(inbox)[0]
        if len(inbox) < 8 + size:
            return None
        message = pickle.loads(memoryview(inbox)[8:8 + size])
        del inbox[:8 + size]
        return message

    def receive_ready(self):
        """The messages that arrived, without blocking.

        Raises:
            EOFError: the peer is gone (after the messages it sent were taken).
        """
        batch = []
        buffer = self.buffer
        while True:
            try:
                count = self.sock.recv_into(buffer, READ_BUFFER, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                count = 0
            if not count:
                self.closed = True
                while True:
                    message = self._take()
                    if message is None:
                        break
                    batch.append(message)
                if batch:
                    return batch
                raise EOFError("the peer closed the channel")
            self.inbox += buffer[:count]
            if count < READ_BUFFER:
                break
        while True:
            message = self._take()
            if message is None:
                return batch
            batch.append(message)

    def receive(self, timeout=None, spin=SPIN):
        """The next message, waiting for it: hot for ``spin`` seconds, then asleep; None
        if ``timeout`` seconds passed first.

        Raises:
            EOFError: the peer is gone.
        """
        message = self._take()
        if message is not None:
            return message
        sock = self.sock
        buffer = self.buffer
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        while True:
            try:
                count = sock.recv_into(buffer, READ_BUFFER, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return None
                if now - started < spin:
                    os.sched_yield()
                    continue
                wait = None if deadline is None else max(deadline - now, 0.0)
                try:
                    select.select([sock], [], [], wait)
                except InterruptedError:
                    pass
                continue
            if not count:
                raise EOFError("the rank closed the channel")
            self.inbox += buffer[:count]
            message = self._take()
            if message is not None:
                return message

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
