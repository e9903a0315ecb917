"""Storage: atomic writes, the stage cache and run results."""
