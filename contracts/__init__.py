"""Typed command messages of the Switchyard bus.

This package depends on nothing else of ours, so any Python producer can use it
alone::

    from contracts import publish, system
    job_id = publish(system.Noop())
"""

from contracts.base import SCHEMA_VERSION, CommandBase
from contracts.command import BY_TYPE, QUEUES, ROUTES, Command, InvalidCommand, Route, convert, decode, route, type_of
from contracts.job import TERMINAL, Job, JobError, JobStatus, Progress
from contracts.message import build as build_message
from contracts.message import job_id_for
from contracts.publish import publish

__all__ = [
    "BY_TYPE",
    "QUEUES",
    "ROUTES",
    "SCHEMA_VERSION",
    "TERMINAL",
    "Command",
    "CommandBase",
    "InvalidCommand",
    "Job",
    "JobError",
    "JobStatus",
    "Progress",
    "Route",
    "build_message",
    "convert",
    "decode",
    "job_id_for",
    "publish",
    "route",
    "type_of",
]
