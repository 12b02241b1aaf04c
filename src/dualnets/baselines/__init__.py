"""Non-convex training baselines: projected SGD and Adam on NC, and plain weight decay.

Each module registers one class in :mod:`dualnets.registry` (model "network"); ``solve(problem)``
returns a :class:`~dualnets.result.Result` whose ``network`` is the best trained network.
"""

BASELINES: tuple[str, ...] = ("sgd", "adam", "plain-wd")
DEFAULT_BASELINE = "adam"
