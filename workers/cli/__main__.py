"""`python -m workers.cli` is `orchestrator`."""

from workers.cli import main

main()
