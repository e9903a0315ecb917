"""Sweeps: a grid of runs (tasks × model pairs × methods × modes × seeds) sharing cached stages.

``grid``  expands a sweep YAML into RunConfigs; ``plan`` lists the stages they need (deduplicated
across runs) and which are cached; ``local`` runs them in worker processes.
"""

from .grid import SweepSpec, expand, load_sweep

__all__ = ["SweepSpec", "expand", "load_sweep"]
