"""The shared core: settings, db, named queries, the job store, submission, the broker and its adapter.

Imported by both ingress/ and workers/, which never import each other.
"""
