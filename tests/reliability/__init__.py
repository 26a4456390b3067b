"""Reliability: the system under crashes, restarts and outages (the ``chaos`` marker)."""
