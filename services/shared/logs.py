"""Structured logs (structlog). `correlation_id` is bound per message by the consumer.

Warnings and errors that repeat (a lost broker makes the Kafka client say the same thing many
times a second) are written once, then counted: the next occurrence after `window` seconds is
written with `repeated=<how many were held back>`."""

import logging
import sys
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import structlog


class RepeatLimiter:
    """Admits the first occurrence of a key, then at most one per `window` seconds, telling how
    many were held back in between."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._seen: dict[Hashable, tuple[float, int]] = {}  # key: (last written, held back)
        self._lock = threading.Lock()  # the Kafka client logs from other threads too

    def admit(self, key: Hashable) -> int | None:
        """None: hold this one back; otherwise write it, with this many held back before it."""
        now = self._clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.window:
                self._seen[key] = (last[0], last[1] + 1)
                return None
            if len(self._seen) > 10_000:  # keys are message templates, few; never grow unbounded
                self._seen.clear()
            self._seen[key] = (now, 0)
            return last[1] if last else 0


def _exception_name(value: Any) -> str:
    if isinstance(value, BaseException):
        return type(value).__name__
    if isinstance(value, tuple) and value and isinstance(value[0], type):
        return value[0].__name__
    if value is True:
        return type(sys.exc_info()[1]).__name__
    return ""


def repeat_limiting_processor(limiter: RepeatLimiter) -> structlog.typing.Processor:
    def process(_: Any, method: str, event: structlog.typing.EventDict) -> Any:
        if method not in ("warning", "error", "exception", "critical"):
            return event
        key = ("structlog", method, event.get("event"), _exception_name(event.get("exc_info")))
        held_back = limiter.admit(key)
        if held_back is None:
            raise structlog.DropEvent
        if held_back:
            event["repeated"] = held_back
        return event

    return process


class RepeatLimitingFilter(logging.Filter):
    """The same for the standard-library loggers (aiokafka, faststream, uvicorn)."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        # The template, not the formatted text: "OffsetCommit failed for group %s" is one line.
        held_back = self.limiter.admit(("stdlib", record.name, record.levelno, str(record.msg)))
        if held_back is None:
            return False
        if held_back:
            record.msg = f"{record.msg} (repeated {held_back} times since last written)"
        return True


def configure(level: str = "INFO", json: bool = True, repeat_window: float = 30.0) -> None:
    logging.basicConfig(stream=sys.stderr, level=level, format="%(message)s")
    for noisy in ("aiokafka", "faststream", "uvicorn.access"):
        logging.getLogger(noisy).setLevel("WARNING")
    limiter = RepeatLimiter(repeat_window)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RepeatLimitingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RepeatLimitingFilter(limiter))
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            repeat_limiting_processor(limiter),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )


def get(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
