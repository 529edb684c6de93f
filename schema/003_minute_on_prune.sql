-- 003_minute_on_prune: 1-minute rollups are written by retention, not by every batch. A raw
-- sample is folded into rollup_1m in the transaction that deletes it, so a minute is either in
-- rollup_1m (pruned) or still in samples (kept), never in both; v_minutely shows the rollup
-- rows and computes the kept minutes from the samples (at 30 s a rollup row costs more than
-- the two samples it sums, so keeping both doubled the size of the history).

-- Where the pruner's integration stopped: the last pruned point with power (ms, mW), so the
-- step to the next sample is counted in the right minute, across batches and restarts.
ALTER TABLE energy ADD COLUMN prune_ts INTEGER;
ALTER TABLE energy ADD COLUMN prune_power_mw REAL;

-- The configured energy_max_gap_s, written by the daemon at every start (v_minutely reads it).
INSERT OR IGNORE INTO meta (key, value) VALUES ('energy_max_gap_s', 300);

-- Existing databases hold a rollup_1m row for every minute, kept samples included. Per pack,
-- the minute of the oldest kept sample may have lost samples to the old retention (its cut was
-- not aligned to a minute): its rollup row is the complete one, so it stays and that minute's
-- samples (at most a minute of raw data) are folded, i.e. deleted, as the new retention would
-- do; the pruner's integration state starts at the last of them. Every later minute is
-- complete in samples: its rollup row goes, v_minutely computes it from the samples.
CREATE TEMP TABLE m003_edge AS
SELECT o.pack, (o.bucket + 60) * 1000 AS cut
FROM (SELECT pack, min(ts) / 1000 / 60 * 60 AS bucket FROM samples GROUP BY pack) o
WHERE EXISTS (SELECT 1 FROM rollup_1m r WHERE r.pack = o.pack AND r.bucket = o.bucket);

INSERT INTO energy (pack, prune_ts, prune_power_mw)
SELECT e.pack, s.ts, s.voltage_mv * s.current_ma / 1000.0
FROM m003_edge e JOIN samples s ON s.id = (
    SELECT id FROM samples WHERE pack = e.pack AND ts < e.cut AND voltage_mv IS NOT NULL
        AND current_ma IS NOT NULL ORDER BY ts DESC, id DESC LIMIT 1)
WHERE true
ON CONFLICT (pack) DO UPDATE SET prune_ts = excluded.prune_ts,
                                 prune_power_mw = excluded.prune_power_mw;

DELETE FROM samples WHERE id IN (
    SELECT s.id FROM m003_edge e JOIN samples s ON s.pack = e.pack AND s.ts < e.cut);

DELETE FROM rollup_1m WHERE EXISTS (
    SELECT 1 FROM samples s WHERE s.pack = rollup_1m.pack
        AND s.ts >= rollup_1m.bucket * 1000 AND s.ts < rollup_1m.bucket * 1000 + 60000);

UPDATE packs SET last_sample = (SELECT max(id) FROM samples WHERE samples.pack = packs.id)
WHERE last_sample IS NOT NULL AND last_sample NOT IN (SELECT id FROM samples);

DROP TABLE m003_edge;

DROP VIEW v_minutely;

-- The minutes still in samples are computed like the pruner computes them (src/store_writer.c):
-- n and the voltage and current sums count the samples with both; energy is the trapezoid
-- between consecutive points with power (in (ts, id) order, from the pruner's last point),
-- split at the zero crossing, counted in the minute of the later point, and not integrated over
-- a gap longer than energy_max_gap_s.
CREATE VIEW v_minutely AS
WITH r AS (
    SELECT pack, bucket, n, v_sum, v_min, v_max, i_sum, i_min, i_max, soc_sum, soc_min,
           soc_max, soc_n, cell_min, cell_max, temp_min, temp_max, charge_mwh, discharge_mwh
    FROM rollup_1m
),
pts AS (
    SELECT pack, ts, id, voltage_mv, current_ma, soc_cpct, cell_min_mv, cell_max_mv,
           temp_min_dc, temp_max_dc,
           voltage_mv IS NOT NULL AND current_ma IS NOT NULL AS vi,
           voltage_mv * current_ma / 1000.0 AS p
    FROM samples
    UNION ALL
    SELECT pack, prune_ts, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, prune_power_mw
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
    SELECT *, CASE WHEN dt IS NULL THEN 0
                   WHEN p0 * p >= 0 THEN max((p0 + p) / 2 * dt, 0)
                   WHEN p0 > 0 THEN p0 * (dt * p0 / (p0 - p)) / 2
                   ELSE p * (dt - dt * p0 / (p0 - p)) / 2 END / 3600000.0 AS charge,
              CASE WHEN dt IS NULL THEN 0
                   WHEN p0 * p >= 0 THEN max(-((p0 + p) / 2 * dt), 0)
                   WHEN p0 > 0 THEN -(p * (dt - dt * p0 / (p0 - p)) / 2)
                   ELSE -(p0 * (dt * p0 / (p0 - p)) / 2) END / 3600000.0 AS discharge
    FROM steps
),
k AS (
    SELECT pack, ts / 1000 / 60 * 60 AS bucket,
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
           total(charge) AS charge_mwh, total(discharge) AS discharge_mwh
    FROM areas WHERE id IS NOT NULL
    GROUP BY pack, bucket
)
SELECT p.pack_id AS pack, p.bank, r.bucket,
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
FROM (SELECT * FROM r UNION ALL SELECT * FROM k) r JOIN packs p ON p.id = r.pack;
