"""Room: obs (stands alone). Short ways to log with attributes through stdlib ``logging``.

``info("node registered", node="n-1")`` logs on the ``"app"`` logger (or ``logger=``) with
``node`` as an attribute; ``error``, ``warning``, ``debug`` alike. ``log_exception`` logs the
exception being handled with its traceback. ``timed("load config")`` logs how long a block (or a
decorated function) took, in ``duration_ms``, at ERROR with the exception when it raises.
Attributes travel under one ``extra`` key, so any name is allowed (``name``, ``msg``…).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from .handler import ATTRS_KEY
from .levels import Level, parse_level

DEFAULT_LOGGER = "app"

P = ParamSpec("P")
R = TypeVar("R")


def _logger(logger: logging.Logger | str | None) -> logging.Logger:
    if isinstance(logger, logging.Logger):
        return logger
    return logging.getLogger(logger or DEFAULT_LOGGER)


def _log(
    level: Level | str,
    message: str,
    logger: logging.Logger | str | None,
    attrs: dict[str, object],
    exc_info: bool = False,
) -> None:
    lvl = level if isinstance(level, Level) else parse_level(level)
    target = _logger(logger)
    if target.isEnabledFor(lvl):
        # stacklevel 3: the record names the line that called info()/error()/…, not this one
        target.log(lvl, message, exc_info=exc_info, extra={ATTRS_KEY: attrs}, stacklevel=3)


def log(
    level: Level | str, message: str, *, logger: logging.Logger | str | None = None, **attrs: object
) -> None:
    """Log at ``level`` (a Level or its name in any case)."""
    _log(level, message, logger, attrs)


def debug(message: str, *, logger: logging.Logger | str | None = None, **attrs: object) -> None:
    _log(Level.DEBUG, message, logger, attrs)


def info(message: str, *, logger: logging.Logger | str | None = None, **attrs: object) -> None:
    _log(Level.INFO, message, logger, attrs)


def warning(message: str, *, logger: logging.Logger | str | None = None, **attrs: object) -> None:
    _log(Level.WARNING, message, logger, attrs)


def error(message: str, *, logger: logging.Logger | str | None = None, **attrs: object) -> None:
    _log(Level.ERROR, message, logger, attrs)


def log_exception(
    message: str, *, logger: logging.Logger | str | None = None, **attrs: object
) -> None:
    """Log at ERROR with the exception being handled (call it in an ``except`` block)."""
    _log(Level.ERROR, message, logger, attrs, exc_info=True)


class timed:
    """Log ``message`` with ``duration_ms`` when the block or function ends."""

    def __init__(
        self,
        message: str,
        *,
        logger: logging.Logger | str | None = None,
        level: Level | str = Level.INFO,
        timer: Callable[[], float] = time.perf_counter,
        **attrs: object,
    ) -> None:
        self.message = message
        self.logger = logger
        self.level = level
        self.timer = timer
        self.attrs = attrs

    @contextmanager
    def _block(self) -> Iterator[None]:
        start = self.timer()
        try:
            yield
        except BaseException as exc:
            ms = round((self.timer() - start) * 1000.0, 3)
            _log(
                Level.ERROR,
                self.message,
                self.logger,
                {**self.attrs, "duration_ms": ms, "failed": True},
                exc_info=isinstance(exc, Exception),
            )
            raise
        ms = round((self.timer() - start) * 1000.0, 3)
        _log(self.level, self.message, self.logger, {**self.attrs, "duration_ms": ms})

    def __enter__(self) -> None:
        self._cm = self._block()
        self._cm.__enter__()

    def __exit__(self, *exc: object) -> bool | None:
        return self._cm.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self._block():
                return func(*args, **kwargs)

        return wrapper
