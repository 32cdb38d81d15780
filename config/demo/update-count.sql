-- The demo's addition to config/examples/postgres-upsert.sql: counts the updates of each row,
-- so the demo can show that a changed record updated its row in place exactly once.
ALTER TABLE customers ADD COLUMN updates integer NOT NULL DEFAULT 0;
CREATE FUNCTION customers_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updates := OLD.updates + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER customers_count_update BEFORE UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION customers_count_update();
