-- 004_sample_energy: each sample row keeps the energy the writer integrated for the step that
-- ends at it (µWh, rounded to integers), so v_minutely sums its kept minutes with a plain
-- GROUP BY instead of integrating every sample with window functions (3.9 s for one pack and
-- one day with 30 days × 8 packs of raw data, 53 s on a year). NULL when nothing was
-- integrated: no voltage or current, the pack's first point, or after a gap longer than
-- energy_max_gap_s.
ALTER TABLE samples ADD COLUMN charge_uwh INTEGER;
ALTER TABLE samples ADD COLUMN discharge_uwh INTEGER;

-- Existing rows get the increments 003's v_minutely computed for them: the trapezoid between
-- consecutive points with power (in (ts, id) order, from the pruner's last point), split at the
-- zero crossing, not integrated over a gap longer than energy_max_gap_s.
CREATE TEMP TABLE m004_steps (id INTEGER PRIMARY KEY, c INTEGER, d INTEGER);
INSERT INTO m004_steps (id, c, d)
WITH pts AS (
    SELECT pack, ts, id, voltage_mv IS NOT NULL AND current_ma IS NOT NULL AS vi,
           voltage_mv * current_ma / 1000.0 AS p
    FROM samples
    UNION ALL
    SELECT pack, prune_ts, NULL, 1, prune_power_mw
    FROM energy WHERE prune_ts IS NOT NULL
),
steps AS (
    SELECT *, CASE WHEN vi AND ts > ts0 AND ts - ts0 <= (SELECT value * 1000 FROM meta
                                                         WHERE key = 'energy_max_gap_s')
                   THEN ts - ts0 END AS dt
    FROM (SELECT *, lag(ts) OVER w AS ts0, lag(p) OVER w AS p0 FROM pts
          WINDOW w AS (PARTITION BY pack, vi ORDER BY ts, id))
),
areas AS (
    SELECT id, CASE WHEN p0 * p >= 0 THEN max((p0 + p) / 2 * dt, 0)
                    WHEN p0 > 0 THEN p0 * (dt * p0 / (p0 - p)) / 2
                    ELSE p * (dt - dt * p0 / (p0 - p)) / 2 END / 3600000.0 AS charge,
               CASE WHEN p0 * p >= 0 THEN max(-((p0 + p) / 2 * dt), 0)
                    WHEN p0 > 0 THEN -(p * (dt - dt * p0 / (p0 - p)) / 2)
                    ELSE -(p0 * (dt * p0 / (p0 - p)) / 2) END / 3600000.0 AS discharge
    FROM steps WHERE id IS NOT NULL AND dt IS NOT NULL
)
SELECT id, CAST(round(charge * 1000) AS INTEGER) AS c,
       CAST(round(discharge * 1000) AS INTEGER) AS d
FROM areas;

UPDATE samples SET (charge_uwh, discharge_uwh) = (SELECT c, d FROM m004_steps m
                                                  WHERE m.id = samples.id)
WHERE id IN (SELECT id FROM m004_steps);

DROP TABLE m004_steps;

DROP VIEW v_minutely;

-- The minutes still in samples are summed like the pruner folds them (src/store_writer.c):
-- n and the voltage and current sums count the samples with both; energy is the sum of the
-- rows' increments (each counted in the minute of the sample that ends its step). Both parts
-- are grouped by pack_id, so a filter on pack reaches samples_pack_ts (one pack's rows are
-- read, not every pack's).
CREATE VIEW v_minutely AS
WITH m AS (
    SELECT p.pack_id AS pack, p.bank, r.bucket, r.n, r.v_sum, r.v_min, r.v_max, r.i_sum, r.i_min,
           r.i_max, r.soc_sum, r.soc_min, r.soc_max, r.soc_n, r.cell_min, r.cell_max, r.temp_min,
           r.temp_max, r.charge_mwh, r.discharge_mwh
    FROM rollup_1m r JOIN packs p ON p.id = r.pack
    UNION ALL
    SELECT p.pack_id AS pack, p.bank, s.ts / 60000 * 60 AS bucket,
           sum(vi) AS n,
           sum(CASE WHEN vi THEN voltage_mv ELSE 0 END) AS v_sum,
           min(CASE WHEN vi THEN voltage_mv END) AS v_min,
           max(CASE WHEN vi THEN voltage_mv END) AS v_max,
           sum(CASE WHEN vi THEN current_ma ELSE 0 END) AS i_sum,
           min(CASE WHEN vi THEN current_ma END) AS i_min,
           max(CASE WHEN vi THEN current_ma END) AS i_max,
           sum(soc_cpct) AS soc_sum, min(soc_cpct) AS soc_min, max(soc_cpct) AS soc_max,
           count(soc_cpct) AS soc_n,
           min(cell_min_mv) AS cell_min, max(cell_max_mv) AS cell_max,
           min(temp_min_dc) AS temp_min, max(temp_max_dc) AS temp_max,
           total(charge_uwh) / 1000.0 AS charge_mwh, total(discharge_uwh) / 1000.0 AS discharge_mwh
    FROM (SELECT *, voltage_mv IS NOT NULL AND current_ma IS NOT NULL AS vi FROM samples) s
    JOIN packs p ON p.id = s.pack
    GROUP BY p.pack_id, bucket
)
SELECT r.pack, r.bank, r.bucket,
       datetime(r.bucket, 'unixepoch', 'localtime') AS time, r.n AS samples,
       round(r.v_sum / 1000.0 / r.n, 3) AS voltage_avg_v,
       round(r.v_min / 1000.0, 3) AS voltage_min_v, round(r.v_max / 1000.0, 3) AS voltage_max_v,
       round(r.i_sum / 1000.0 / r.n, 3) AS current_avg_a,
       round(r.i_min / 1000.0, 3) AS current_min_a, round(r.i_max / 1000.0, 3) AS current_max_a,
       round(r.soc_sum / 100.0 / r.soc_n, 2) AS soc_avg_pct,
       round(r.soc_min / 100.0, 2) AS soc_min_pct, round(r.soc_max / 100.0, 2) AS soc_max_pct,
       round(r.cell_min / 1000.0, 3) AS cell_min_v, round(r.cell_max / 1000.0, 3) AS cell_max_v,
       round(r.temp_min / 10.0, 1) AS temp_min_c, round(r.temp_max / 10.0, 1) AS temp_max_c,
       round(r.charge_mwh / 1000.0, 3) AS charged_wh,
       round(r.discharge_mwh / 1000.0, 3) AS discharged_wh
FROM m r;
