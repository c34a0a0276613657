-- Boot actions handed to nodes by deploy_nodes: one row per boot action per
-- node per deployment. A node proves itself with its key (only the SHA-256
-- is kept) and reports each action's outcome by its id. Keep equivalent to
-- ../postgres/20260401000000_boot_actions.sql.
CREATE TABLE boot_actions (
    action_id   TEXT PRIMARY KEY,
    task_id     BLOB NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    node_name   TEXT NOT NULL,
    name        TEXT NOT NULL,
    signaling   BOOLEAN NOT NULL,
    status      TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    design_ref  TEXT NOT NULL,
    created     TEXT NOT NULL,
    updated     TEXT NOT NULL
);

CREATE INDEX boot_actions_node ON boot_actions (node_name, created);
CREATE INDEX boot_actions_task ON boot_actions (task_id);

-- The leader looks up the running waits for boot action reports by action.
CREATE INDEX tasks_running_action ON tasks (action) WHERE status = 'running';
