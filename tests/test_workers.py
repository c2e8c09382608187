from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from slimaudio.atomic import pid_alive  # a zombie nobody reaped counts as gone

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux-only")


def test_pool_workers_die_when_the_parent_is_sigkilled() -> None:
    code = ("import os, time\n"
            "from slimaudio.workers import process_pool\n"
            "pool = process_pool(2)\n"
            "list(pool.map(time.sleep, [0.2, 0.2]))\n"
            "print(*pool._processes, flush=True)\n"
            "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(pid_alive(p) for p in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [p for p in workers if pid_alive(p)]
    for p in alive:  # do not leave them behind when the test fails
        subprocess.run(["kill", "-9", str(p)], check=False)
    assert not alive, f"workers {alive} outlived their SIGKILLed parent"


def test_pool_runs_work_and_the_callers_initializer() -> None:
    from slimaudio.workers import process_pool

    with process_pool(2, initializer=print, initargs=("",)) as pool:
        assert list(pool.map(abs, [-1, -2, 3])) == [1, 2, 3]
