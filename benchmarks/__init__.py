"""Benchmarks of the orchestrator on its embedded stack (``python -m benchmarks.bench``)."""
