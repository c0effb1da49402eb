-- Test data of the original accuracy service: two models with predictions. The newest row of the
-- first model scores 3 of 4 (accuracy 0.75). `make up` loads the same rows as demo data
-- (devservers/demo.py); for another database:
-- psql "$DATABASE_URL" -f sql/seed/metrics_results.sql   (after `python -m ingress migrate`)
INSERT INTO results (model_id, y_true, y_pred, timestamp) VALUES
    ('6d6a8224-de68-4603-b2db-63e01d34f020', '[0, 1, 1, 0]', '[0, 1, 1, 0]', '2026-11-21 23:00:00'),
    ('6d6a8224-de68-4603-b2db-63e01d34f020', '[1, 0, 1, 1]', '[1, 0, 0, 1]', '2026-11-21 23:59:58'),
    ('30dc8119-afe0-4dbd-9555-eb36fa408fd4', '[1, 1, 0, 0]', '[1, 0, 0, 1]', '2026-11-21 23:00:00'),
    ('30dc8119-afe0-4dbd-9555-eb36fa408fd4', '[0, 0, 1, 1]', '[0, 1, 1, 1]', '2026-11-21 23:59:58');
