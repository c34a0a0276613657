-- Drydock store, initial schema (PostgreSQL).
-- Keep equivalent to ../sqlite/20250101000000_initial.sql: same tables,
-- columns, constraints and indexes; only the column types differ
-- (UUID/JSONB/TIMESTAMPTZ here, BLOB/TEXT there).

CREATE TABLE tasks (
    id              UUID PRIMARY KEY,
    parent_id       UUID REFERENCES tasks (id) ON DELETE CASCADE,
    action          TEXT NOT NULL,
    design_ref      TEXT,
    node_filter     JSONB,
    node_name       TEXT,
    params          JSONB NOT NULL DEFAULT '{}',
    status          TEXT NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('requested', 'queued', 'running', 'complete', 'terminated')),
    result_status   TEXT NOT NULL DEFAULT 'incomplete'
                    CHECK (result_status IN ('incomplete', 'success', 'partial_success', 'failure')),
    result_message  TEXT,
    result_reason   TEXT,
    successes       JSONB NOT NULL DEFAULT '[]',
    failures        JSONB NOT NULL DEFAULT '[]',
    error_count     BIGINT NOT NULL DEFAULT 0,
    retry           BIGINT NOT NULL DEFAULT 0,
    created         TIMESTAMPTZ NOT NULL,
    created_by      TEXT,
    updated         TIMESTAMPTZ NOT NULL,
    terminated      TIMESTAMPTZ,
    terminated_by   TEXT,
    terminate       BOOLEAN NOT NULL DEFAULT FALSE,
    owner           TEXT,
    attempt         INTEGER NOT NULL DEFAULT 0,
    deadline        TIMESTAMPTZ,
    epoch           BIGINT NOT NULL DEFAULT 0
);

-- Claiming (status = 'queued' ORDER BY created) and status filters.
CREATE INDEX tasks_status_created ON tasks (status, created, id);
-- Subtask lookups, ordered by node name; also serves ON DELETE CASCADE.
CREATE INDEX tasks_parent ON tasks (parent_id, node_name, created);
-- Listing newest first.
CREATE INDEX tasks_created ON tasks (created);
-- Requeue / fail of a dead instance's running tasks.
CREATE INDEX tasks_owner_running ON tasks (owner) WHERE status = 'running';

-- Task status messages (Drydock's `result_message` table).
CREATE TABLE messages (
    seq             BIGSERIAL PRIMARY KEY,
    task_id         UUID NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    message         TEXT NOT NULL,
    error           BOOLEAN NOT NULL DEFAULT FALSE,
    context_type    TEXT NOT NULL,
    context         TEXT NOT NULL,
    ts              TIMESTAMPTZ NOT NULL,
    extra           JSONB
);

CREATE INDEX messages_task_seq ON messages (task_id, seq);

-- Data collected from nodes (lshw output and the like).
CREATE TABLE build_data (
    id              BIGSERIAL PRIMARY KEY,
    node_name       TEXT NOT NULL,
    task_id         UUID REFERENCES tasks (id) ON DELETE SET NULL,
    generator       TEXT NOT NULL,
    format          TEXT NOT NULL,
    content         TEXT NOT NULL,
    collected       TIMESTAMPTZ NOT NULL
);

CREATE INDEX build_data_node_collected ON build_data (node_name, collected);
CREATE INDEX build_data_task ON build_data (task_id);

-- Registered nodes (until site designs land).
CREATE TABLE nodes (
    name            TEXT PRIMARY KEY,
    spec            JSONB NOT NULL,
    credential      TEXT,
    power_state     TEXT,
    boot_device     TEXT,
    created         TIMESTAMPTZ NOT NULL,
    updated         TIMESTAMPTZ NOT NULL
);

-- Secrets, referenced by name (e.g. nodes.credential); kept apart from nodes.
CREATE TABLE secrets (
    name            TEXT PRIMARY KEY,
    value           TEXT NOT NULL,
    created         TIMESTAMPTZ NOT NULL,
    updated         TIMESTAMPTZ NOT NULL
);

-- Per-driver key-value state.
CREATE TABLE driver_kv (
    driver          TEXT NOT NULL,
    key             TEXT NOT NULL,
    value           TEXT NOT NULL,
    updated         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (driver, key)
);
