-- Less upkeep per subtask written (a fan-out inserts one per node; each is
-- then claimed or finished by a non-HOT update).
--
-- The parent link's foreign key ran a referential check per inserted row
-- (a query and a key-share lock on the parent: about a quarter of a
-- 10,000-row fan-out's COPY). Subtasks are written only by the engine,
-- under a parent it holds running; the retention delete, the one place
-- tasks are deleted, removes a task's whole tree itself
-- (`Store::delete_tasks_older_than`). Messages, build data and boot actions
-- keep their foreign keys to tasks.
ALTER TABLE tasks DROP CONSTRAINT tasks_parent_id_fkey;
-- Running tasks by owner: the leader's look for a dead instance's tasks
-- walks every running task whatever the index (`tasks_open_status` serves
-- it as well), and the by-owner requeue runs once, when an instance starts.
DROP INDEX tasks_owner_running;
-- Timeline entries are pruned by age (`ts < cutoff`) now and then, and are
-- written in time order: a BRIN summary serves that pruning at a fraction
-- of a B-tree's upkeep on every insert.
DROP INDEX node_events_ts;
CREATE INDEX node_events_ts ON node_events USING brin (ts);
-- Tasks whose cancellation was requested: every instance asks, every
-- 250 ms, which of the tasks it runs are among them. Few tasks ever are,
-- so the answer is a probe of this small index per task asked about, not a
-- fetch of each task's row; no running or finishing task gets an entry.
CREATE INDEX tasks_terminate ON tasks (id) WHERE terminate;
