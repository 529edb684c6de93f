-- 001_initial: packs, samples, rollups, energy, events, and the views people query.
--
-- Units in tables are exact integers: mV, mA, mAh, 0.01 % (SOC, SOH), 0.1 °C, UTC epoch
-- milliseconds (ts) or seconds (rollup buckets). The views turn them into V, A, W, Ah, %, °C
-- and local time. Every sample row's id is the global insert order (the MQTT replay cursor).

CREATE TABLE packs (
    id          INTEGER PRIMARY KEY,
    pack_id     TEXT NOT NULL UNIQUE,   -- the configuration's id
    port        TEXT NOT NULL,
    address     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    bank        TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    serial      TEXT,
    temp_roles  TEXT,                   -- one letter per sensor: c cell, m MOS, a ambient, v average
    first_seen  INTEGER,                -- ms
    last_seen   INTEGER                 -- ms
);

-- One row per sample. cells: format byte 1 then one byte per cell = mV above cell_min_mv, or
-- format byte 2 then big-endian u16 mV per cell. temps: big-endian s16 0.1 °C per sensor,
-- in the order of packs.temp_roles. Absent values are NULL, never 0.
CREATE TABLE samples (
    id            INTEGER PRIMARY KEY,
    pack          INTEGER NOT NULL REFERENCES packs(id),
    ts            INTEGER NOT NULL,
    voltage_mv    INTEGER,
    current_ma    INTEGER,
    soc_cpct      INTEGER,
    soh_cpct      INTEGER,
    remaining_mah INTEGER,
    full_mah      INTEGER,
    design_mah    INTEGER,
    cycles        INTEGER,
    cell_min_mv   INTEGER,
    cell_max_mv   INTEGER,
    cell_min_idx  INTEGER,
    cell_max_idx  INTEGER,
    temp_min_dc   INTEGER,
    temp_max_dc   INTEGER,
    alarms        INTEGER NOT NULL DEFAULT 0,
    protection    INTEGER NOT NULL DEFAULT 0,
    state         INTEGER NOT NULL DEFAULT 0,
    balancing     INTEGER NOT NULL DEFAULT 0,
    cells         BLOB,
    temps         BLOB
);
CREATE INDEX samples_pack_ts ON samples(pack, ts);

-- Rollups keep sums (avg = sum / n in the views) so partial buckets merge exactly.
CREATE TABLE rollup_1m (
    pack INTEGER NOT NULL, bucket INTEGER NOT NULL,   -- bucket: epoch seconds of the minute
    n INTEGER NOT NULL,
    v_sum INTEGER, v_min INTEGER, v_max INTEGER,
    i_sum INTEGER, i_min INTEGER, i_max INTEGER,
    soc_sum INTEGER, soc_min INTEGER, soc_max INTEGER, soc_n INTEGER,
    cell_min INTEGER, cell_max INTEGER,
    temp_min INTEGER, temp_max INTEGER,
    charge_mwh REAL NOT NULL DEFAULT 0, discharge_mwh REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (pack, bucket)
) WITHOUT ROWID;

CREATE TABLE rollup_1h (
    pack INTEGER NOT NULL, bucket INTEGER NOT NULL,   -- bucket: epoch seconds of the hour
    n INTEGER NOT NULL,
    v_sum INTEGER, v_min INTEGER, v_max INTEGER,
    i_sum INTEGER, i_min INTEGER, i_max INTEGER,
    soc_sum INTEGER, soc_min INTEGER, soc_max INTEGER, soc_n INTEGER,
    cell_min INTEGER, cell_max INTEGER,
    temp_min INTEGER, temp_max INTEGER,
    charge_mwh REAL NOT NULL DEFAULT 0, discharge_mwh REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (pack, bucket)
) WITHOUT ROWID;

-- Energy counters: integrated V × I, never reset, continuous across restarts.
CREATE TABLE energy (
    pack          INTEGER PRIMARY KEY REFERENCES packs(id),
    charged_mwh   REAL NOT NULL DEFAULT 0,
    discharged_mwh REAL NOT NULL DEFAULT 0,
    last_ts       INTEGER,      -- ms of the last integrated sample
    last_power_mw REAL
);

-- online / offline / stale, alarm_raised / alarm_cleared, protection_raised / _cleared
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    pack   INTEGER NOT NULL REFERENCES packs(id),
    ts     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX events_ts ON events(ts);

-- Names of the flag bits, written by the daemon from its own table at every start.
CREATE TABLE flag_names (
    kind TEXT NOT NULL,     -- alarm, protection, state
    bit  INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (kind, bit)
) WITHOUT ROWID;

-- Small persistent state (cursors).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value
) WITHOUT ROWID;

CREATE VIEW v_samples AS
SELECT s.id, p.pack_id AS pack, p.bank, s.ts,
       datetime(s.ts / 1000, 'unixepoch', 'localtime') AS time,
       round(s.voltage_mv / 1000.0, 3) AS voltage_v,
       round(s.current_ma / 1000.0, 3) AS current_a,
       round(s.voltage_mv * s.current_ma / 1e6, 1) AS power_w,
       round(s.soc_cpct / 100.0, 2) AS soc_pct,
       round(s.soh_cpct / 100.0, 2) AS soh_pct,
       round(s.remaining_mah / 1000.0, 3) AS remaining_ah,
       round(s.full_mah / 1000.0, 3) AS full_ah,
       round(s.design_mah / 1000.0, 3) AS design_ah,
       s.cycles,
       round(s.cell_min_mv / 1000.0, 3) AS cell_min_v, s.cell_min_idx,
       round(s.cell_max_mv / 1000.0, 3) AS cell_max_v, s.cell_max_idx,
       s.cell_max_mv - s.cell_min_mv AS cell_diff_mv,
       round(s.temp_min_dc / 10.0, 1) AS temp_min_c,
       round(s.temp_max_dc / 10.0, 1) AS temp_max_c,
       s.alarms, s.protection, s.state, s.balancing
