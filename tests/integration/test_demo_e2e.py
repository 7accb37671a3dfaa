"""``make demo`` on the real broker: the run ends with an HTML report and says where."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stream.config import load_settings
from stream.demo import DEMO_DIR, run_demo

pytestmark = pytest.mark.integration


def test_demo_writes_a_report_after_the_worker_stops(
        bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the demo works in ./.data/demo
    monkeypatch.delenv("TIDEWATCH_CONFIG", raising=False)
    assert run_demo(load_settings(None, kafka={"bootstrap": bootstrap}), events=4_000) == 0
    out = capsys.readouterr().out
    found = re.search(r"\[demo\] report: (\S+)", out)
    assert found is not None, out[-3000:]
    report = Path(found.group(1))
    assert report == (tmp_path / DEMO_DIR / "report.html").resolve()
    page = report.read_text(encoding="utf-8")
    # The drifting feature, beside its reference; the other sections have rows.
    assert "amount: latest window beside the reference" in page
    for empty_note in ("no drift rows", "no labelled performance rows", "no fairness rows"):
        assert empty_note not in page
