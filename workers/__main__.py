"""`python -m workers` is `orchestrator`."""

from workers.cli import main

main()
