"""The worker's garbage-collector tuning (stream.runtime.worker.tune_gc), in a child process
so that this test run's own collector is left as it was."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import gc
from stream.runtime.worker import GC_YOUNG_THRESHOLD, tune_gc
before = gc.get_threshold()
assert gc.get_freeze_count() == 0
tune_gc()
after = gc.get_threshold()
assert after == (GC_YOUNG_THRESHOLD, before[1], before[2]), (before, after)
assert gc.get_freeze_count() > 50_000, gc.get_freeze_count()  # start-up's objects
print("ok")
"""


def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
