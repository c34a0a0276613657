-- Drydock store, initial schema (SQLite).
-- Keep equivalent to ../postgres/20250101000000_initial.sql: same tables,
-- columns, constraints and indexes. Types: UUIDs are 16-byte BLOBs (sqlx's
-- encoding), JSON is TEXT, timestamps are RFC 3339 TEXT in UTC (sqlx's
-- encoding; the store truncates them to microseconds, so they sort
-- lexically in time order), booleans are INTEGER 0/1.

CREATE TABLE tasks (
    id              BLOB PRIMARY KEY NOT NULL,
    parent_id       BLOB REFERENCES tasks (id) ON DELETE CASCADE,
    action          TEXT NOT NULL,
    design_ref      TEXT,
    node_filter     TEXT,
    node_name       TEXT,
    params          TEXT NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('requested', 'queued', 'running', 'complete', 'terminated')),
    result_status   TEXT NOT NULL DEFAULT 'incomplete'
                    CHECK (result_status IN ('incomplete', 'success', 'partial_success', 'failure')),
    result_message  TEXT,
    result_reason   TEXT,
    successes       TEXT NOT NULL DEFAULT '[]',
    failures        TEXT NOT NULL DEFAULT '[]',
    error_count     INTEGER NOT NULL DEFAULT 0,
    retry           INTEGER NOT NULL DEFAULT 0,
    created         TEXT NOT NULL,
    created_by      TEXT,
    updated         TEXT NOT NULL,
    terminated      TEXT,
    terminated_by   TEXT,
    terminate       BOOLEAN NOT NULL DEFAULT FALSE,
    owner           TEXT,
    attempt         INTEGER NOT NULL DEFAULT 0,
    deadline        TEXT,
    epoch           INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX tasks_status_created ON tasks (status, created, id);
CREATE INDEX tasks_parent ON tasks (parent_id, node_name, created);
CREATE INDEX tasks_created ON tasks (created);
CREATE INDEX tasks_owner_running ON tasks (owner) WHERE status = 'running';

CREATE TABLE messages (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id         BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    message         TEXT NOT NULL,
    error           BOOLEAN NOT NULL DEFAULT FALSE,
    context_type    TEXT NOT NULL,
    context         TEXT NOT NULL,
    ts              TEXT NOT NULL,
    extra           TEXT
);

CREATE INDEX messages_task_seq ON messages (task_id, seq);

CREATE TABLE build_data (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    node_name       TEXT NOT NULL,
    task_id         BLOB REFERENCES tasks (id) ON DELETE SET NULL,
    generator       TEXT NOT NULL,
    format          TEXT NOT NULL,
    content         TEXT NOT NULL,
    collected       TEXT NOT NULL
);

CREATE INDEX build_data_node_collected ON build_data (node_name, collected);
CREATE INDEX build_data_task ON build_data (task_id);

CREATE TABLE nodes (
    name            TEXT PRIMARY KEY NOT NULL,
    spec            TEXT NOT NULL,
    credential      TEXT,
    power_state     TEXT,
    boot_device     TEXT,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL
);

CREATE TABLE secrets (
    name            TEXT PRIMARY KEY NOT NULL,
    value           TEXT NOT NULL,
    created         TEXT NOT NULL,
    updated         TEXT NOT NULL
);

CREATE TABLE driver_kv (
    driver          TEXT NOT NULL,
    key             TEXT NOT NULL,
    value           TEXT NOT NULL,
    updated         TEXT NOT NULL,
    PRIMARY KEY (driver, key)
) WITHOUT ROWID;
