"""Wire-faithful local emulators of the cloud services media-tui talks to (see DESIGN.md §4)."""
