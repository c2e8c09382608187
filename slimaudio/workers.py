"""Worker processes that die with the stage that started them.

A process pool's workers block reading a queue whose write end their siblings also hold, so
when the stage is SIGKILLed (or OOM-killed) they never see EOF: they live on under PID 1,
holding memory. On Linux each worker asks the kernel (prctl PR_SET_PDEATHSIG) to SIGKILL it
when its parent goes; workers hold no outputs (the parent writes everything), so nothing is lost.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: SIGKILL this process when `parent_pid` (its parent) exits.

    The signal follows the parent *thread* that started the worker, so start pools from a
    thread that lives as long as the pool (the main thread, as run_chunks does).
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _init(parent_pid: int, initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, initializer: Callable[..., Any] | None = None,
                 initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
    """A 'spawn' ProcessPoolExecutor (safe whatever the parent imported, e.g. torch) whose
    workers die with this process."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init, initargs=(os.getpid(), initializer, initargs))
