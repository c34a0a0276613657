-- Rows updated in place keep room on their page, so an update that changes
-- no indexed column can stay on the page (a HOT update: no new index
-- tuples, no page split). Applies to pages written from now on.
-- tasks: status, counters and results change several times per row.
ALTER TABLE tasks SET (fillfactor = 80);
-- nodes: power state and boot device after every call.
ALTER TABLE nodes SET (fillfactor = 80);
-- node_sync: the fleet sync's per-BMC state, every round.
ALTER TABLE node_sync SET (fillfactor = 70);
-- driver_kv: values rewritten under the same key.
ALTER TABLE driver_kv SET (fillfactor = 80);
-- A few rows, each updated by every write or heartbeat.
ALTER TABLE driver_kv_usage SET (fillfactor = 50);
ALTER TABLE instances SET (fillfactor = 50);
ALTER TABLE leader_lease SET (fillfactor = 50);
