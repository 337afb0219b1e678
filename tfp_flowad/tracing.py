"""Freeing what TensorFlow and TFP keep, process-wide, of a ``tf.function`` trace that has
finished.

Two global tables keep every trace's graph alive after the models that made it are gone, and
through the graph its captured tensors (on 20k x 20 rows, about 9 graphs and every flow weight
per detector fit; 60-100 MB a fit, so a process that fits many detectors grew to 20 GB):

- TFP's bijector cache, one table shared by all bijectors (the class attribute
  ``Bijector._cache``), holds a call's input strongly for as long as its output lives (so that
  ``inverse(forward(x))`` can return ``x``). Inside a trace both are graph tensors and the graph
  keeps the output alive, so the entry is never dropped.
- ``tf.custom_gradient`` registers each graph-mode call's gradient function under a new name
  in TensorFlow's gradient registry, and the function holds the call's graph tensors. Keras'
  TensorFlow optimizers make one such call per traced train step (the all-reduce of the
  gradients), TFP's ``igammacinv`` another (the tail sampler).

Once a trace has finished, its bijector-cache entries can never be looked up again and its
gradient functions are not needed to run it, so both can go. ``releasing_finished_traces``
does this when a fit, a scoring call or an export returns.
"""

import functools

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow.python.framework import ops

__all__ = ["release_traced_bijector_calls", "releasing_finished_traces"]

#: the name prefix ``tf.custom_gradient`` gives the gradients it registers in graph mode.
CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def release_traced_bijector_calls() -> int:
    """Removes every entry of TFP's shared bijector cache whose tensors are graph tensors.

    Call it when no trace is in progress. Entries of eager calls are kept. Returns the number
    of entries removed.
    """
    # Read through the class __dict__: attribute access would bind a copy to a class.
    storage = tfp.bijectors.Bijector.__dict__["_cache"].storage
    traced = [
        key
        for key in list(storage)
        if any(tf.is_symbolic_tensor(value) for value in tf.nest.flatten(key()))
    ]
    for key in traced:
        key.cancel()
        storage.pop(key, None)
    return len(traced)


def _custom_gradient_names() -> set[str]:
    return {
        name for name in ops._gradient_registry.list() if name.startswith(CUSTOM_GRADIENT_PREFIX)
    }


def releasing_finished_traces(method):
    """Decorates ``method`` so that, when it returns or raises, the traces it made are freed:
    the graph entries of TFP's bijector cache and the custom gradients registered during the
    call are removed."""

    @functools.wraps(method)
    def releasing(*args, **kwargs):
        registered_before = _custom_gradient_names()
        try:
            return method(*args, **kwargs)
        finally:
            release_traced_bijector_calls()
            for name in _custom_gradient_names() - registered_before:
                ops._gradient_registry._registry.pop(name, None)

    return releasing
