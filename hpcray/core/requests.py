"""Questions to the head, from any rank: named actors, ``get_actor``, views of the job
(``util.state``), collective groups, available resources.

:meth:`HeadRequests.ask` sends a request kind of ``wire/messages.py`` with a fresh token and
waits for the head's ``REPLY`` carrying that token. On the head itself the request goes
through the same path (the transport delivers a rank's messages to itself), so there is
one way to ask whatever rank asks.
"""


class HeadRequests:
    """Collaborators: the runtime ``lock``, ``job`` (JobView), ``transport``, ``waiting``."""

    def __init__(self, lock, job, transport, waiting):
        self.lock = lock
        self.rank = job.rank
        self.transport = transport
        self.waiting = waiting
        self.replies = {}                      # token -> (ok, answer) from the head
        self._tokens = 0

    def ask(self, constructor, *fields):
        """Send ``constructor(token, *fields)`` to the head and return its answer (lock not
        held).

        Raises:
            the exception the head answered with (e.g. ValueError for an unknown name), or
            RuntimeBrokenError if the runtime broke meanwhile.
        """
        with self.lock:
            self._tokens += 1
            token = (self.rank, self._tokens)
            self.transport.send(0, constructor(token, *fields))
            self.transport.flush()
        replies = self.replies
        self.waiting.wait_until(lambda: token in replies)
        with self.lock:
            ok, answer = replies.pop(token)
        if not ok:
            raise answer
        return answer

    def on_reply(self, token, ok, answer):
        """REPLY: the head answered a request."""
        self.replies[token] = (ok, answer)
        self.waiting.notify()

    def forget(self):
        pass                                   # an answer in flight still completes its ask
