"""``python -m ingress``: publish commands and look at jobs from a shell.

python -m ingress publish command.json      # or - for standard input
python -m ingress jobs --status dead
python -m ingress job <id>
python -m ingress migrate

Without DATABASE_URL in the environment it uses the local run's settings (``.data/local.env``,
written by ``make up``), or stops with a one-line error naming what to set. Errors are one line
on standard error with a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import msgspec

from bus import settings
from bus.jobstore import aware_time, unavailable
from bus.submission import KEY_REUSED
from contracts import BY_TYPE, QUEUES, InvalidCommand, JobStatus, convert


class CliError(Exception):
    """Ends the command with ``error: <message>`` and exit status 1."""


def _print(obj: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(obj)).decode() + "\n")


def _read(path: str) -> list[tuple[str, Any]]:
    """(JSON path, value) of each command: the file holds one command or a list of them."""
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
        data = json.loads(text)
    except (OSError, json.JSONDecodeError) as err:
        raise SystemExit(f"error: {path}: {err}") from None
    return [(f"$[{i}]", v) for i, v in enumerate(data)] if isinstance(data, list) else [("$", data)]


def publish(args: argparse.Namespace) -> int:
    from bus import broker as broker_setup
    from bus.jobstore import JobStore
    from bus.submission import submit_checked

    commands = []
    for prefix, raw in _read(args.file):
        try:
            command = convert(raw, prefix)
        except InvalidCommand as err:
            raise SystemExit(f"error: invalid command at {err.path}: {err.message}") from None
        commands.append(command)
    bus = broker_setup.build()
    store = JobStore()
    for n, command in enumerate(commands):
        key = args.idempotency_key
        if key is not None and len(commands) > 1:
            key = f"{key}:{n}"  # one key per command of a list
        job, same_command = submit_checked(store, bus, command, idempotency_key=key)
        if not same_command:
            raise CliError(f"{KEY_REUSED} (idempotency key {key!r}, job {job.id})")
        print(job.id, flush=True)
    return 0


def jobs(args: argparse.Namespace) -> int:
    from bus.jobstore import JobFilter, JobStore

    where = JobFilter(status=args.status, type=args.type, queue=args.queue, since=args.since)
    found, _ = JobStore().list(where, limit=args.limit)
    for job in found:
        print(f"{job.id}  {job.status:<9}  {job.attempts:>2}  {job.created_at:%Y-%m-%d %H:%M:%S}  {job.type}")
    return 0


def job(args: argparse.Namespace) -> int:
    from bus.jobstore import JobStore

    found = JobStore().get(args.id)
    if found is None:
        print(f"error: no job {args.id}", file=sys.stderr)
        return 1
    _print(found)
    return 0


def migrate(args: argparse.Namespace) -> int:
    from bus.migrate import migrate as apply

    applied = apply(settings.get().database)
    print("applied: " + ", ".join(applied) if applied else "up to date")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ingress", description="Switchyard command line")
    sub = p.add_subparsers(dest="cmd", required=True)
    pub = sub.add_parser("publish", help="validate, record and enqueue command(s) from a JSON file or -")
    pub.add_argument("file")
    pub.add_argument("--idempotency-key")
    pub.set_defaults(func=publish)
    ls = sub.add_parser("jobs", help="list jobs, newest first")
    ls.add_argument("--status", choices=[s.value for s in JobStatus])
    ls.add_argument("--type", choices=sorted(BY_TYPE))
    ls.add_argument("--queue", choices=QUEUES)
    ls.add_argument("--since", type=aware_time, help="created at or after this ISO 8601 time (UTC unless it says)")
    ls.add_argument("--limit", type=int, default=20)
    ls.set_defaults(func=jobs)
    one = sub.add_parser("job", help="show one job as JSON")
    one.add_argument("id")
    one.set_defaults(func=job)
    mig = sub.add_parser("migrate", help="apply pending SQL migrations")
    mig.set_defaults(func=migrate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings.use_local_run()
        return args.func(args)
    except (settings.SettingsError, CliError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        if not unavailable(err):
            raise
        where = settings.get().database.rsplit("@", 1)[-1]
        print(
            f"error: cannot reach the database or Redis ({err.__class__.__name__}; database at {where}): "
            "is `make up` running, or are DATABASE_URL / REDIS_URL right?",
            file=sys.stderr,
        )
        return 1
