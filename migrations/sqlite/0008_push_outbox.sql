-- Offline push (docs/protocol.md "Push notifications"). For each user with
-- a push token: how far its list has been looked at for notifications.
-- The list is the outbox's source: after a crash, whatever lies beyond
-- pushed_seq is planned again, so nothing is lost and the send path writes
-- nothing more.
CREATE TABLE push_cursors (
    user_id    BIGINT PRIMARY KEY,
    pushed_seq BIGINT NOT NULL
);

-- Notifications to send, one per (device, message, kind), written in the
-- transaction that advances the user's cursor past the entry. A sender
-- claims due rows by pushing next_attempt_at a lease ahead, and deletes
-- a row once the provider has answered for good.
CREATE TABLE push_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         BIGINT NOT NULL,
    device_id       BIGINT NOT NULL,
    message_id      TEXT   NOT NULL,
    kind            BIGINT NOT NULL,
    title           TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    badge           BIGINT NOT NULL,
    conv_type       BIGINT NOT NULL,
    conv_id         BIGINT NOT NULL,
    seq             BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    UNIQUE (device_id, message_id, kind)
);
CREATE INDEX push_outbox_due ON push_outbox (next_attempt_at);
