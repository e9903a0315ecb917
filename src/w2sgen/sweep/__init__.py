"""Sweeps: a grid of runs (tasks × model pairs × methods × modes × seeds) sharing cached stages.

``grid``  expands a sweep YAML into RunConfigs; ``plan`` lists the stages they need (deduplicated
across runs) and which are cached; ``local`` runs them in worker processes, ``ray_exec`` as Ray
tasks (local Ray or a cluster); ``progress`` draws stages done / running / left while they go.
"""

from .grid import SweepSpec, expand, load_sweep

__all__ = ["SweepSpec", "expand", "load_sweep"]
