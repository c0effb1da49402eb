"""The catalog-driven SQL pipelines (the ``pipelines`` pool).

Light modules (``catalog``, ``types``, ``rows``, ``staging``) are shared with the
ingress; the ones that import sqlglot or polars (``sqlbuild``, ``nodesql``, ``runner``
and the rest) are imported by the pool alone. Nothing here imports them eagerly.
"""
