"""Progress of a training stage: one line that the stage rewrites as it goes.

``NFADetector(verbose=1)`` (the CLI's default) shows one line per stage, such as
``flow: 120/300 steps, 14 s, about 21 s left``, ended by ``flow: done in 35 s``; ``verbose=2``
hands Keras' own per-epoch lines through instead, and ``verbose=0`` is silent.
"""

import sys
import time

import keras

__all__ = ["StageProgress", "fit_options"]


class StageProgress(keras.callbacks.Callback):
    """Keras callback that writes a training stage's progress on one line of ``stream``.

    Steps are counted by the optimizer's iterations. The time left is the seconds per step
    since the first step (which includes the tracing) times the steps left of ``steps`` (the
    steps planned; a fit that stops early ends sooner). The line is rewritten at most every
    ``interval`` seconds, and ended with the stage's total time when the fit ends.
    """

    def __init__(self, stage: str, steps: int, stream=None, interval: float = 0.5):
        super().__init__()
        self.stage, self.steps, self.interval = stage, max(int(steps), 1), interval
        self.stream = sys.stderr if stream is None else stream

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.first = int(self.model.optimizer.iterations.numpy())
        self.traced = None  # (time, steps) when the first step (and its tracing) was done
        self.shown = 0.0

    def on_train_batch_end(self, batch, logs=None):
        done = int(self.model.optimizer.iterations.numpy()) - self.first
        now = time.perf_counter()
        if self.traced is None:
            self.traced = (now, done)
        if now - self.shown < self.interval:
            return
        self.shown = now
        text = f"{self.stage}: {min(done, self.steps)}/{self.steps} steps, {now - self.start:.0f} s"
        since, steps_then = self.traced
        if done > steps_then:
            left = (now - since) / (done - steps_then) * max(self.steps - done, 0)
            text += f", about {left:.0f} s left"
        self._write(text)

    def on_train_end(self, logs=None):
        self._write(f"{self.stage}: done in {time.perf_counter() - self.start:.1f} s")
        self.stream.write("\n")
        self.stream.flush()

    def _write(self, text: str) -> None:
        self.stream.write(f"\r{text:<60}")
        self.stream.flush()


def fit_options(verbose: int, stage: str, steps: int) -> dict:
    """The ``verbose`` and ``callbacks`` arguments of a stage's Keras ``fit`` for the detector's
    ``verbose``: 1 shows ``StageProgress``, 2 Keras' lines per epoch, 0 nothing."""
    if verbose == 1:
        return {"verbose": 0, "callbacks": [StageProgress(stage, steps)]}
    return {"verbose": 2 if verbose >= 2 else 0, "callbacks": []}
