"""The artifact store: files jobs produce (exports, backups), one per job.

``ARTIFACTS_URL`` picks the store: a directory (default ``.data/artifacts``, resolved
against the working directory at start; ``file:///abs/path`` works too) or
``s3://bucket/prefix`` (boto3 with its usual credential chain; ``AWS_ENDPOINT_URL``
points it at MinIO or moto). Bytes go to ``jobs/<job id>/<file name>``, so a redelivered
job overwrites its own file instead of leaving a second one; the ``artifacts`` table
records where each job's file is, including which store, so changing ``ARTIFACTS_URL``
later does not lose older files.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import msgspec

from bus import db, queries, settings

CHUNK = 64 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class Store(Protocol):
    url: str

    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def chunks(self, key: str) -> Iterator[bytes]: ...
    def delete(self, key: str) -> None: ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"artifact key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # write then rename: a reader never sees half a file
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def chunks(self, key: str) -> Iterator[bytes]:
        with self._path(key).open("rb") as src:
            while block := src.read(CHUNK):
                yield block

    def delete(self, key: str) -> None:
        """Remove the file (a missing one is fine) and its job's directory once empty."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty, or gone already
            path.parent.rmdir()


class S3Store:
    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    @functools.cached_property
    def client(self) -> Any:
        import boto3  # only processes that use S3 pay for importing it

        return boto3.client("s3")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def chunks(self, key: str) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))  # a missing key is fine


@functools.cache
def open_store(url: str) -> Store:
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError("ARTIFACTS_URL: s3://bucket/prefix needs a bucket")
        return S3Store(parts.netloc, parts.path)
    if url.startswith("file://"):
        return LocalStore(Path(urlsplit(url).path))
    return LocalStore(Path(url))


def configured() -> Store:
    """The store new artifacts go to (``ARTIFACTS_URL``)."""
    return open_store(settings.get().artifacts_url)


class Artifact(msgspec.Struct, kw_only=True, frozen=True):
    job_id: str
    store_url: str
    key: str
    file_name: str
    content_type: str
    size_bytes: int
    sha256: str

    def ref(self) -> dict[str, Any]:
        """What a job result says about its artifact."""
        return {
            "file_name": self.file_name,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "href": f"/v1/jobs/{self.job_id}/artifact",
        }

    def chunks(self) -> Iterator[bytes]:
        return open_store(self.store_url).chunks(self.key)

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def exists(self) -> bool:
        return open_store(self.store_url).exists(self.key)

    def delete(self) -> None:
        open_store(self.store_url).delete(self.key)


def safe_file_name(name: str) -> str:
    """A name that is one path segment on every store and in a Content-Disposition header."""
    cleaned = _UNSAFE.sub("_", name).strip(" .") or "artifact"
    return cleaned[:200]


def from_row(row: dict[str, Any]) -> Artifact:
    return Artifact(**{field: row[field] for field in Artifact.__struct_fields__})


def save(job_id: str, file_name: str, data: bytes, content_type: str) -> Artifact:
    """Store ``data`` as the artifact of ``job_id`` and record it (idempotent per job)."""
    store = configured()
    name = safe_file_name(file_name)
    key = f"jobs/{safe_file_name(job_id)}/{name}"
    store.put(key, data, content_type)
    params = {
        "job_id": job_id,
        "store_url": store.url,
        "key": key,
        "file_name": name,
        "content_type": content_type,
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    with db.pool().connection() as conn:
        row = conn.execute(queries.load("artifacts")["save"], params).fetchone()
    return from_row(row)


def find(job_id: str) -> Artifact | None:
    with db.pool().connection() as conn:
        row = conn.execute(queries.load("artifacts")["get"], {"job_id": job_id}).fetchone()
    return None if row is None else from_row(row)
