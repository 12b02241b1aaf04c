"""Non-convex training baselines, one module each (installed as ``dualnets.baselines``).

Each module registers one class in :mod:`dualnets.registry` (model "network", found by package
discovery); ``solve(problem)`` returns a :class:`~dualnets.result.Result` whose ``network`` is
the best trained network.  ``common`` holds the training loop they share.
"""
