-- Test data of the original accuracy service: two models with predictions.
-- psql "$DATABASE_URL" -f sql/seed/metrics_results.sql   (after `python -m ingress migrate`)
INSERT INTO results (model_id, y_true, y_pred) VALUES
    ('6d6a8224-de68-4603-b2db-63e01d34f020', '[1, 0, 1, 1]', '[1, 0, 0, 1]'),
    ('6d6a8224-de68-4603-b2db-63e01d34f020', '[0, 1, 1, 0]', '[0, 1, 1, 0]'),
    ('30dc8119-afe0-4dbd-9555-eb36fa408fd4', '[1, 1, 0, 0]', '[1, 0, 0, 1]'),
    ('30dc8119-afe0-4dbd-9555-eb36fa408fd4', '[0, 0, 1, 1]', '[0, 1, 1, 1]');
