-- name: upsert
-- Create or replace a schedule in one statement: a replaced schedule's next slot is
-- computed from its new cron, so the old one stops at once.
INSERT INTO schedules (name, cron, timezone, misfire, enabled, command, command_type, alert, next_fire_at)
VALUES (%(name)s, %(cron)s, %(timezone)s, %(misfire)s, %(enabled)s, %(command)s, %(command_type)s, %(alert)s,
        %(next_fire_at)s)
ON CONFLICT (name) DO UPDATE
   SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone, misfire = EXCLUDED.misfire,
       enabled = EXCLUDED.enabled, command = EXCLUDED.command, command_type = EXCLUDED.command_type,
       alert = EXCLUDED.alert, next_fire_at = EXCLUDED.next_fire_at, updated_at = now(),
       alert_state = CASE WHEN schedules.alert IS NOT DISTINCT FROM EXCLUDED.alert
                          THEN schedules.alert_state ELSE 'ok' END
RETURNING *, (xmax = 0) AS created;

-- name: insert
-- Create only: a name already taken is left as it is (no row returned).
INSERT INTO schedules (name, cron, timezone, misfire, enabled, command, command_type, alert, next_fire_at)
VALUES (%(name)s, %(cron)s, %(timezone)s, %(misfire)s, %(enabled)s, %(command)s, %(command_type)s, %(alert)s,
        %(next_fire_at)s)
ON CONFLICT (name) DO NOTHING
RETURNING *, true AS created;

-- name: get
SELECT * FROM schedules WHERE name = %(name)s;

-- name: get_for_update
SELECT * FROM schedules WHERE name = %(name)s FOR UPDATE;

-- name: delete
DELETE FROM schedules WHERE name = %(name)s RETURNING name;

-- name: list
SELECT * FROM schedules WHERE name > %(after)s ORDER BY name LIMIT %(limit)s;

-- name: due
-- Locked rows are skipped, so two tickers never emit the same schedule's slots.
-- The misfire policy as text (jsonb's is canonical: equal policies read alike): the emitter groups
-- the schedules that share their arithmetic by it and parses it once per group.
SELECT name, cron, timezone, misfire::text AS misfire, command, command_type, next_fire_at
  FROM schedules
 WHERE enabled AND next_fire_at <= %(now)s
 ORDER BY next_fire_at
 LIMIT %(limit)s
   FOR UPDATE SKIP LOCKED;

-- name: next_due
SELECT min(next_fire_at) AS at FROM schedules WHERE enabled;

-- name: set_alert_state
UPDATE schedules SET alert_state = %(state)s
 WHERE name = %(name)s AND alert_state <> %(state)s
RETURNING name;

-- name: advance_many
-- One statement for a whole batch of due schedules. The arrays are bound in binary (placeholders ending in b): a
-- thousand names and timestamps cost the ticker no text formatting and escaping each.
UPDATE schedules s
   SET next_fire_at = t.next_fire_at,
       last_slot = coalesce(t.last_slot, s.last_slot),
       last_fired_at = CASE WHEN t.last_slot IS NULL THEN s.last_fired_at ELSE now() END
  FROM unnest(%(names)b::text[], %(next)b::timestamptz[], %(last)b::timestamptz[]) AS t(name, next_fire_at, last_slot)
 WHERE s.name = t.name;
