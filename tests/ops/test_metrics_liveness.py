"""/livez's judgement, on a clock of the test's: a part with work and no progress for longer
than the threshold is stalled; an idle part is alive however long ago it last worked."""

from __future__ import annotations

import uuid

from services.shared import metrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _liveness(clock: Clock) -> metrics.Liveness:
    # A service name of its own: the relay's passes are kept per service.
    return metrics.Liveness(f"svc-{uuid.uuid4().hex[:8]}", stall_seconds=60, clock=clock)


def test_metrics_liveness_an_idle_consumer_is_alive_however_old_its_last_batch() -> None:
    clock = Clock()
    liveness = _liveness(clock)
    clock.now += 3600
    liveness.consumer_work(False)
    assert liveness.stalled() == []


def test_metrics_liveness_a_consumer_with_lag_and_no_batch_is_stalled_after_the_threshold() -> None:
    clock = Clock()
    liveness = _liveness(clock)
    clock.now += 3600  # idle for an hour, then work arrives: the hour does not count
    liveness.consumer_work(True)
    clock.now += 59
    liveness.consumer_work(True)
    assert liveness.stalled() == []
    clock.now += 2
    assert liveness.stalled() == ["consumer"]
    liveness.batch_done()  # progress: alive again, and the clock starts over
    assert liveness.stalled() == []
    clock.now += 61
    assert liveness.stalled() == ["consumer"]
    liveness.consumer_work(False)  # caught up
    assert liveness.stalled() == []


def test_metrics_liveness_a_relay_with_a_backlog_and_no_pass_is_stalled() -> None:
    clock = Clock()
    liveness = _liveness(clock)
    liveness.outbox_work(True)
    clock.now += 61
    assert liveness.stalled() == ["relay"]
    liveness.outbox_work(False)  # the backlog went (another instance published it)
    assert liveness.stalled() == []
