"""The construction shared by ``Planar`` and ``Radial``: a vector bijector of tensor parameters."""

from __future__ import annotations

from typing import ClassVar

import tensorflow as tf
from tensorflow_probability.python.bijectors import bijector
from tensorflow_probability.python.internal import (
    dtype_util,
    parameter_properties,
    tensor_util,
)

__all__ = ["TensorParameterBijector"]


class TensorParameterBijector(bijector.Bijector):
    """A bijector ``y = f(x)`` of ``x`` in ``R^D`` whose parameters are tensors of one dtype.

    ``vector_parameters`` name the parameters of shape ``[..., D]``, ``scalar_parameters``
    those of shape ``[...]`` (one value per bijector of the batch). A subclass lists them in
    those two class attributes, takes them as ``__init__`` arguments of the same names, exposes
    them as properties of the same names (TFP's batch-shape inference reads them) and calls
    ``super().__init__(dict(locals()), validate_args, name)``. Each parameter is stored as
    ``self._<name>``, converted to the parameters' common dtype (``float32`` by default).
    The vector parameters must share their event size ``D``: checked on the static shapes at
    construction and, with ``validate_args``, on the dynamic ones.

    The map is on vectors (``forward_min_event_ndims = 1``) with a Jacobian that depends on
    ``x``. The bijector owns no variables: build it inside the computation that needs
    gradients.

    Args:
        parameters: the subclass's ``__init__`` arguments, ``dict(locals())`` (it is also
            TFP's ``parameters``).
        validate_args: Python bool; check the event sizes at run time too.
        name: Name of the bijector's name scope.

    Raises:
        ValueError: If the static event sizes of the vector parameters differ.
    """

    #: Names of the parameters of shape ``[..., D]``.
    vector_parameters: ClassVar[tuple[str, ...]] = ()
    #: Names of the parameters of shape ``[...]``.
    scalar_parameters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, parameters: dict, validate_args: bool, name: str) -> None:
        names = self.vector_parameters + self.scalar_parameters
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype(
                [parameters[key] for key in names], dtype_hint=tf.float32
            )
            for key in names:
                tensor = tensor_util.convert_nonref_to_tensor(
                    parameters[key], dtype=dtype, name=key
                )
                setattr(self, f"_{key}", tensor)
            self._check_static_event_sizes()
            super().__init__(
                forward_min_event_ndims=1,
                is_constant_jacobian=False,
                validate_args=validate_args,
                dtype=dtype,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        vector = parameter_properties.ParameterProperties(event_ndims=1)
        scalar = parameter_properties.ParameterProperties(
            event_ndims=0, shape_fn=lambda shape: shape[:-1]
        )
        return {
            **dict.fromkeys(cls.vector_parameters, vector),
            **dict.fromkeys(cls.scalar_parameters, scalar),
        }

    def _vector_tensors(self) -> dict[str, tf.Tensor]:
        """The vector parameters by name."""
        return {key: getattr(self, f"_{key}") for key in self.vector_parameters}

    def _check_static_event_sizes(self) -> None:
        shapes = {key: tensor.shape for key, tensor in self._vector_tensors().items()}
        sizes = {tf.compat.dimension_value(shape[-1]) for shape in shapes.values() if shape.rank}
        if len(sizes - {None}) > 1:
            raise ValueError(
                f"{' and '.join(shapes)} must have the same event size; got "
                + " and ".join(f"{key}.shape={shape}" for key, shape in shapes.items())
            )

    def _parameter_control_dependencies(self, is_init):
        vectors = self._vector_tensors()
        if not self.validate_args or len(vectors) < 2:
            return []
        if is_init == any(tensor_util.is_ref(tensor) for tensor in vectors.values()):
            return []  # checked at init when no parameter is a variable, else on every call
        first, *others = vectors.values()
        names = " and ".join(f"`{key}`" for key in vectors)
        return [
            tf.debugging.assert_equal(
                tf.shape(first)[-1],
                tf.shape(other)[-1],
                message=f"Arguments {names} must have the same event size.",
            )
            for other in others
        ]
