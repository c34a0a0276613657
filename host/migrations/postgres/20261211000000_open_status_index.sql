-- An index over every status took an entry for each finished task: an
-- outcome moves a task from running to complete, which is never a HOT
-- update (status is indexed), so every finished subtask paid one more
-- index insert here, for entries nothing reads (finished tasks are listed
-- by `tasks_created`, pruned through `tasks_parent`). Only open tasks are
-- looked up by status: the queue's claims (queued), the leader's reclaim,
-- expiry and adoption (running).
DROP INDEX tasks_status_created;
CREATE INDEX tasks_open_status ON tasks (status, created, id)
    WHERE status NOT IN ('complete', 'terminated');
