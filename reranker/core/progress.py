"""How long work has left, and durations as people read them: the one formula every progress display uses."""

from __future__ import annotations


def seconds_left(done: int, total: int, elapsed: float) -> float | None:
    """Seconds to finish `total` at the pace of the `done` in `elapsed` seconds; None before the pace is known."""
    if done <= 0 or elapsed <= 0:
        return None
    return elapsed / done * max(total - done, 0)


def duration_text(seconds: float) -> str:
    """42 s, 2 min 05 s, 1 h 03 min."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
