-- Whether a parent still has open subtasks is one index probe: the settler
-- asks it after every batch of outcomes, which must not cost a scan of all
-- of a large task's subtasks.
CREATE INDEX tasks_open_children ON tasks (parent_id) WHERE status NOT IN ('complete', 'terminated');
