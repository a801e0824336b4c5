"""Keyboard interrupts that take effect at the end of a training epoch.

scikit-learn's stochastic solvers catch ``KeyboardInterrupt``, warn "Training
interrupted by user." and keep the model trained so far. The exception is
raised wherever the interpreter next checks for signals. In skmlp almost all of
an epoch runs in one compiled call without the GIL, so a Ctrl-C lands, nearly
always, just after that call returns: the parameters hold the epoch's updates,
but its loss, step count and ``n_iter_`` were never recorded (the call's return
value is lost with the exception). Or it lands in the middle of the epoch's
bookkeeping, leaving ``loss_curve_``, ``validation_scores_``, ``history_`` and
the early-stopping copy out of step.

``deferred_sigint`` therefore records a SIGINT while an epoch and its
bookkeeping run and delivers it, to the handler that was installed before
(Python's default raises ``KeyboardInterrupt``), at the end of the epoch. Only
the main thread receives signals, so only a fit running there installs the
recording handler; fits in other threads are unaffected. A handler that is not
a Python callable (SIG_IGN, SIG_DFL, one installed from C) is left alone.
"""

import signal
import threading
from contextlib import contextmanager


class _DeferredInterrupt:
    def __init__(self):
        self.previous = None
        self.pending = None

    def _record(self, signum, frame):
        if self.pending is None:
            self.pending = (signum, frame)

    def deliver(self):
        """Hand a recorded SIGINT to the previous handler (which may raise)."""
        if self.pending is not None and self.previous is not None:
            signum, frame = self.pending
            self.pending = None
            self.previous(signum, frame)


@contextmanager
def deferred_sigint():
    """Within the block, SIGINT is recorded; ``.deliver()`` acts on it.

    A signal still pending when the block ends (an exception left it early) is
    delivered after the previous handler is back.
    """
    state = _DeferredInterrupt()
    installed = False
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
        if callable(previous):
            state.previous = previous
            signal.signal(signal.SIGINT, state._record)
            installed = True
    try:
        yield state
    finally:
        if installed:
            if signal.getsignal(signal.SIGINT) == state._record:
                signal.signal(signal.SIGINT, state.previous)
            state.deliver()
