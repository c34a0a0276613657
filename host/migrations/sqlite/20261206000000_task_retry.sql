-- `retry` becomes Drydock's retry number (how many times the task's action
-- was retried); the attempts an orchestrator step allows its driver action,
-- which `retry` used to hold, move to `max_attempts`. Keep equivalent to
-- ../postgres/20261206000000_task_retry.sql.
ALTER TABLE tasks ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 0;
UPDATE tasks SET max_attempts = retry, retry = 0;
