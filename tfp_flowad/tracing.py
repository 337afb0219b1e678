"""Keeping TensorFlow and TFP from holding on to the graphs of finished traces.

Two process-wide tables would keep every trace's graph alive after the models that made it are
gone, and through the graph its captured weights:

- TFP's bijector cache, one table shared by all bijectors (the class attribute
  ``Bijector._cache``), holds a call's input strongly for as long as its output lives (so that
  ``inverse(forward(x))`` can return ``x``). Inside a trace both are graph tensors and the graph
  keeps the output alive, so an entry is never dropped.
- ``tf.custom_gradient`` registers each graph-mode call's gradient function under a new name in
  TensorFlow's gradient registry, and the function holds the call's graph tensors. Keras'
  optimizers make one such call per traced train step (the all-reduce of the gradients), TFP's
  ``igammacinv`` another (the tail sampler).

An entry whose graph belongs to a finished trace can never be used again: its cache key is a
tensor of a graph that takes no more operations, and its gradient was taken inside the trace.
``releasing_finished_traces`` removes such entries, and only those, when the decorated call
returns: the custom gradients registered during the call and the cache entries, whose traces
have finished. A trace still being built (in another thread) keeps everything it holds.
"""

import functools

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow.python.framework import func_graph, ops

__all__ = ["release_finished_bijector_calls", "releasing_finished_traces"]

#: the name prefix ``tf.custom_gradient`` gives the gradients it registers in graph mode.
CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def release_finished_bijector_calls() -> int:
    """Removes the entries of TFP's shared bijector cache whose tensors belong to finished
    traces; returns how many. Entries of eager calls and of traces in progress are kept."""
    # Read through the class __dict__: attribute access would bind a copy to a class.
    storage = tfp.bijectors.Bijector.__dict__["_cache"].storage
    finished = [
        key
        for key in list(storage)
        if _graphs_finished(v.graph for v in tf.nest.flatten(key()) if tf.is_symbolic_tensor(v))
    ]
    for key in finished:
        key.cancel()
        storage.pop(key, None)
    return len(finished)


def _custom_gradient_names() -> set[str]:
    return {
        name for name in ops._gradient_registry.list() if name.startswith(CUSTOM_GRADIENT_PREFIX)
    }


def _graphs_finished(graphs) -> bool | None:
    """Whether every one of ``graphs`` belongs to a trace that has finished (its outermost
    function graph has its outputs set); ``None`` without any graph (an eager entry)."""
    graphs = set(graphs)
    if not graphs:
        return None
    for graph in graphs:
        while isinstance(getattr(graph, "outer_graph", None), func_graph.FuncGraph):
            graph = graph.outer_graph
        if not isinstance(graph, func_graph.FuncGraph) or graph.structured_outputs is None:
            return False
    return True


def _trace_finished(gradient_function) -> bool:
    """Whether the graph tensors that ``gradient_function`` holds (through its closures) all
    belong to finished traces."""
    graphs, seen = set(), set()
    pending = [gradient_function]
    while pending:
        function = pending.pop()
        if id(function) in seen:
            continue
        seen.add(id(function))
        for cell in getattr(function, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if callable(value) and getattr(value, "__closure__", None):
                pending.append(value)
            for item in tf.nest.flatten(value):
                if tf.is_symbolic_tensor(item):
                    graphs.add(item.graph)
    return bool(_graphs_finished(graphs))


def releasing_finished_traces(method):
    """Decorates ``method`` so that, when it returns or raises, the entries of finished traces
    are removed: the custom gradients registered during the call, and TFP's bijector cache."""

    @functools.wraps(method)
    def releasing(*args, **kwargs):
        registered_before = _custom_gradient_names()
        try:
            return method(*args, **kwargs)
        finally:
            release_finished_bijector_calls()
            registry = ops._gradient_registry._registry
            for name in _custom_gradient_names() - registered_before:
                entry = registry.get(name)
                if entry is not None and _trace_finished(entry["type"]):
                    registry.pop(name, None)

    return releasing
