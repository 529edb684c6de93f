-- 005_staleness: the database judges by itself whether data is live. Each pack knows its poll
-- interval, so v_latest says a pack is offline once its newest sample is older than the
-- daemon's offline threshold, whatever its last event said (a stopped daemon writes no
-- "offline" event); every daemon run leaves a row, so a stopped or killed daemon is visible.
-- Ages are computed in milliseconds ('now' has milliseconds in julianday; strftime('%s') had
-- whole seconds, which made fresh samples up to 1 s "in the future") and never go below 0.

-- The port's interval_s, written by the daemon at every start. NULL for a pack no daemon has
-- registered since this migration (the views then assume the default, 30 s).
ALTER TABLE packs ADD COLUMN interval_s INTEGER;

-- The configured commit_interval_s, written by the daemon at every start: a sample reaches the
-- database up to one commit interval after it was taken, so the views add it to the threshold.
INSERT OR IGNORE INTO meta (key, value) VALUES ('commit_interval_s', 5);

-- One row per daemon run (bmsfleet run with a history). last_write: the writer's last commit
-- (UTC epoch ms); a running daemon commits, or writes a heartbeat, at least every heartbeat_s.
-- stopped: when it stopped cleanly; NULL while it runs, and forever after a kill -9, a crash
-- or a power cut.
CREATE TABLE daemon_runs (
    id          INTEGER PRIMARY KEY,
    started     INTEGER NOT NULL,   -- ms
    last_write  INTEGER NOT NULL,   -- ms
    stopped     INTEGER,            -- ms
    heartbeat_s INTEGER NOT NULL,
    version     TEXT
);

-- The newest health event of a pack, without scanning every event.
CREATE INDEX events_pack_kind ON events(pack, kind);

DROP VIEW v_bank_latest;
DROP VIEW v_latest;

-- event: the pack's newest online/stale/offline event; offline_after_s: 3 poll intervals (the
-- daemon's own threshold, src/poller.c) plus one commit interval; health: offline when the
-- newest sample is older than that or the last event says offline, else the last event's
-- (online only when that sample is fresh), NULL when there is no health event.
CREATE VIEW v_latest AS
SELECT v.*, h.age_s, h.offline_after_s, h.event,
       CASE WHEN h.age_s > h.offline_after_s OR h.event = 'offline' THEN 'offline'
            ELSE h.event END AS health
FROM v_samples v
JOIN (SELECT p.last_sample,
             round(max(0, (julianday('now') - 2440587.5) * 86400000 - s.ts) / 1000.0, 1)
                 AS age_s,
             3 * coalesce(p.interval_s, 30)
                 + coalesce((SELECT value FROM meta WHERE key = 'commit_interval_s'), 5)
                 AS offline_after_s,
             (SELECT e.kind FROM events e WHERE e.pack = p.id
                  AND e.kind IN ('online', 'stale', 'offline') ORDER BY e.id DESC LIMIT 1)
                 AS event
      FROM packs p JOIN samples s ON s.id = p.last_sample) h ON h.last_sample = v.id;

-- Per bank, from each pack's latest sample: SOC weighted by full capacity; packs_online counts
-- the packs whose health is online (fresh data and an online event).
CREATE VIEW v_bank_latest AS
SELECT bank,
       count(*) AS packs,
       count(CASE WHEN health = 'online' THEN 1 END) AS packs_online,
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
       max(time) AS time,
       min(age_s) AS age_s
FROM v_latest
GROUP BY bank;

-- The daemon runs, newest last. state: writing (a write within two heartbeats), stopped (it
-- recorded its stop), or not_writing (no stop recorded and no write for longer: killed,
-- crashed, the power went, or its writes fail). age_s: seconds since its last write.
CREATE VIEW v_daemon AS
SELECT id, started AS started_ts, datetime(started / 1000, 'unixepoch', 'localtime') AS started,
       last_write AS last_write_ts,
       datetime(last_write / 1000, 'unixepoch', 'localtime') AS last_write,
       stopped AS stopped_ts, datetime(stopped / 1000, 'unixepoch', 'localtime') AS stopped,
       version, heartbeat_s, age_s,
       CASE WHEN stopped IS NOT NULL THEN 'stopped'
            WHEN age_s <= 2 * heartbeat_s THEN 'writing'
            ELSE 'not_writing' END AS state
FROM (SELECT *,
             round(max(0, (julianday('now') - 2440587.5) * 86400000 - last_write) / 1000.0, 1)
                 AS age_s
      FROM daemon_runs);
