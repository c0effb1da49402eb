"""One module per worker pool; each is a Procfile process type (``dramatiq workers.pools.<pool>``).

A pool imports only what its commands need, so each process stays small.
"""
