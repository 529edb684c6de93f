-- 007_write_locality: what a commit writes lands on few pages (issue 15, SD-card wear). SQLite
-- writes whole pages, to the WAL at the commit and again into the database at the checkpoint;
-- a commit of 16 packs' samples used to dirty one leaf of samples_pack_ts per pack (the index
-- was ordered by pack first, so each pack's new entry went to the end of that pack's range) and,
-- once the database held a few days, one leaf of rollup_1h per pack (ordered by pack, then
-- hour): 25 pages per commit a day into a database's life, 16 of them the index's.

-- The samples' index, time first: the entries of a commit are the newest and go to the last
-- leaf together. A filter on ts (with or without one on pack) reads the range of the index; a
-- filter on pack alone reads the table (every leaf holds samples of every pack anyway).
DROP INDEX samples_pack_ts;
CREATE INDEX samples_ts_pack ON samples(ts, pack);

-- rollup_1h, hour first: a commit updates the current hour of every pack, now rows side by
-- side on one page. rollup_1h_pack serves the filters on pack; its entries change only when a
-- new hour starts (an UPSERT that updates a row leaves the index alone).
DROP VIEW v_hourly;
DROP VIEW v_daily_energy;
DROP VIEW v_bank_daily_energy;
CREATE TABLE rollup_1h_new (
    pack INTEGER NOT NULL, bucket INTEGER NOT NULL,   -- bucket: epoch seconds of the hour
    n INTEGER NOT NULL,
    v_sum INTEGER, v_min INTEGER, v_max INTEGER,
    i_sum INTEGER, i_min INTEGER, i_max INTEGER,
    soc_sum INTEGER, soc_min INTEGER, soc_max INTEGER, soc_n INTEGER,
    cell_min INTEGER, cell_max INTEGER,
    temp_min INTEGER, temp_max INTEGER,
    charge_mwh REAL NOT NULL DEFAULT 0, discharge_mwh REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, pack)
) WITHOUT ROWID;
INSERT INTO rollup_1h_new SELECT * FROM rollup_1h ORDER BY bucket, pack;
DROP TABLE rollup_1h;
ALTER TABLE rollup_1h_new RENAME TO rollup_1h;
CREATE INDEX rollup_1h_pack ON rollup_1h(pack, bucket);

CREATE VIEW v_hourly AS
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
FROM rollup_1h r JOIN packs p ON p.id = r.pack;

CREATE VIEW v_daily_energy AS
SELECT p.pack_id AS pack, p.bank, date(r.bucket, 'unixepoch', 'localtime') AS day,
       round(sum(r.charge_mwh) / 1e6, 3) AS charged_kwh,
       round(sum(r.discharge_mwh) / 1e6, 3) AS discharged_kwh
FROM rollup_1h r JOIN packs p ON p.id = r.pack
GROUP BY r.pack, day;

CREATE VIEW v_bank_daily_energy AS
SELECT p.bank, date(r.bucket, 'unixepoch', 'localtime') AS day,
       round(sum(r.charge_mwh) / 1e6, 3) AS charged_kwh,
       round(sum(r.discharge_mwh) / 1e6, 3) AS discharged_kwh
FROM rollup_1h r JOIN packs p ON p.id = r.pack
GROUP BY p.bank, day;

-- The hourly rollups now wait in the writer's memory for up to a minute (each pack's current hour
-- was rewritten at every commit): rollup_1h holds every sample up to this id; a start folds
-- the samples after it (after a crash or a power cut). Every sample so far is in rollup_1h.
INSERT OR REPLACE INTO meta (key, value)
VALUES ('rollup_1h_upto', (SELECT coalesce(max(id), 0) FROM samples));
