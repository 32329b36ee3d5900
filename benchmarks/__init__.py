"""Speed measurements, run as modules (`python -m benchmarks.grid_100k`); never timing asserts."""
