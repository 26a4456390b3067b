"""What only `orchestrator dev` and the tests use, out of the runtime import path: the
embedded Postgres and Temporal dev server (``embedded.py``), the dev stack itself
(``dev.py``) with its generated secrets (``dev_secrets.py``) and demo data (``demo.py``,
``demo_metrics.py``, ``demo-job.json``, ``demo-api-job.json``), the local outbox command
(``outbox.py``) and the emulators of the vendors' HTTP APIs (``emulators/``). The
production image leaves this package out; ``workers/`` imports it only inside the
functions that need it."""
