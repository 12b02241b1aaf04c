"""Pattern sampling over n x d x m1: ``sample_patterns`` of ``PROFILE.n_patterns`` patterns."""

from __future__ import annotations

from dualnets.datasets import load_dataset
from dualnets.patterns import sample_patterns

from .caches import PROFILE
from .common import pin_threads


class PatternSampling:
    """Drawing Gaussian sub-networks, reading off and deduplicating their activation patterns."""

    params = (list(PROFILE.n), list(PROFILE.d), list(PROFILE.m1))
    param_names = ("n", "d", "m1")
    timeout = PROFILE.timeouts["sampling"]

    def setup(self, n, d, m1):
        pin_threads()
        # cheap: one Gaussian draw and a small teacher network (well under 0.1 s at the largest)
        self.X = load_dataset("planted", n=n, d=d, seed=PROFILE.seed).X_train

    def time_pattern_sampling(self, n, d, m1):
        sample_patterns(self.X, m1, PROFILE.n_patterns, seed=PROFILE.seed)
