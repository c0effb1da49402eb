-- How each forecast series' model was chosen, and how many forecast points its reported
-- accuracy was measured on: "cross-validation over 3 origins" and 18, or "default for short
-- series" and 0 (then mase and smape are null: nothing was measured). The weights of the
-- members in the chosen forecast (an ensemble's, or {"AutoTheta": 1} for one model alone).
ALTER TABLE forecast_series ADD COLUMN IF NOT EXISTS selection text;
ALTER TABLE forecast_series ADD COLUMN IF NOT EXISTS validated_points integer;
ALTER TABLE forecast_series ADD COLUMN IF NOT EXISTS weights jsonb;