FROM samples s JOIN packs p ON p.id = s.pack;

CREATE VIEW v_latest AS
SELECT v.*, round((strftime('%s', 'now') * 1000 - v.ts) / 1000.0, 0) AS age_s
FROM v_samples v
WHERE v.id IN (SELECT max(id) FROM samples GROUP BY pack);

-- Per bank, from each pack's latest sample: SOC weighted by full capacity.
CREATE VIEW v_bank_latest AS
SELECT bank,
       count(*) AS packs,
       round(sum(soc_pct * full_ah) / sum(CASE WHEN soc_pct IS NOT NULL THEN full_ah END), 2)
           AS soc_pct,
       round(sum(current_a), 3) AS current_a,
       round(sum(power_w), 1) AS power_w,
       round(sum(remaining_ah), 3) AS remaining_ah,
       round(sum(full_ah), 3) AS full_ah,
       min(cell_min_v) AS cell_min_v,
       max(cell_max_v) AS cell_max_v,
       CAST(round((max(cell_max_v) - min(cell_min_v)) * 1000) AS INTEGER) AS cell_spread_mv,
       max(temp_max_c) AS temp_max_c,
       max(time) AS time
FROM v_latest
GROUP BY bank;

CREATE VIEW v_minutely AS
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
FROM rollup_1m r JOIN packs p ON p.id = r.pack;

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

-- Local calendar days, from the hourly rollups.
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

CREATE VIEW v_energy AS
SELECT p.pack_id AS pack, p.bank,
       round(e.charged_mwh / 1e6, 3) AS charged_kwh,
       round(e.discharged_mwh / 1e6, 3) AS discharged_kwh,
       datetime(e.last_ts / 1000, 'unixepoch', 'localtime') AS updated
FROM energy e JOIN packs p ON p.id = e.pack;

CREATE VIEW v_events AS
SELECT e.id, p.pack_id AS pack, p.bank, e.ts,
       datetime(e.ts / 1000, 'unixepoch', 'localtime') AS time, e.kind, e.detail
FROM events e JOIN packs p ON p.id = e.pack;

-- One row per cell of each sample (decode the cells blob in plain SQL).
CREATE VIEW v_cells AS
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 32)
SELECT s.id AS sample, p.pack_id AS pack, s.ts,
       datetime(s.ts / 1000, 'unixepoch', 'localtime') AS time, k.i AS cell,
       round((CASE substr(hex(s.cells), 1, 2)
           WHEN '01' THEN s.cell_min_mv
               + (instr('0123456789ABCDEF', substr(hex(s.cells), 2 * k.i + 1, 1)) - 1) * 16
               + (instr('0123456789ABCDEF', substr(hex(s.cells), 2 * k.i + 2, 1)) - 1)
           ELSE (instr('0123456789ABCDEF', substr(hex(s.cells), 4 * k.i - 1, 1)) - 1) * 4096
               + (instr('0123456789ABCDEF', substr(hex(s.cells), 4 * k.i, 1)) - 1) * 256
               + (instr('0123456789ABCDEF', substr(hex(s.cells), 4 * k.i + 1, 1)) - 1) * 16
               + (instr('0123456789ABCDEF', substr(hex(s.cells), 4 * k.i + 2, 1)) - 1)
       END) / 1000.0, 3) AS voltage_v,
       (s.balancing >> (k.i - 1)) & 1 AS balancing
FROM samples s JOIN packs p ON p.id = s.pack
JOIN k ON k.i <= CASE substr(hex(s.cells), 1, 2) WHEN '01' THEN length(s.cells) - 1
                                                 ELSE (length(s.cells) - 1) / 2 END;

-- One row per temperature sensor of each sample, with its role.
CREATE VIEW v_temps AS
WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 16)
SELECT s.id AS sample, p.pack_id AS pack, s.ts,
       datetime(s.ts / 1000, 'unixepoch', 'localtime') AS time, k.i AS sensor,
       CASE substr(p.temp_roles, k.i, 1) WHEN 'm' THEN 'mos' WHEN 'a' THEN 'ambient'
                                         WHEN 'v' THEN 'average' ELSE 'cell' END AS role,
       round(((instr('0123456789ABCDEF', substr(hex(s.temps), 4 * k.i - 3, 1)) - 1) * 4096
            + (instr('0123456789ABCDEF', substr(hex(s.temps), 4 * k.i - 2, 1)) - 1) * 256
            + (instr('0123456789ABCDEF', substr(hex(s.temps), 4 * k.i - 1, 1)) - 1) * 16
            + (instr('0123456789ABCDEF', substr(hex(s.temps), 4 * k.i, 1)) - 1)
            - CASE WHEN substr(hex(s.temps), 4 * k.i - 3, 1) >= '8' THEN 65536 ELSE 0 END)
            / 10.0, 1) AS temp_c
FROM samples s JOIN packs p ON p.id = s.pack
JOIN k ON k.i <= length(s.temps) / 2;

-- Active alarm / protection names per sample.
CREATE VIEW v_alarms AS
SELECT s.id AS sample, p.pack_id AS pack, s.ts,
       datetime(s.ts / 1000, 'unixepoch', 'localtime') AS time, f.kind, f.name
FROM samples s JOIN packs p ON p.id = s.pack
JOIN flag_names f ON (f.kind = 'alarm' AND (s.alarms >> f.bit) & 1)
                  OR (f.kind = 'protection' AND (s.protection >> f.bit) & 1);
