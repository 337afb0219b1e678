"""The benchmark's methods: what each method name fits, and on which tasks it runs.

Methods (``METHODS``, in table order): the baselines of ``tfp_flowad.baselines.BASELINES``
(the paper's, then the reference detectors), then ``normalising-flow`` (``NFADetector()``, its
default score), ``normalising-flow-density``, ``normalising-flow-classifier`` and
``normalising-flow-student``: the same fit scored by ``-log p(x)`` alone, by the paper's
(1 + eps)-class classifier alone, and by the one network fitted to rank rows like the default
score (``score_kind="student"``). The four are one ``NFADetector`` fit scored four ways.

Other ``NFADetector`` configurations join a run as ``extra_methods``: a mapping of new method
names to ``NFMethod`` (the research ablations of ``benchmarks/ablations.py`` are such a
mapping). ``MethodTable`` puts them after ``METHODS``.

Which tasks a method runs on: two-class baselines (``needs_known_anomalies``) skip the
one-class tasks; one-class baselines (``uses_known_anomalies = False``: ``deep-svdd-oc``,
``rae-oc``, ``iforest-oc``, ``knn-oc``) run on the one-class tasks only, since their fit
ignores the known anomalies; an ``NFMethod`` with ``known_only`` skips the one-class tasks.
The one-class tasks are ``one-class`` and, in the development suite, ``nN``,
``synthetic-<kind>`` and ``literature-oc`` (``tfp_flowad.benchmark.tasks.is_one_class_task``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tfp_flowad.base import scale_training_lengths
from tfp_flowad.baselines import BASELINES
from tfp_flowad.benchmark.tasks import is_one_class_task

__all__ = [
    "BASELINE_METHODS",
    "METHODS",
    "NF_METHODS",
    "MethodTable",
    "NFMethod",
    "parse_methods",
]


@dataclass(frozen=True)
class NFMethod:
    """An ``NFADetector`` configuration recorded as one benchmark method.

    Attributes:
        overrides: constructor arguments that differ from the defaults, as ``(name, value)``
            pairs. Methods with equal ``overrides`` share one fit.
        score_kind: the score its records read (``None``: the detector's default).
        known_only: run on tasks with known anomalies only (skip the one-class task).
    """

    overrides: tuple[tuple[str, object], ...] = ()
    score_kind: str | None = None
    known_only: bool = False


#: the normalising-flow methods: one default fit, each method reading one score of it.
NF_METHODS: dict[str, NFMethod] = {
    "normalising-flow": NFMethod(),
    "normalising-flow-density": NFMethod(score_kind="density"),
    "normalising-flow-classifier": NFMethod(score_kind="classifier"),
    "normalising-flow-student": NFMethod(score_kind="student"),
}

#: the baselines, in the order of ``tfp_flowad.baselines.BASELINES``.
BASELINE_METHODS: tuple[str, ...] = tuple(BASELINES)

#: every method of the package, in table order.
METHODS: tuple[str, ...] = BASELINE_METHODS + tuple(NF_METHODS)


class MethodTable:
    """The methods a run may use: ``METHODS``, then ``extra_methods`` in their given order.

    Args:
        extra_methods: more ``NFADetector`` configurations, method name -> ``NFMethod``.

    Raises:
        ValueError: an extra name that is already a method, an extra that is not an
            ``NFMethod``, or an override that is not an ``NFADetector`` parameter.
    """

    def __init__(self, extra_methods: Mapping[str, NFMethod] | None = None):
        extra = dict(extra_methods or {})
        taken = sorted(set(extra) & set(METHODS))
        if taken:
            raise ValueError(f"extra_methods: {taken} are already methods of the package")
        for name, method in extra.items():
            if not isinstance(method, NFMethod):
                raise ValueError(f"extra_methods: {name!r} is not an NFMethod; got {method!r}")
        if extra:
            from tfp_flowad.detector import NFADetector

            known = set(NFADetector().get_params())
            for name, method in extra.items():
                unknown = sorted({key for key, _ in method.overrides} - known)
                if unknown:
                    raise ValueError(
                        f"extra_methods: {name!r} sets {unknown}, not NFADetector parameters"
                    )
        self.nf_methods: dict[str, NFMethod] = {**NF_METHODS, **extra}
        self.names: tuple[str, ...] = METHODS + tuple(extra)

    def parse(self, methods: str | Iterable[str]) -> list[str]:
        """``"all"``, ``"baselines"``, ``"nf"`` (every ``NFADetector`` method, extras included)
        or names (a list or a comma-separated string).

        Returns:
            The method names in table order (``names``), without repeats.

        Raises:
            ValueError: an unknown name (the message names it and lists the known ones).
        """
        given = methods.split(",") if isinstance(methods, str) else list(methods)
        groups = {
            "all": self.names,
            "baselines": BASELINE_METHODS,
            "nf": tuple(self.nf_methods),
        }
        chosen: set[str] = set()
        for raw in given:
            name = str(raw).strip()
            if name in groups:
                chosen.update(groups[name])
            elif name in self.names:
                chosen.add(name)
            elif name:
                raise ValueError(
                    f"methods: unknown method {name!r}; known methods: all, baselines, nf, "
                    + ", ".join(self.names)
                )
        if not chosen:
            raise ValueError(f"methods: no method given in {methods!r}")
        return [name for name in self.names if name in chosen]

    def applies(self, method: str, task_name: str) -> bool:
        """Whether ``method`` runs on the task named ``task_name`` (see the module docstring)."""
        one_class = is_one_class_task(task_name)
        if method in self.nf_methods:
            return not (one_class and self.nf_methods[method].known_only)
        detector_class = BASELINES[method]
        if one_class:
            return not detector_class.needs_known_anomalies
        return detector_class.uses_known_anomalies

    def fit_key(self, method: str) -> tuple:
        """Methods with equal keys share one fit."""
        if method in self.nf_methods:
            return ("nf", self.nf_methods[method].overrides)
        return ("baseline", method)

    def score_kind(self, method: str) -> str | None:
        """The score kind ``method``'s records read (``None``: the detector's own)."""
        return self.nf_methods[method].score_kind if method in self.nf_methods else None

    def make_detector(self, method: str, seed: int, epochs_scale: float = 1.0):
        """An unfitted detector of ``method`` with ``random_state=seed`` and every training
        length multiplied by ``epochs_scale`` (``tfp_flowad.base.scale_training_lengths``)."""
        if method in self.nf_methods:
            from tfp_flowad.detector import NFADetector

            detector = NFADetector(random_state=seed, **dict(self.nf_methods[method].overrides))
        else:
            detector = BASELINES[method](random_state=seed)
        if epochs_scale != 1.0:
            detector = scale_training_lengths(detector, epochs_scale)
        return detector


def parse_methods(
    methods: str | Iterable[str], extra_methods: Mapping[str, NFMethod] | None = None
) -> list[str]:
    """``MethodTable(extra_methods).parse(methods)``: the chosen method names in table order."""
    return MethodTable(extra_methods).parse(methods)
