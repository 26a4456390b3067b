"""Deterministic workflow code only: all I/O lives in activities/ and db/."""

from workflows.agent_job import AgentJob

ALL_WORKFLOWS: list[type] = [AgentJob]

__all__ = ["ALL_WORKFLOWS", "AgentJob"]
