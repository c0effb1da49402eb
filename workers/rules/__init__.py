"""The rule processor's logic: which rules an event matches (matching.py), the follow-up a firing
submits exactly once (follow_up.py), and the catalog's rules kept in the table (catalog_rules.py).
The pool that runs it is workers/pools/rules.py."""
