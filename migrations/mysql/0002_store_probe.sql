-- One row that /readyz and the start-up check rewrite to learn whether the
-- database can take a write now (a full disk, a read-only server).
CREATE TABLE store_probe (
    id      BIGINT NOT NULL PRIMARY KEY,
    written BIGINT NOT NULL
) ENGINE = InnoDB;
INSERT INTO store_probe (id, written) VALUES (1, 0);
