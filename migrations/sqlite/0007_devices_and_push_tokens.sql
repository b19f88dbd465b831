-- Token refresh (docs/protocol.md "Account and devices"): when a device's
-- token is replaced, the one before it keeps working until the new one is
-- first used or it expires, so a refresh whose reply was lost does not sign
-- the device out.
ALTER TABLE devices ADD COLUMN prev_token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN prev_token_expires_at BIGINT NOT NULL DEFAULT 0;

-- At most one push token per device. token_digest (SHA-256 hex of the
-- provider and the token) is unique: a token registered by a new device or
-- user leaves the device that had it.
CREATE TABLE push_tokens (
    device_id    BIGINT PRIMARY KEY,
    user_id      BIGINT NOT NULL,
    provider     BIGINT NOT NULL,
    token        TEXT   NOT NULL,
    token_digest CHAR(64) NOT NULL UNIQUE,
    apns_topic   TEXT   NOT NULL DEFAULT '',
    apns_sandbox BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX push_tokens_user_id ON push_tokens (user_id);
