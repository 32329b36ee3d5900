"""Progress bars in block characters, shared by the upload and sync cards and the tasks screen."""

from __future__ import annotations

CARD_TEXT_WIDTH = 38  # a card's text, inside its border and padding
BAR_WIDTH = 24


def percent_text(fraction: float) -> str:
    """Whole percent, rounded down like the grid badge, so 99.9 % never reads as done."""
    return f"{int(min(1.0, max(0.0, fraction)) * 100)} %"


def bar(fraction: float, width: int) -> tuple[str, str]:
    """A bar as (done, todo) strings of block characters, with eighth-cell resolution."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = int(fraction * width * 8)
    full, part = divmod(eighths, 8)
    done = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part and full < width else "")
    return done, "─" * (width - len(done))
