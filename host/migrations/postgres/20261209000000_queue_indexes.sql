-- Indexes whose entries per-node calls never make. An index keyed on status
-- keeps an entry for every task that has left that status until vacuum, and
-- a 100,000-node task leaves 100,000 of them in 'queued' and in 'running':
-- the leader's poll for new top-level tasks and its look for settled
-- containers walked them on every tick (10 ms and 8 ms a tick at 100,000).
-- Top-level tasks waiting to be scheduled (the scheduler's claim).
CREATE INDEX tasks_queued_top ON tasks (created, id) WHERE status = 'queued' AND parent_id IS NULL;
-- Running containers (top-level tasks, orchestration steps) by owner.
CREATE INDEX tasks_running_containers ON tasks (owner, created) WHERE status = 'running' AND node_name IS NULL;
