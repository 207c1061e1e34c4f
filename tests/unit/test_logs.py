"""Repeated warnings are written once, then counted (a lost broker must not fill the log)."""

from __future__ import annotations

import logging

import pytest
import structlog

from services.shared.logs import RepeatLimiter, RepeatLimitingFilter, repeat_limiting_processor


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_first_occurrence_written_then_held_back_then_counted_after_the_window() -> None:
    clock = FakeClock()
    limiter = RepeatLimiter(30.0, clock)
    assert limiter.admit("OffsetCommit failed") == 0
    held = [limiter.admit("OffsetCommit failed") for _ in range(29_999)]
    assert held == [None] * 29_999
    assert limiter.admit("another line") == 0  # other lines are not held back
    clock.now = 30.0
    assert limiter.admit("OffsetCommit failed") == 29_999
    assert limiter.admit("OffsetCommit failed") is None


def test_standard_library_lines_limited_by_template_and_info_untouched() -> None:
    clock = FakeClock()
    limiter = RepeatLimiter(10.0, clock)
    keep = RepeatLimitingFilter(limiter)

    def record(level: int, msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", level, __file__, 1, msg, args, None)

    template = "OffsetCommit failed for group %s due to group error (%s), will rejoin"
    assert keep.filter(record(logging.ERROR, template, "allocation", "UnknownMemberId"))
    assert not keep.filter(record(logging.ERROR, template, "allocation", "IllegalGeneration"))
    assert all(keep.filter(record(logging.INFO, "joined group")) for _ in range(5))
    clock.now = 10.0
    again = record(logging.ERROR, template, "allocation", "UnknownMemberId")
    assert keep.filter(again)
    assert "repeated 1 times" in again.getMessage()


def test_structlog_warnings_limited_by_event_and_counted() -> None:
    clock = FakeClock()
    process = repeat_limiting_processor(RepeatLimiter(5.0, clock))
    line = {"event": "batch not applied; will re-read after backoff"}
    assert process(None, "error", dict(line)) == line
    with pytest.raises(structlog.DropEvent):
        process(None, "error", dict(line))
    assert process(None, "info", {"event": "service started"}) == {"event": "service started"}
    clock.now = 5.0
    assert process(None, "error", dict(line)) == {**line, "repeated": 1}
