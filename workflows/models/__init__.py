"""The workflows' inputs, outputs and messages: plain pydantic models.

Workflow modules import them through ``workflow.unsafe.imports_passed_through()``, so the
sandbox shares one copy instead of rebuilding every model class for each workflow run
(measured: ~12 ms of CPU and ~0.5 MB per run before they moved here).
"""
