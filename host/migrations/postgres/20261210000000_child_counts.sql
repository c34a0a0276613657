-- Each task counts its subtasks (`children`) and those not yet finished
-- (`open_children`), so "has this task subtasks?" and "have they all
-- finished?" are one primary-key read. They were index probes that walk an
-- entry per finished subtask until vacuum: 15 ms per probe of a
-- 100,000-node task, asked after every batch of outcomes.
--
-- Triggers keep the counts, so every path that inserts, settles, requeues,
-- cancels or deletes a subtask keeps them right. They are statement-level
-- (transition tables): a batch of 250 outcomes updates each parent once.
-- Parents are locked in id order before they are updated, so transactions
-- settling subtasks of the same parents never wait on each other in a cycle.
ALTER TABLE tasks
    ADD COLUMN children BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN open_children BIGINT NOT NULL DEFAULT 0;

UPDATE tasks p SET children = c.n, open_children = c.open
FROM (SELECT parent_id, count(*) AS n,
             count(*) FILTER (WHERE status NOT IN ('complete', 'terminated')) AS open
      FROM tasks WHERE parent_id IS NOT NULL GROUP BY parent_id) c
WHERE p.id = c.parent_id;

-- Adds (children, open) per parent.
CREATE FUNCTION tasks_count_add(parents uuid[], added bigint[], opened bigint[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM tasks WHERE id = ANY(parents) ORDER BY id FOR UPDATE;
    UPDATE tasks p SET children = p.children + d.added, open_children = p.open_children + d.opened
    FROM unnest(parents, added, opened) AS d(parent_id, added, opened)
    WHERE p.id = d.parent_id;
END $$;

CREATE FUNCTION tasks_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parents uuid[]; added bigint[]; opened bigint[];
BEGIN
    SELECT array_agg(parent_id ORDER BY parent_id), array_agg(n ORDER BY parent_id),
           array_agg(open ORDER BY parent_id)
    INTO parents, added, opened
    FROM (SELECT parent_id, count(*) AS n,
                 count(*) FILTER (WHERE status NOT IN ('complete', 'terminated')) AS open
          FROM new_rows WHERE parent_id IS NOT NULL GROUP BY parent_id) d;
    IF parents IS NOT NULL THEN
        PERFORM tasks_count_add(parents, added, opened);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION tasks_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parents uuid[]; added bigint[]; opened bigint[];
BEGIN
    -- The counts' own updates change no status.
    IF pg_trigger_depth() > 1 THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(parent_id ORDER BY parent_id), array_agg(0::bigint ORDER BY parent_id),
           array_agg(delta ORDER BY parent_id)
    INTO parents, added, opened
    FROM (SELECT n.parent_id,
                 sum(CASE WHEN n.status IN ('complete', 'terminated') THEN -1 ELSE 1 END) AS delta
          FROM old_rows o JOIN new_rows n ON n.id = o.id
          WHERE n.parent_id IS NOT NULL
            AND (o.status IN ('complete', 'terminated')) <> (n.status IN ('complete', 'terminated'))
          GROUP BY n.parent_id) d
    WHERE delta <> 0;
    IF parents IS NOT NULL THEN
        PERFORM tasks_count_add(parents, added, opened);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION tasks_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE parents uuid[]; added bigint[]; opened bigint[];
BEGIN
    SELECT array_agg(parent_id ORDER BY parent_id), array_agg(-n ORDER BY parent_id),
           array_agg(-open ORDER BY parent_id)
    INTO parents, added, opened
    FROM (SELECT parent_id, count(*) AS n,
                 count(*) FILTER (WHERE status NOT IN ('complete', 'terminated')) AS open
          FROM old_rows WHERE parent_id IS NOT NULL GROUP BY parent_id) d;
    IF parents IS NOT NULL THEN
        PERFORM tasks_count_add(parents, added, opened);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_count_inserted AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_inserted();
CREATE TRIGGER tasks_count_updated AFTER UPDATE ON tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_updated();
CREATE TRIGGER tasks_count_deleted AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tasks_count_deleted();

-- The counts replace the probe this index served.
DROP INDEX tasks_open_children;
