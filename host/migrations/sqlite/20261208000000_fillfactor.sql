-- PostgreSQL sets fillfactor on the tables updated in place here; SQLite has
-- no such setting. Kept so both backends list the same migrations.
SELECT 1;
