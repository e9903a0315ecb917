"""The stage cache's per-entry lock: two builders of one key build it once; the other reads it."""

from __future__ import annotations

import threading
import time

from w2sgen.store.cache import StageCache


def test_concurrent_builders_build_once(tmp_path):
    cache = StageCache(tmp_path)
    calls = []

    def build(d):
        calls.append(1)
        time.sleep(0.3)  # the second builder arrives while the first is building
        (d / "x.txt").write_text("done")

    results = []

    def worker():
        results.append(cache.get_or_build("floor", {"a": 1}, build))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 1
    assert sorted(hit for _, hit in results) == [False, True]
    assert results[0][0] == results[1][0] and (results[0][0] / "x.txt").read_text() == "done"
    assert cache.lock_path("floor", results[0][0].name).exists()
    assert [p.name for p in (tmp_path / "stages" / "floor").iterdir()] == [results[0][0].name]  # entries only
