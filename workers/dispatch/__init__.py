"""The dispatcher: rows the app inserts (jobs, generations, batches) and cancel requests
become workflows and cancellations (``loop.py`` listens and sweeps, ``rows.py`` acts on
one row, ``rules.py`` says what a valid row is)."""
