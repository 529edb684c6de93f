-- 006_flags_known: a pack that answers the analog command (0x42) but refuses or ignores the
-- alarm command (0x44) gives samples without alarm, protection, state and balancing flags.
-- Those are unknown for that sample, not "none": flags_known = 0 marks them (the flag columns
-- then hold 0, and the views show NULL). Rows written before this migration, and every
-- sample whose flags were read, have 1. 0 and 1 take no payload bytes in a SQLite record.
ALTER TABLE samples ADD COLUMN flags_known INTEGER NOT NULL DEFAULT 1;

-- v_samples, v_alarms: the flags NULL (no alarm rows) when they are unknown. The views built on
-- v_samples (v_latest, v_bank_latest) bind to the new one by name.
DROP VIEW v_samples;
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
       CASE WHEN s.flags_known THEN s.alarms END AS alarms,
       CASE WHEN s.flags_known THEN s.protection END AS protection,
       CASE WHEN s.flags_known THEN s.state END AS state,
       CASE WHEN s.flags_known THEN s.balancing END AS balancing
FROM samples s JOIN packs p ON p.id = s.pack;

DROP VIEW v_alarms;
CREATE VIEW v_alarms AS
SELECT s.id AS sample, p.pack_id AS pack, s.ts,
       datetime(s.ts / 1000, 'unixepoch', 'localtime') AS time, f.kind, f.name
FROM samples s JOIN packs p ON p.id = s.pack
JOIN flag_names f ON (f.kind = 'alarm' AND (s.alarms >> f.bit) & 1)
                  OR (f.kind = 'protection' AND (s.protection >> f.bit) & 1)
WHERE s.flags_known;
