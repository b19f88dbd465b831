-- A row per running logic node, rewritten by /readyz (and written once at
-- start) to learn whether the database takes a write now: a full disk or a
-- read-only server pass every read. Each node writes only its own row, so
-- no node ever waits for another's lock; rows of nodes gone for a week are
-- removed at start.
CREATE TABLE store_probe (
    id         BIGINT NOT NULL PRIMARY KEY,
    written_at BIGINT NOT NULL
) ENGINE = InnoDB;
