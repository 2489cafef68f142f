"""Work the server does in the background, outside any request: the loops each domain
registers (`loops.py`), and the reconciler that runs them (`reconciler.py`)."""
