"""The SQL of the system: numbered migrations and named queries, shipped with the package."""

from pathlib import Path

#: the directory holding migrations/ and queries/
ROOT = Path(__file__).resolve().parent
