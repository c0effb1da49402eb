"""The SQL pipelines catalog: its tables and pipelines, their checks, and the SQL built from them.

Shared by the web process (row checks, plans, the dashboard) and the pipelines pool, which runs it.
"""
