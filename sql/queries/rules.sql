-- name: upsert
INSERT INTO rules (name, "when", "then", enabled, source)
VALUES (%(name)s, %(when)s, %(then)s, %(enabled)s, %(source)s)
ON CONFLICT (name) DO UPDATE
   SET "when" = EXCLUDED."when", "then" = EXCLUDED."then", enabled = EXCLUDED.enabled,
       source = EXCLUDED.source, updated_at = now()
RETURNING *, (xmax = 0) AS created;

-- name: get
SELECT * FROM rules WHERE name = %(name)s;

-- name: list
SELECT * FROM rules WHERE name > %(after)s ORDER BY name LIMIT %(limit)s;

-- name: enabled
SELECT * FROM rules WHERE enabled ORDER BY name;

-- name: delete
DELETE FROM rules WHERE name = %(name)s RETURNING name;

-- name: insert
-- Create only: a name already taken is left as it is (no row returned).
INSERT INTO rules (name, "when", "then", enabled, source)
VALUES (%(name)s, %(when)s, %(then)s, %(enabled)s, %(source)s)
ON CONFLICT (name) DO NOTHING
RETURNING *, true AS created;

-- name: lock
-- Every write of rules takes this lock for its transaction: the cycle and chain checks read the
-- enabled rules, and two writes checked at once could together close a cycle neither closes alone.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: all
SELECT * FROM rules ORDER BY name;

-- name: delete_many
DELETE FROM rules WHERE name = ANY(%(names)s) RETURNING name;

-- name: record_firing
-- A redelivered event, or a second rule processor, finds the firing there and records nothing.
INSERT INTO rule_firings (rule, event_id, job_id, follow_up_id, outcome, reason)
VALUES (%(rule)s, %(event_id)s, %(job_id)s, %(follow_up_id)s, %(outcome)s, %(reason)s)
ON CONFLICT (rule, event_id) DO NOTHING
RETURNING id;

-- name: last_firings
-- The newest firings of each of these rules (rule_firings_rule_idx, a few rows per rule).
SELECT f.*
  FROM unnest(%(names)s::text[]) AS r(name)
 CROSS JOIN LATERAL (
       SELECT * FROM rule_firings WHERE rule = r.name ORDER BY fired_at DESC, id DESC LIMIT %(per_rule)s
 ) AS f
 ORDER BY f.rule, f.fired_at DESC, f.id DESC;
