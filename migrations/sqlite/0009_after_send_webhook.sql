-- The after-send webhook (docs/protocol.md "Webhooks"): every message and
-- event stored while it is configured, in the transaction that stores it.
-- Sent in id order by one node at a time (the lease in webhook_state) and
-- deleted once the webhook answered 2xx.
CREATE TABLE webhook_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id BLOB   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX webhook_outbox_created_at ON webhook_outbox (created_at);

-- One row: the sending node's lease, the retry state, and the signing
-- secret once rotated through the admin API (until then the flag's).
CREATE TABLE webhook_state (
    id              BIGINT PRIMARY KEY,
    holder          TEXT   NOT NULL DEFAULT '',
    held_until      BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT   NOT NULL DEFAULT '',
    last_success_at BIGINT NOT NULL DEFAULT 0,
    secret          TEXT   NOT NULL DEFAULT '',
    prev_secret     TEXT   NOT NULL DEFAULT '',
    prev_until      BIGINT NOT NULL DEFAULT 0
);
INSERT INTO webhook_state (id) VALUES (1);
