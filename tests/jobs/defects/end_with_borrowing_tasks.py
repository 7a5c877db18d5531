# Defect 1: a script that passes refs to tasks which borrow them, and ends before they finish.
# It hung: a worker waited in Runtime.await_borrows (an ACK the ending head never sent) while
# the other ranks sat in NodeStore.close. The job must end at once, with the script's status.
# argv: seconds to sleep before the end (0: end right after submitting).
import sys
import time

import hpcray as ray
from jobkit import record

ray.init()              # attaches to the job (-m hpcray, mpiexec script.py) or starts one


@ray.remote
def borrow(box):
    return ray.get(box[0]) + len(box)      # the ref inside its argument: it borrows it


@ray.remote
def slow(box):
    time.sleep(30)
    return ray.get(box[0])


x = ray.put(list(range(10)))
refs = [borrow.remote([x]) for _ in range(6)] + [slow.remote([x]) for _ in range(2)]
time.sleep(float(sys.argv[1]))
record("end", time.time())
