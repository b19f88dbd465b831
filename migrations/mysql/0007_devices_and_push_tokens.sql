-- Token refresh (docs/protocol.md "Account and devices"): when a device's
-- token is replaced, the one before it keeps working until the new one is
-- first used or it expires, so a refresh whose reply was lost does not sign
-- the device out.
ALTER TABLE devices
    ADD COLUMN prev_token_hash VARCHAR(64) NOT NULL DEFAULT '',
    ADD COLUMN prev_token_expires_at BIGINT NOT NULL DEFAULT 0;

-- At most one push token per device. token_digest (SHA-256 hex of the
-- provider and the token) is unique: a token registered by a new device or
-- user leaves the device that had it.
CREATE TABLE push_tokens (
    device_id    BIGINT        NOT NULL PRIMARY KEY,
    user_id      BIGINT        NOT NULL,
    provider     BIGINT        NOT NULL,
    token        VARCHAR(4096) NOT NULL,
    token_digest CHAR(64)      NOT NULL,
    apns_topic   VARCHAR(255)  NOT NULL DEFAULT '',
    apns_sandbox BIGINT        NOT NULL DEFAULT 0,
    updated_at   BIGINT        NOT NULL,
    UNIQUE KEY push_tokens_digest (token_digest),
    KEY push_tokens_user_id (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
