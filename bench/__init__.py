"""Benchmark suite: ``python -m bench`` (``make bench``) writes ``bench/RESULTS.md``.

Every figure is a ratio against a baseline measured in the same run on the same
machine, never an absolute pass/fail timing:

(a)/(b) bus throughput: Switchyard's ``system.noop`` (job store writes included)
        against a plain Dramatiq no-op actor, same broker, same worker shape.
(p)/(q) peers: the same drain by procrastinate and by Celery (database result backend).
(s)     scale: a 4 x 8 pool, and ours with a million finished jobs in ``jobs`` (with the
        plans of the job queries on that table).
(c)     HTTP: ``POST /v1/commands`` against a hello-world Starlette app, both on one
        uvicorn process, loaded by ``wrk``.
(t)     the ticker's lag from slot to enqueue (``bench.ticker``, shortened).
(d)     idle memory of each process type after start-up and one handled command.

``--only`` takes any of bus, peers, scale, http, memory, ticker. Every scenario gets
its own embedded Valkey (and PostgreSQL) under a temporary directory; process logs go
to ``bench/out/`` (ignored by git).
"""
