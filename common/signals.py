"""Moments a signal must not cut in two: Ctrl-C (SIGINT) or SIGTERM inside `deferred_signals()`
takes effect once the block is left."""
import contextlib
import signal
import threading


@contextlib.contextmanager
def deferred_signals(signals=(signal.SIGINT, signal.SIGTERM)):
    """Holds back the given signals in the main thread, where Python handles them (other threads never
    receive Python-level signals), and delivers them when the block is left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = {s: signal.signal(s, lambda number, frame: pending.append(number)) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)
