"""Ctrl-C (SIGINT) and SIGTERM as exceptions raised only where unwinding is safe.

Every result file is written atomically (`hwsim.outputs`); an interrupt has to unwind through the
`except BaseException` clean-ups there, which SIGTERM's default action (die at once) would skip.
And a compiled numba kernel calls back into Python internally (e.g. `numba.core.serialize`); an
exception raised by a signal handler inside such a callback leaves numba with a half-built result
and crashes the process (SIGSEGV, seen on a 3 M-request `hwsim dram` run). So when a signal lands in
a frame of numba's own code the handler raises nothing and has the signal delivered again a moment
later; it then lands in hwsim's code once the kernel has returned.
"""

from __future__ import annotations

import os
import signal
import threading

REDELIVER_S = 0.05


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


def _in_numba(frame) -> bool:
    while frame is not None:
        name = frame.f_code.co_filename
        if f"{os.sep}numba{os.sep}" in name:
            return True
        if f"{os.sep}hwsim{os.sep}" in name:
            return False
        frame = frame.f_back
    return False


def _deferred_out_of_numba(frame, signum) -> bool:
    if not _in_numba(frame):
        return False
    timer = threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signum))
    timer.daemon = True
    timer.start()
    return True


def _handle(signum, frame):
    if not _deferred_out_of_numba(frame, signum):
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _handle_in_worker(signum, frame):
    # SystemExit unwinds the same clean-ups, and multiprocessing ends the worker with it quietly
    # (a KeyboardInterrupt in an idle pool worker prints a traceback).
    if not _deferred_out_of_numba(frame, signum):
        raise SystemExit(128 + signum)


def install_signal_handlers(*, worker: bool = False) -> None:
    """SIGINT -> KeyboardInterrupt, SIGTERM -> Terminated (in a sweep's pool worker: SystemExit),
    deferred out of numba's internals. A no-op outside the main thread; an ignored SIGINT (a
    background job) stays ignored."""
    handler = _handle_in_worker if worker else _handle
    try:
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


def install_worker_signal_handlers() -> None:
    """`install_signal_handlers` for a process-pool worker (a picklable initializer)."""
    install_signal_handlers(worker=True)
