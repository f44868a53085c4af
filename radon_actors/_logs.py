"""The library's loggers: quiet until the application configures logging.

A library should not print unless its user asked it to. structlog prints every
event to stdout until it is configured, so the library's loggers do not hand
their events to structlog until then:

* once the application has configured structlog (``structlog.configure``, or
  ``structlog.testing.capture_logs``), events go through that configuration,
  with the logger's name and bound fields, as from any structlog logger;
* until then they go to the standard library's ``logging`` under the same name
  (``radon_actors``, ``radon_actors.placement``...), which has a ``NullHandler``:
  silent unless the application configured ``logging``
  (``logging.basicConfig(level=logging.INFO)`` shows the runtime's info events),
  with the fields rendered as ``key=value`` after the event name.

Worker hosts inherit the level of ``radon_actors`` from the process that starts
them (see :func:`level_for_workers`). The guest side of the sandbox never
imports this module.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["Logger", "get_logger", "level_for_workers"]

logging.getLogger("radon_actors").addHandler(logging.NullHandler())

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class Logger:
    """A structlog-style bound logger (``bind``, ``unbind``, ``new``, ``debug`` ...
    ``critical``, ``exception``); see the module docs for where its events go."""

    __slots__ = ("_context", "_name", "_stdlib")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}
        self._stdlib = logging.getLogger(name)

    def bind(self, **fields: Any) -> Logger:
        """A logger with ``fields`` added to every event."""
        return Logger(self._name, {**self._context, **fields})

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        if structlog.is_configured():
            logger = structlog.get_logger(self._name)
            if self._context:
                logger = logger.bind(**self._context)
            getattr(logger, method)(event, **fields)
            return
        level = _LEVELS[method]
        stdlib = self._stdlib
        if not stdlib.isEnabledFor(level):
            return
        exc_info = fields.pop("exc_info", None)
        merged = {**self._context, **fields}
        text = event + "".join(f" {key}={value!r}" for key, value in merged.items())
        stdlib.log(level, "%s", text, exc_info=exc_info, extra={"radon": merged})

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        self._emit("critical", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """``error`` with the exception being handled (as structlog's)."""
        fields.setdefault("exc_info", True)
        self._emit("error", event, fields)

    warn = warning
    msg = info

    def unbind(self, *keys: str) -> Logger:
        """A logger without the fields ``keys``."""
        return Logger(self._name, {k: v for k, v in self._context.items() if k not in keys})

    def new(self, **fields: Any) -> Logger:
        """A logger with only ``fields`` bound."""
        return Logger(self._name, fields)


def get_logger(name: str) -> Logger:
    """The library's logger called ``name`` (a ``radon_actors`` dotted name)."""
    return Logger(name)


def level_for_workers() -> int | None:
    """The level a worker host logs the library's events at: the level the
    application gave ``radon_actors`` (structlog's filtering level when it
    configured structlog with one, else the standard library's effective level
    when ``logging`` has a handler for it), or None when it configured nothing
    (the worker stays quiet too)."""
    if structlog.is_configured():
        bound = structlog.get_logger("radon_actors").bind()
        get_level = getattr(bound, "get_effective_level", None)  # make_filtering_bound_logger
        level = get_level() if get_level is not None else None
        return level if isinstance(level, int) else logging.DEBUG
    stdlib = logging.getLogger("radon_actors")
    logger: logging.Logger | None = stdlib
    while logger is not None:
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers):
            return stdlib.getEffectiveLevel()
        logger = logger.parent if logger.propagate else None
    return None
