"""Small pure pieces of the forecast pool: the GoodData CSV reader, the SQL fence, quantile levels."""

from __future__ import annotations

import numpy as np
import pytest

from bus.errors import PermanentError
from workers.forecast import accuracy, intervals, results, seasonality, selection, sources
from workers.forecast.frames import from_rows


def test_a_wide_gooddata_export_is_one_series_per_metric_column() -> None:
    csv = b"Date - Month/Year,Revenue,Orders\n2024-01,10.5,3\n2024-02,11,\n2024-03,12.25,5\n"
    rows = sources.parse_export(csv, "MS")
    series = {s.series_id: s for s in from_rows(rows, "MS", "the GoodData export")}
    assert set(series) == {"Revenue", "Orders"}
    assert series["Revenue"].values.tolist() == [10.5, 11.0, 12.25]
    assert str(series["Orders"].start) == "2024-01-01 00:00:00+00:00"
    assert series["Orders"].values[1] != series["Orders"].values[1]  # an empty cell is a missing value (NaN)


def test_a_long_gooddata_export_and_quarter_labels_read_as_period_ends() -> None:
    csv = b"Quarter,Region,Sales\n2024-Q1,West,1\n2024-Q2,West,2\n2024-Q1,East,3\n2024-Q2,East,4\n"
    series = {s.series_id: s for s in from_rows(sources.parse_export(csv, "Q"), "Q", "the export")}
    assert series["East"].values.tolist() == [3.0, 4.0]
    assert str(series["West"].start.date()) == "2024-03-31"


def test_a_gooddata_export_with_text_in_a_metric_names_the_cell() -> None:
    csv = b"Day,Visits\n2024-01-01,5\n2024-01-02,lots\n"
    with pytest.raises(PermanentError, match=r"series 'Visits' at 2024-01-02T00:00:00Z: value 'lots' is not a number"):
        from_rows(sources.parse_export(csv, "D"), "D", "the GoodData export")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("UPDATE jobs SET status = 'dead'", "must be a SELECT"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("SELECT * FROM jobs FOR UPDATE", "LOCK is not allowed"),
        ("SELEC 1 FROM", "SQL"),
    ],
)
def test_only_a_single_read_only_select_passes_the_query_check(query: str, fragment: str) -> None:
    with pytest.raises(PermanentError, match=fragment):
        sources.check_query(query)
    sources.check_query("WITH t AS (SELECT 1 AS x) SELECT 'a', now(), x FROM t UNION ALL SELECT 'b', now(), 2")


def test_quantiles_map_to_central_intervals() -> None:
    assert results.levels([0.025, 0.5, 0.975, 0.1]) == [80.0, 95.0]
    assert results.key(0.025) == "0.025" and results.level(0.9) == 80.0


def test_gooddatas_own_layout_has_the_dates_across_and_a_row_per_metric() -> None:
    csv = '\ufeff"Date - Month/Year","2025-04","2025-05","2025-06"\nActive Customers,60,51,60\nRevenue,1.5,2,2.5\n'
    series = {s.series_id: s for s in from_rows(sources.parse_export(csv.encode(), "MS"), "MS", "the export")}
    assert series["Active Customers"].values.tolist() == [60.0, 51.0, 60.0]
    assert str(series["Revenue"].start.date()) == "2025-04-01"


#: README.md's example: two years of monthly visits, peaks in July and August
VISITS = [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118]
VISITS += [115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114, 140]


def test_two_years_of_a_monthly_season_are_found_and_a_random_walk_mostly_is_not() -> None:
    found = seasonality.decompose(np.array(VISITS, dtype=float), 12)
    assert found is not None and found.multiplicative
    assert set(np.argsort(found.indices)[-2:]) == {6, 7}  # July and August, counted from January
    adjusted = found.remove(np.array(VISITS, dtype=float))
    assert np.allclose(found.restore(adjusted, 0), VISITS)
    rng = np.random.default_rng(3)
    walks = [seasonality.is_seasonal(np.cumsum(rng.normal(size=48)) + 50, 12) for _ in range(200)]
    assert sum(walks) < 40  # the tests' levels: 10 % and 1 %, a few more for a random walk
    assert not seasonality.is_seasonal(np.array(VISITS[:23], dtype=float), 12)  # not two full seasons


def test_origins_are_a_horizon_apart_and_leave_enough_history() -> None:
    assert selection.origins(60, 6, 12, seasonal=True) == [54, 48, 42]
    assert selection.origins(30, 6, 12, seasonal=True) == [24]  # two seasons before each: one origin only
    assert selection.origins(20, 6, 1, seasonal=False) == [14, 8]
    assert selection.origins(10, 6, 1, seasonal=False) == []


def test_intervals_widen_with_the_step_and_the_level_and_follow_validation_errors() -> None:
    y = np.arange(1.0, 31.0)  # scale 1
    mean = np.full(4, 31.0)
    _low, high = intervals.bounds(y, mean, [80.0, 95.0], [], 1)
    assert np.all(np.diff(high[80.0]) > 0) and np.all(high[95.0] > high[80.0])
    assert high[95.0][0] - 31 == pytest.approx(4.97)  # no validation: the prior measured for yearly data
    assert intervals.prior(80.0, 12) == pytest.approx(0.60) and 0.60 < intervals.prior(85.0, 12) < 1.15
    assert intervals.prior(95.0, 24) == pytest.approx(1.2533 * 1.96, rel=1e-3)  # unmeasured: a random walk's
    wide = [(y, np.full(4, 10.0) * np.sqrt(np.arange(1, 5)))] * 10  # validation errors of 10 scales
    _, wider = intervals.bounds(y, mean, [80.0], wide, 1)
    # 40 errors of 10 scales and the prior (2.45 scales at 80 %) counted as PRIOR_POINTS errors
    blended = (40 * 10 + intervals.PRIOR_POINTS * 2.45) / (40 + intervals.PRIOR_POINTS)
    assert wider[80.0][0] - 31 == pytest.approx(blended)


def test_mase_is_scaled_by_the_seasonal_naive_error_of_the_history() -> None:
    history = np.array([1.0, 3.0, 1.0, 3.0, 1.0, 3.0])
    assert accuracy.scale(history, 4) == 2.0  # lag 1: the history does not hold two seasons of 4
    assert np.isnan(accuracy.scale(history, 2))  # lag 2: seasonal naive is exact, no scale
    assert accuracy.mase(history, np.array([2.0]), np.array([3.0]), 1) == 0.5
    assert np.isnan(accuracy.mase(np.ones(5), np.array([1.0]), np.array([2.0]), 1))
