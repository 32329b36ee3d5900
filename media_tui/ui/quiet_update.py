"""Update a Static only when what it shows changes.

The tray and the header are refreshed by timers (every frame with changes, and once a second for
"since" badges) whether or not their text moved on. `Static.update` re-renders every time, which
costs a repaint for nothing and made the screen's exact segments depend on when the last timer
fired — enough to make snapshot tests flaky.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

_SHOWN = "_media_tui_shown"


def update_if_changed(widget: Static, content: Text, classes: str | None = None) -> None:
    """Set `classes` (if given) and `content`, unless the widget already shows exactly that."""
    key = (classes, content)
    if getattr(widget, _SHOWN, None) == key:
        return
    setattr(widget, _SHOWN, key)
    if classes is not None:
        widget.set_classes(classes)
    widget.update(content)


def show_if(widget: Widget, shown: bool) -> None:
    """Show or hide `widget`, touching its styles only when that changes."""
    if widget.display != shown:
        widget.display = shown
