-- Each task counts its subtasks (`children`) and those not yet finished
-- (`open_children`), so "has this task subtasks?" and "have they all
-- finished?" are one primary-key read instead of an index probe. Triggers
-- keep the counts on every path that inserts, settles, requeues, cancels or
-- deletes a subtask (row-level here: SQLite has no statement triggers).
ALTER TABLE tasks ADD COLUMN children INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN open_children INTEGER NOT NULL DEFAULT 0;

UPDATE tasks SET
    children = (SELECT count(*) FROM tasks c WHERE c.parent_id = tasks.id),
    open_children = (SELECT count(*) FROM tasks c WHERE c.parent_id = tasks.id
                     AND c.status NOT IN ('complete', 'terminated'));

CREATE TRIGGER tasks_count_inserted AFTER INSERT ON tasks
WHEN NEW.parent_id IS NOT NULL
BEGIN
    UPDATE tasks SET children = children + 1,
        open_children = open_children + (NEW.status NOT IN ('complete', 'terminated'))
    WHERE id = NEW.parent_id;
END;

CREATE TRIGGER tasks_count_updated AFTER UPDATE OF status ON tasks
WHEN NEW.parent_id IS NOT NULL
    AND (OLD.status IN ('complete', 'terminated')) <> (NEW.status IN ('complete', 'terminated'))
BEGIN
    UPDATE tasks SET open_children = open_children
        + CASE WHEN NEW.status IN ('complete', 'terminated') THEN -1 ELSE 1 END
    WHERE id = NEW.parent_id;
END;

CREATE TRIGGER tasks_count_deleted AFTER DELETE ON tasks
WHEN OLD.parent_id IS NOT NULL
BEGIN
    UPDATE tasks SET children = children - 1,
        open_children = open_children - (OLD.status NOT IN ('complete', 'terminated'))
    WHERE id = OLD.parent_id;
END;

DROP INDEX tasks_open_children;
