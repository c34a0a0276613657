-- Traces (issue 18): the W3C traceparent a task's work continues, so that
-- its subtasks and orchestration steps join the task's trace on whichever
-- instance runs them. NULL when traces are not exported. Keep equivalent
-- to ../postgres/20261207000100_task_traceparent.sql.
ALTER TABLE tasks ADD COLUMN traceparent TEXT;
