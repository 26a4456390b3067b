"""Deterministic workflow code only: all I/O lives in activities/ and db/.

The worker's list of workflows is in ``workers.worker`` (this package imports nothing at
import time, so activities can share its models without an import cycle).
"""
