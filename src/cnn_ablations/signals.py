"""Stopping a job as Ctrl-C does when a scheduler preempts it (SIGTERM: SLURM, Kubernetes) or
its terminal closes (SIGHUP): the job shuts down gracefully, is recorded as interrupted and can
be continued with ``resume``; the process exits 128 + the signal (143, 129; Ctrl-C 130).
"""

import multiprocessing
import os
import signal
import threading

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # a scheduler's preemption; a closed terminal


class Stopped(KeyboardInterrupt):
    """SIGTERM (how SLURM, Kubernetes and most schedulers preempt a job) or SIGHUP (the
    terminal closed), raised where the process was by :func:`stop_on_signals`: a
    ``KeyboardInterrupt``, so the job is shut down, recorded and continued as after Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    def __reduce__(self):
        return type(self), (self.signum,)


def _stop(signum: int, frame) -> None:
    """One stop per process: later signals are ignored while it shuts down and records. A
    process whose jobs run in a launcher's worker processes (joblib) passes the signal on to
    them and waits: each records its job as interrupted and the sweep ends with it."""
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    workers = multiprocessing.active_children()
    if workers:
        for worker in workers:
            os.kill(worker.pid, signum)
        return
    raise Stopped(signum)


def stop_on_signals() -> None:
    """Make SIGTERM and SIGHUP stop this process as Ctrl-C does (:func:`_stop`), from its main
    thread (elsewhere Python allows no handler). Lightning's own SIGTERM handler, installed
    while it fits, calls this one after its own (which sets a flag and would end the fit with
    exit 0). A nohup'ed SIGHUP stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop)


def ignore_stop_signals() -> None:
    """An idle worker of a launcher ignores SIGTERM and SIGHUP: its sweep stops the workers
    that run a job; an idle one that died would fail the sweep's launcher instead."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)


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
