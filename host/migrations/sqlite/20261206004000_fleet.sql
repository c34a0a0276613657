-- Fleet truth (issue 20): each node's synced BMC state and maintenance,
-- and its timeline. Keep equivalent to ../postgres/20261206004000_fleet.sql.

-- One row per registered node: what its BMC last answered, beside what
-- Drydock set (nodes.power_state); consecutive failed syncs; maintenance
-- (`operator` or `sync`); when its next sync is due and who holds it.
CREATE TABLE node_sync (
    node_name           TEXT PRIMARY KEY NOT NULL REFERENCES nodes (name) ON DELETE CASCADE,
    observed_power      TEXT,
    observed_health     TEXT,
    observed_at         TEXT,
    last_error          TEXT,
    failures            INTEGER NOT NULL DEFAULT 0,
    drift               BOOLEAN NOT NULL DEFAULT FALSE,
    maintenance         TEXT CHECK (maintenance IN ('operator', 'sync')),
    maintenance_reason  TEXT,
    maintenance_since   TEXT,
    due                 TEXT,
    claimed_by          TEXT,
    claim_until         TEXT
);

CREATE INDEX node_sync_due ON node_sync (due) WHERE due IS NOT NULL;
CREATE INDEX node_sync_maintenance ON node_sync (node_name) WHERE maintenance IS NOT NULL;

-- A node's timeline: driver calls, state changes, drift, maintenance.
-- Not tied to the nodes table: a node's history outlives its registration
-- until retention removes it.
CREATE TABLE node_events (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    node_name           TEXT NOT NULL,
    ts                  TEXT NOT NULL,
    kind                TEXT NOT NULL,
    action              TEXT,
    outcome             TEXT,
    duration_ms         INTEGER,
    message             TEXT,
    task_id             BLOB
);

CREATE INDEX node_events_node_seq ON node_events (node_name, seq);
CREATE INDEX node_events_ts ON node_events (ts);
