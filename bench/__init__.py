"""Benchmark suite: ``python -m bench`` (``make bench``) writes ``bench/RESULTS.md``.

Every figure is a ratio against a baseline measured in the same run on the same
machine, never an absolute pass/fail timing:

(a)/(b) bus throughput: Switchyard's ``system.noop`` (job store writes included)
        against a plain Dramatiq no-op actor, same broker, same worker shape.
(c)     HTTP: ``POST /v1/commands`` against a hello-world Starlette app, both on one
        uvicorn process, loaded by ``wrk``.
(d)     idle memory of each process type after start-up and one handled command.

Every scenario gets its own embedded Valkey (and PostgreSQL) under a temporary
directory; process logs go to ``bench/out/`` (ignored by git).
"""
