-- The table of postgres-upsert.yaml: one row per customer, kept in step with customers.v1.
-- id takes the Kafka record key (it is a key column that the mapping leaves out); the primary
-- key is the unique constraint the upsert's ON CONFLICT needs.
CREATE TABLE customers (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    tier          text,
    doc           jsonb NOT NULL,      -- the whole record, as produced
    source_offset bigint NOT NULL,     -- the Kafka offset of the record this row holds
    updated_at    timestamptz          -- the record's Kafka timestamp
);
-- sluice creates its positions table (sluice_offsets) beside it on first start, given CREATE
-- on the schema; the role needs INSERT, UPDATE, DELETE and SELECT on customers.
