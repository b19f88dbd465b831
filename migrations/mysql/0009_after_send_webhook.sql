-- The after-send webhook (docs/protocol.md "Webhooks"): every message and
-- event stored while it is configured, in the transaction that stores it.
-- Sent in id order by one node at a time (the lease in webhook_state) and
-- deleted once the webhook answered 2xx.
CREATE TABLE webhook_outbox (
    id         BIGINT     NOT NULL AUTO_INCREMENT PRIMARY KEY,
    message_id BINARY(16) NOT NULL,
    created_at BIGINT     NOT NULL,
    KEY webhook_outbox_created_at (created_at)
) ENGINE = InnoDB;

-- One row: the sending node's lease, the retry state, and the signing
-- secret once rotated through the admin API (until then the flag's).
CREATE TABLE webhook_state (
    id              BIGINT        NOT NULL PRIMARY KEY,
    holder          VARCHAR(128)  NOT NULL DEFAULT '',
    held_until      BIGINT        NOT NULL DEFAULT 0,
    attempts        BIGINT        NOT NULL DEFAULT 0,
    next_attempt_at BIGINT        NOT NULL DEFAULT 0,
    last_error      VARCHAR(512)  NOT NULL DEFAULT '',
    last_success_at BIGINT        NOT NULL DEFAULT 0,
    secret          VARCHAR(256)  NOT NULL DEFAULT '',
    prev_secret     VARCHAR(256)  NOT NULL DEFAULT '',
    prev_until      BIGINT        NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
INSERT INTO webhook_state (id) VALUES (1);
