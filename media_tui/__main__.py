"""`python -m media_tui` runs the same command as `media-tui`."""

from media_tui.cli import run

run()
