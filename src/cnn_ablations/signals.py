"""Stopping a job as Ctrl-C does when a scheduler preempts it (SIGTERM: SLURM, Kubernetes) or
its terminal closes (SIGHUP): the job shuts down gracefully, is recorded as interrupted and can
be continued with ``resume``; the process exits 128 + the signal (143, 129; Ctrl-C 130).

Where the signal lands (:func:`_stop`):

- in a process running a job (a single run, the basic launcher, a joblib worker's job, the
  main process of a ``ddp_spawn`` fit): :class:`Stopped` is raised there;
- in a sweep's process whose jobs run in a launcher's workers (joblib): the signal is passed to
  the workers and the process waits until no job of the sweep is still recording (at most
  ``WAIT_FOR_RECORDS`` seconds), so that the launcher does not kill a worker mid-record;
- in an idle launcher worker: nothing (its sweep stops the busy ones).

One stop per process: a second signal while it shuts down is ignored. Signals the process was
started ignoring (``nohup``'s SIGHUP) stay ignored.
"""

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # a scheduler's preemption; a closed terminal
IGNORED_AT_START = {s for s in STOP_SIGNALS if signal.getsignal(s) is signal.SIG_IGN}
WAIT_FOR_RECORDS = 30.0  # seconds a sweep's process waits for its workers' jobs to record


class _State:
    in_job = False  # this process is running a job
    received: int | None = None  # the stop signal this process received, once
    recording: Callable[[], bool] | None = None  # a sweep's jobs are still recording


class Stopped(KeyboardInterrupt):
    """SIGTERM (how SLURM, Kubernetes and most schedulers preempt a job) or SIGHUP (the
    terminal closed), raised where the process was by :func:`stop_on_signals`: a
    ``KeyboardInterrupt``, so the job is shut down, recorded and continued as after Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    def __reduce__(self):  # a launcher's worker sends it back to the sweep pickled
        return type(self), (self.signum,)


def _stop(signum: int, frame) -> None:
    """The handler of SIGTERM and SIGHUP (the module docstring says what it does where)."""
    idle_worker = not _State.in_job and multiprocessing.parent_process() is not None
    if _State.received is not None or idle_worker:
        return
    _State.received = signum
    workers = [] if _State.in_job else multiprocessing.active_children()
    if not workers:
        raise Stopped(signum)
    for worker in workers:
        with suppress(ProcessLookupError):  # it may have ended since
            os.kill(worker.pid, signum)
    deadline = time.monotonic() + WAIT_FOR_RECORDS
    while _State.recording is not None and _State.recording() and time.monotonic() < deadline:
        time.sleep(0.2)


def stop_on_signals() -> None:
    """Make SIGTERM and SIGHUP stop this process as Ctrl-C does (:func:`_stop`), from its main
    thread (elsewhere Python allows no handler). Lightning's own SIGTERM handler, installed
    while it fits, calls this one after its own (which sets a flag and would end the fit with
    exit 0), and puts it back when the fit ends."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        if signum not in IGNORED_AT_START:
            signal.signal(signum, _stop)


def job_running(running: bool) -> None:
    """Mark this process as running a job (True) or not (False)."""
    _State.in_job = running


def received() -> int | None:
    """The stop signal this process received (None: none)."""
    return _State.received


def wait_for_records(recording: Callable[[], bool]) -> None:
    """Let a stopped sweep's process wait while ``recording()`` says jobs are still writing."""
    _State.recording = recording


def interrupt_of(err: BaseException) -> KeyboardInterrupt | None:
    """The interruption that ended a job: a ``KeyboardInterrupt`` (Ctrl-C, or :class:`Stopped`
    by a signal), or the one Lightning turned into ``SystemExit`` after its graceful shutdown."""
    if isinstance(err, KeyboardInterrupt):
        return err
    if isinstance(err, SystemExit) and isinstance(err.__context__, KeyboardInterrupt):
        return err.__context__
    return None


def is_interrupt(err: BaseException) -> bool:
    """Ctrl-C, SIGTERM or SIGHUP (:func:`interrupt_of`)."""
    return interrupt_of(err) is not None


def interrupt_name(err: BaseException) -> str:
    """``Ctrl-C``, ``SIGTERM`` or ``SIGHUP``: what interrupted the job."""
    stop = interrupt_of(err)
    return signal.Signals(stop.signum).name if isinstance(stop, Stopped) else "Ctrl-C"
