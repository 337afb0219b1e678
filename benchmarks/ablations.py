"""Research ablations and options of the detector, run through the package's benchmark runner.

``ABLATIONS`` maps each method name to the ``NFADetector`` configuration it fits
(``tfp_flowad.benchmark.NFMethod``). The runner takes them as ``extra_methods``, so their
records have the keys and format of every other record and sit beside them in
``benchmarks/results/<data set>/results.jsonl``:

* ``nf-no-neighbours``: ``neighbour_rows=0``, the combined score without its neighbour term.
* Each of the following also leaves the neighbour term out, so it differs from
  ``nf-no-neighbours`` in one thing:

  * ``nf-no-jacobian``: the flow fitted without the Jacobian regulariser
    (``flow_jacobian_penalty=0``);
  * ``nf-realnvp``, ``nf-planar``, ``nf-radial``: another flow (``flow=...``);
  * ``nf-mlp-trees``: ``classifier_model="mlp+boosted_trees"``, gradient-boosted trees beside
    the MLP classifier; tasks with known anomalies only (one-class the trees would learn from
    surrogate anomalies alone).

* ``nf-mlp-trees-neighbours``: the default with the trees always kept
  (``classifier_model="mlp+boosted_trees"``: no held-out check of them); tasks with known
  anomalies only.
* ``nf-mlp``: the default with the MLP alone (``classifier_model="mlp"``); tasks with
  known anomalies only (one-class the default's classifier is the MLP alone).
* The default's parts with known anomalies, each left out of the default alone (tasks with known
  anomalies only; one-class the default does not use them):

  * ``nf-no-averaging``: the last iterate instead of the weight average
    (``classifier_averaging=None``);
  * ``nf-fixed-eps``: the surrogate term's weight fixed (``classifier_adaptive_eps=False``);
  * ``nf-no-selection``: no held-out choice of the density's weight and of the trees
    (``selection_min_known=None``; the trees are then kept).

Usage (the options of ``tfp-flowad benchmark``; ``--methods`` defaults to every ablation and
also takes the package's methods)::

    python benchmarks/ablations.py --dataset kdd99 --methods nf-no-jacobian --seeds 0-4 \\
        --out benchmarks/results/kdd99

writes ``OUT/results.jsonl`` (fits already there are skipped), ``OUT/table.md`` and
``OUT/auc.png``, as the command does.
"""

from __future__ import annotations

import argparse

from tfp_flowad.benchmark import NFMethod, add_benchmark_arguments

#: the neighbour term left out (the default's combined score without it).
_WITHOUT_NEIGHBOURS = (("neighbour_rows", 0),)

#: method name -> ``NFADetector`` configuration, in table order.
ABLATIONS: dict[str, NFMethod] = {
    "nf-no-neighbours": NFMethod(overrides=_WITHOUT_NEIGHBOURS),
    "nf-no-jacobian": NFMethod(overrides=(("flow_jacobian_penalty", 0.0), *_WITHOUT_NEIGHBOURS)),
    "nf-realnvp": NFMethod(overrides=(("flow", "realnvp"), *_WITHOUT_NEIGHBOURS)),
    "nf-planar": NFMethod(overrides=(("flow", "planar"), *_WITHOUT_NEIGHBOURS)),
    "nf-radial": NFMethod(overrides=(("flow", "radial"), *_WITHOUT_NEIGHBOURS)),
    "nf-mlp-trees": NFMethod(
        overrides=(("classifier_model", "mlp+boosted_trees"), *_WITHOUT_NEIGHBOURS),
        known_only=True,
    ),
    "nf-mlp-trees-neighbours": NFMethod(
        overrides=(("classifier_model", "mlp+boosted_trees"),), known_only=True
    ),
    "nf-mlp": NFMethod(overrides=(("classifier_model", "mlp"),), known_only=True),
    "nf-no-averaging": NFMethod(overrides=(("classifier_averaging", None),), known_only=True),
    "nf-fixed-eps": NFMethod(overrides=(("classifier_adaptive_eps", False),), known_only=True),
    "nf-no-selection": NFMethod(overrides=(("selection_min_known", None),), known_only=True),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/ablations.py", description=__doc__.splitlines()[0]
    )
    add_benchmark_arguments(parser, ABLATIONS)
    parser.set_defaults(methods=",".join(ABLATIONS))
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
