"""``NFADetector``'s parameters: declared once, grouped by stage, checked before any training.

Each ``Parameter`` carries its default, the rule a value must follow and its documentation;
``NFADetector``'s signature, its docstring's ``Args`` section and ``check_parameters`` are all
built from ``PARAMETERS``. A parameter's prefix names the stage of Algorithm 1 that reads it:
``flow_`` (step 1, eq. 41), ``distillation_`` (step 2, eq. 34), ``surrogate_`` (step 3),
``classifier_`` (step 4, eq. 6), ``combined_``, ``density_`` and ``neighbour_`` (the combined
score), ``selection_`` (the choices made on held-out known anomalies), ``student_`` (the network
fitted to rank rows like the combined score). Parameters without a prefix concern every stage.

Values of ``"auto"`` depend on whether the training rows hold known anomalies; ``resolve_auto``
turns them into numbers in one place.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tfp_flowad.flows import FLOWS

__all__ = [
    "Parameter",
    "PARAMETERS",
    "CLASSIFIER_MODELS",
    "USER_FLOWS",
    "DISTILLED_FLOWS",
    "check_parameters",
    "resolve_auto",
    "args_section",
]

#: the flows a user may choose (the IAF is only ever the distilled student).
USER_FLOWS = tuple(sorted(set(FLOWS) - {"iaf"}))
#: flows that sample slowly and are distilled into an IAF before tail sampling.
DISTILLED_FLOWS = ("maf",)
#: the values of ``classifier_model``.
CLASSIFIER_MODELS = ("auto", "mlp", "boosted_trees", "mlp+boosted_trees")


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _integer(minimum: int) -> tuple[Callable, str]:
    return (lambda v: _is_integer(v) and v >= minimum), f"an integer >= {minimum}"


def _number(low: float, high: float, closed: str) -> tuple[Callable, str]:
    """A number in the interval from ``low`` to ``high``; ``closed`` says which ends belong to
    it: ``"both"``, ``"low"``, ``"high"`` or ``"neither"``."""
    low_ok = (lambda v: v >= low) if closed in ("both", "low") else (lambda v: v > low)
    high_ok = (lambda v: v <= high) if closed in ("both", "high") else (lambda v: v < high)
    brackets = {"both": "[]", "low": "[)", "high": "(]", "neither": "()"}[closed]
    shown_high = "inf" if high == np.inf else high
    return (
        (lambda v: _is_number(v) and low_ok(v) and high_ok(v)),
        f"a number in {brackets[0]}{low}, {shown_high}{brackets[1]}",
    )


def _one_of(values) -> tuple[Callable, str]:
    return (lambda v: isinstance(v, str) and v in values), f"one of {list(values)}"


def _or(rule: tuple[Callable, str], *extra) -> tuple[Callable, str]:
    """``rule`` or one of the ``extra`` values (``None``, ``"auto"``, ...)."""
    check, expected = rule
    shown = " or ".join(repr(e) for e in extra)
    return (lambda v: any(v is e or v == e for e in extra) or check(v)), f"{expected} or {shown}"


def _hidden_units() -> tuple[Callable, str]:
    return (
        lambda v: (
            isinstance(v, (tuple, list))
            and len(v) > 0
            and all(_is_integer(u) and u >= 1 for u in v)
        )
    ), "a non-empty tuple of integers >= 1"


def _boolean() -> tuple[Callable, str]:
    return (lambda v: isinstance(v, (bool, np.bool_))), "True or False"


def _anything() -> tuple[Callable, str]:
    return (lambda v: True), "anything"


@dataclass(frozen=True)
class Parameter:
    """One constructor argument of ``NFADetector``.

    Attributes:
        name: the argument's name.
        default: its default value.
        rule: ``(check, expected)``: ``check(value)`` is true for a valid value; ``expected``
            describes valid values in the error message.
        doc: what it does, for the class docstring.
    """

    name: str
    default: object
    rule: tuple[Callable, str]
    doc: str

    def check(self, value) -> None:
        """Raises ``ValueError`` naming the parameter and ``value`` unless it is valid."""
        check, expected = self.rule
        if not check(value):
            raise ValueError(f"{self.name} must be {expected}; got {value!r}")


PARAMETERS = (
    # -- step 1: the flow, eq. (41)
    Parameter(
        "flow",
        "maf",
        _one_of(USER_FLOWS),
        "the flow fitted to the normal rows: ``'maf'`` (distilled into an IAF for sampling), "
        "``'realnvp'``, ``'planar'`` or ``'radial'``.",
    ),
    Parameter("flow_layers", 6, _integer(1), "number of flow steps."),
    Parameter(
        "flow_hidden_units",
        (64, 64),
        _hidden_units(),
        "hidden widths of each step's network (MADE or coupling network).",
    ),
    Parameter(
        "flow_epochs",
        6,
        _integer(1),
        "passes over the normal rows that the flow fit plans (more where ``flow_min_steps`` asks "
        "for more); the held-out NLL is measured after every pass, and the fit stops after "
        "``flow_patience`` passes without a better one, keeping the best pass's weights.",
    ),
    Parameter(
        "flow_min_steps",
        300,
        _integer(0),
        "the flow fit plans at least this many steps, in whole passes; 0 turns the floor off.",
    ),
    Parameter(
        "flow_patience",
        2,
        _integer(1),
        "passes without a better held-out NLL before the flow fit stops.",
    ),
    Parameter(
        "flow_jacobian_penalty",
        1e-3,
        _number(0.0, np.inf, "low"),
        "``lambda`` of eq. (41), the weight of ``L_J = E_z[log|det J(f|z)|^2]``; 0 turns the "
        "regulariser off.",
    ),
    Parameter(
        "flow_penalty_every",
        20,
        _integer(1),
        "estimate ``L_J`` every this many steps (weighted to stay unbiased).",
    ),
    Parameter("flow_penalty_batch_size", 32, _integer(1), "base samples per ``L_J`` estimate."),
    Parameter(
        "flow_learning_rate",
        3e-3,
        _number(0.0, np.inf, "neither"),
        "peak Adam learning rate of the flow fit (linear warm-up over the first tenth of the "
        "planned steps, then a cosine decay to 5 % of it).",
    ),
    Parameter(
        "flow_clipnorm",
        1.0,
        _number(0.0, np.inf, "neither"),
        "global gradient-norm clip of the flow fit.",
    ),
    # -- step 2: distillation into an IAF, eq. (34)
    Parameter(
        "distillation_steps",
        200,
        _integer(1),
        "steps of probability distillation, ``min KL(P_IAF || P_MAF)``.",
    ),
    Parameter(
        "distillation_learning_rate",
        1e-3,
        _number(0.0, np.inf, "neither"),
        "Adam learning rate of the distillation.",
    ),
    Parameter(
        "distillation_clipnorm",
        None,
        _or(_number(0.0, np.inf, "neither"), None),
        "global gradient-norm clip of the distillation, or ``None``.",
    ),
    # -- step 3: surrogate anomalies
    Parameter(
        "surrogate_tail_p_value",
        0.05,
        _number(0.0, 1.0, "high"),
        "mass of the base Gaussian's tail that surrogate anomalies are drawn from.",
    ),
    Parameter(
        "surrogate_box_share",
        0.5,
        _number(0.0, 1.0, "both"),
        "share of surrogates drawn uniformly from a box around the normal rows (the rest come "
        "from the flow's tail): tail samples alone sit on a shell around the normal rows and "
        "leave the classifier blind in every other direction.",
    ),
    Parameter(
        "surrogate_box_margin",
        2.0,
        _number(0.0, np.inf, "low"),
        "the box is the normal rows' bounding box (in encoded features) widened by this "
        "multiple of its width on each side.",
    ),
    # -- step 4: the (1 + eps)-class classifier, eq. (6)
    Parameter(
        "classifier_model",
        "auto",
        _one_of(CLASSIFIER_MODELS),
        "``'mlp'``: one MLP trained with fresh surrogates at every step; "
        "``'boosted_trees'``: gradient-boosted trees on the same weighted loss over one pool of "
        "surrogates; ``'mlp+boosted_trees'``: both, their logits averaged; ``'auto'``: the MLP "
        "one-class, the MLP and the trees with known anomalies, the trees dropped again where "
        "held-out known anomalies rank better without them (``classifier_model_``).",
    ),
    Parameter("classifier_hidden_units", (64, 32), _hidden_units(), "hidden widths of each MLP."),
    Parameter(
        "classifier_epochs", 4, _integer(1), "passes over the normal rows of the classifier fit."
    ),
    Parameter(
        "classifier_min_steps",
        300,
        _integer(0),
        "the classifier trains for at least this many steps, however few the normal rows.",
    ),
    Parameter(
        "classifier_averaging",
        "auto",
        _or(_number(0.0, 1.0, "low"), None, "auto"),
        "momentum ``m`` of the exponential moving average of the classifier's weights, "
        "``w_avg <- m w_avg + (1 - m) w_t`` (at most over the last third of the fit); ``None`` "
        "keeps the last iterate; ``'auto'``: 0.99 with known anomalies, ``None`` one-class.",
    ),
    Parameter(
        "classifier_gamma",
        1.0,
        _number(0.0, np.inf, "low"),
        "``gamma`` of eq. (6): the weight of the known-anomaly term.",
    ),
    Parameter(
        "classifier_eps",
        0.05,
        _number(0.0, 1.0, "both"),
        "``eps`` of eq. (6): the surrogate term is weighted ``1 - eps``.",
    ),
    Parameter(
        "classifier_adaptive_eps",
        True,
        _boolean(),
        "with known anomalies, weight the surrogate term by how well the flow's density "
        "separates them from held-out normal rows: ``1 - eps_ = (1 - classifier_eps) "
        "clip(2 AUC - 1, 0, 1)``; surrogates teach that low-density rows are anomalies, which "
        "is wrong where the known anomalies sit inside the normal bulk.",
    ),
    Parameter(
        "classifier_learning_rate",
        1e-3,
        _number(0.0, np.inf, "neither"),
        "Adam learning rate of the classifier (and of its distillation).",
    ),
    # -- the combined score
    Parameter(
        "combined_classifier_weight",
        None,
        _or(_number(0.0, np.inf, "low"), None),
        "``w_c``, the weight of the classifier's term in the combined score; ``None``: 1 with "
        "known anomalies, 0.25 one-class.",
    ),
    Parameter(
        "neighbour_rows",
        4096,
        _or(_integer(2), 0),
        "normal training rows kept as references for the combined score's neighbour term "
        "``d(x)``, the distance from ``x`` to the nearest of them in encoded features; 0 leaves "
        "the term out. It shares the density's weight: a flow smooths over the gaps between "
        "tight clusters of normal rows, the distance to real normal rows does not. Every score "
        "costs ``neighbour_rows * D`` multiply-adds a row.",
    ),
    Parameter(
        "density_temperature",
        1.0,
        _number(0.0, np.inf, "neither"),
        "``T`` of the density score ``-log p_T(x)``, the flow's log-density with its base "
        "Gaussian's scale set to ``T``: a lower ``T`` ranks rows more by how far ``f^-1(x)`` "
        "lies from the base space's centre.",
    ),
    # -- choices made on held-out known anomalies
    Parameter(
        "selection_min_known",
        20,
        _or(_integer(1), None),
        "with at least this many known anomalies, a share of them is held out from a second "
        "classifier trained alongside, and the density's weight (``density_scale_``) and the "
        "classifier model are chosen on them; ``None`` turns the choice off.",
    ),
    Parameter(
        "selection_share",
        0.2,
        _number(0.0, 1.0, "neither"),
        "share of the known anomalies held out for that choice (at least "
        "``MIN_SELECTION_ROWS`` held out and as many kept).",
    ),
    # -- the student score
    Parameter(
        "student_steps",
        3000,
        _integer(0),
        "steps of the ``'student'`` score's network, one MLP of ``classifier_hidden_units`` "
        "fitted last to rank rows like the combined score, at the cost of one network for "
        "serving; 0 fits none.",
    ),
    Parameter(
        "student_target_quantile",
        0.99,
        _number(0.0, 1.0, "neither"),
        "the quantile of the combined score over the normal training rows where the "
        "student's soft label is 1/2.",
    ),
    Parameter("student_batch_size", 512, _integer(1), "rows of each kind per step of the student."),
    # -- every stage
    Parameter(
        "score_kind",
        "combined",
        _one_of(("combined", "density", "classifier", "student")),
        "what ``decision_function``, ``predict`` and the export return: ``'combined'``, "
        "``'density'``, ``'classifier'`` or ``'student'``. Every kind is fitted either way; "
        "it may be changed after ``fit``, and ``threshold_`` follows it.",
    ),
    Parameter(
        "batch_size",
        1024,
        _integer(1),
        "rows per step of the flow, the distillation and the classifier.",
    ),
    Parameter(
        "validation_fraction",
        0.1,
        _number(0.0, 1.0, "low"),
        "share of the normal rows held out for early stopping and the held-out checks.",
    ),
    Parameter(
        "log_transform",
        "auto",
        _or(_boolean(), "auto"),
        "``log1p`` of heavy-tailed numeric columns: ``'auto'``, ``True`` or ``False`` (see "
        "``TabularEncoder.fit``).",
    ),
    Parameter(
        "contamination",
        0.01,
        _number(0.0, 0.5, "neither"),
        "expected share of anomalies: ``threshold_`` is the ``1 - contamination`` quantile of "
        "the training rows' scores.",
    ),
    Parameter(
        "random_state",
        None,
        _or(_integer(0), None),
        "integer seed; the same seed gives the same scores on CPU.",
    ),
    Parameter(
        "categorical_columns",
        "auto",
        _anything(),
        "names of categorical columns, or ``'auto'`` (string-like dtypes).",
    ),
    Parameter(
        "verbose",
        0,
        _integer(0),
        "0 silent; 1 one progress line per stage on stderr, with the time left; 2 Keras' "
        "lines per epoch.",
    ),
)


def check_parameters(params: dict) -> None:
    """Raises ``ValueError`` naming the first invalid parameter of ``params`` (name -> value)
    and the value received; also checks the rules that tie parameters together."""
    for parameter in PARAMETERS:
        parameter.check(params[parameter.name])
    if params["score_kind"] == "student" and not params["student_steps"]:
        raise ValueError("score_kind='student' needs student_steps >= 1; got 0")


def resolve_auto(params: dict, n_known: int) -> dict:
    """The ``"auto"`` / ``None`` defaults that depend on the data, for ``n_known`` known
    anomalies (0: one-class): ``classifier_averaging``,
    ``combined_classifier_weight`` and the classifiers ``classifier_model`` trains
    (``classifier_parts``, a tuple of ``"mlp"`` / ``"boosted_trees"``)."""
    known = n_known > 0
    averaging = params["classifier_averaging"]
    weight = params["combined_classifier_weight"]
    model = params["classifier_model"]
    if model == "auto":
        parts = ("mlp", "boosted_trees") if known else ("mlp",)
    else:
        parts = tuple(model.split("+"))
    return {
        "classifier_averaging": (0.99 if known else None) if averaging == "auto" else averaging,
        "combined_classifier_weight": (1.0 if known else 0.25) if weight is None else weight,
        "classifier_parts": parts,
    }


def args_section(parameters=PARAMETERS, width: int = 96) -> str:
    """The ``Args:`` section of a docstring listing ``parameters`` with their defaults."""
    import textwrap

    lines = ["Args:"]
    for parameter in parameters:
        text = f"{parameter.name}: {parameter.doc} Default ``{parameter.default!r}``."
        lines += textwrap.wrap(text, width, initial_indent="    ", subsequent_indent="        ")
    return "\n".join(lines)
