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
