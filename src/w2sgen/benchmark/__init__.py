"""The weak-to-strong benchmark: frozen, versioned suites; a method as one file; a leaderboard with
honest ties (issue 17).

``suite``       suite files (shipped in ``suites/``): parsing, validation, the content hash, runs
``content``     each task's data: its source, fingerprint and split hashes, checked before a run
``method_file`` a method as one Python file (``METHOD``), loaded in the driver and in every worker
``manifest``    ``OUT/benchmark.json``: suite, variant, methods, recorded content; refuses mixing
``runner``      ``w2s benchmark run``: one sweep per method through ``w2sgen.sweep``
``leaderboard`` ``w2s benchmark leaderboard``: PGR, ΔPGR, accuracy, tasks won, cost, tie-aware ranks
``show``        ``w2s benchmark list`` / ``show`` / ``run --dry-run``
``commands``    the ``w2s benchmark`` command group

Nothing is imported here: ``w2s --help`` builds the ``benchmark`` parser from ``commands`` alone.
"""
