"""Ctrl-C (SIGINT) and SIGTERM as exceptions raised only where unwinding is safe.

Every result file is written atomically (`hwsim.outputs`); an interrupt has to unwind through the
`except BaseException` clean-ups there, which SIGTERM's default action (die at once) would skip.
And a compiled numba kernel calls back into Python internally (e.g. `numba.core.serialize` as it
returns); an exception raised by a signal handler inside such a callback leaves numba with a
half-built result and crashes the process (SIGSEGV, seen on a 3 M-request `hwsim dram` run). A
signal that arrives while a kernel runs is handled at the first Python bytecode, which is usually
that callback. So when a signal lands in a frame of numba's own code the handler raises nothing and
arms a frame-local trace function (pdb's mechanism) on the hwsim frame that called into numba: the
exception is raised there at its next line, the moment the kernel has returned. (A timer that
re-delivers the signal later can land in the next kernel's callback every time, and did, in a
sweep worker running back-to-back points.)
"""

from __future__ import annotations

import os
import signal
import sys


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM."""


class WorkerStop(SystemExit):
    """A sweep's pool worker received SIGTERM or SIGINT. Raised mid-point, it unwinds the point's
    atomic writes; `hwsim.sweep._run_point` then ends the process, because the pool's worker loop
    catches every exception from a call and would otherwise go on to the next queued point."""


_HWSIM = f"{os.sep}hwsim{os.sep}"
_NUMBA = f"{os.sep}numba{os.sep}"


def _numba_caller(frame):
    """(inside numba?, the frame that called into numba): the innermost frame from hwsim or numba
    decides; the caller is the first hwsim frame outward (or whatever called numba's outermost)."""
    in_numba, caller = False, None
    while frame is not None:
        name = frame.f_code.co_filename
        if _HWSIM in name:
            return in_numba, (frame if in_numba else None)
        if _NUMBA in name:
            in_numba, caller = True, frame.f_back
        frame = frame.f_back
    return in_numba, caller


_pending = None  # the exception (factory) armed on a frame, while one is
_THIS_FILE = _numba_caller.__code__.co_filename


def _raise_back_in(caller, make_exc) -> None:
    """Raise make_exc() in `caller` at its next trace event (or in any new hwsim call first)."""
    global _pending
    already_armed = _pending is not None
    _pending = make_exc
    if already_armed:
        return
    previous = sys.gettrace()

    def fire():
        global _pending
        exc, _pending = _pending(), None
        caller.f_trace = None
        sys.settrace(previous)
        raise exc

    def local_trace(frame, event, arg):
        fire()

    def global_trace(frame, event, arg):
        name = frame.f_code.co_filename
        # Not in this module: a second signal's handler, called while numba's code still runs,
        # must find the exception armed, not raise it there.
        if _HWSIM in name and name != _THIS_FILE and not _numba_caller(frame)[0]:
            fire()
        return None

    caller.f_trace = local_trace
    caller.f_trace_lines = True
    sys.settrace(global_trace)


def _deliver(frame, make_exc) -> None:
    in_numba, caller = _numba_caller(frame)
    if in_numba and caller is not None:
        _raise_back_in(caller, make_exc)
    else:
        raise make_exc()


def _handle(signum, frame):
    _deliver(frame, Terminated if signum == signal.SIGTERM else KeyboardInterrupt)


def _handle_in_worker(signum, frame):
    # SystemExit unwinds the same clean-ups, and multiprocessing ends an idle worker with it quietly
    # (a KeyboardInterrupt in an idle pool worker prints a traceback). A worker is told to stop more
    # than once (the sweep terminates it, and so does the pool once a sibling has exited), and a
    # second WorkerStop raised inside the first one's clean-up would leave its temporaries behind,
    # so the first signal is the only one a worker acts on.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _deliver(frame, lambda: WorkerStop(128 + signum))


def install_signal_handlers(*, worker: bool = False) -> None:
    """SIGINT -> KeyboardInterrupt, SIGTERM -> Terminated (in a sweep's pool worker: WorkerStop),
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
