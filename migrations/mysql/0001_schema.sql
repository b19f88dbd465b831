-- tern schema, MySQL/MariaDB dialect. Same tables and columns as migrations/sqlite.
-- Times are milliseconds since the epoch; message ids are 16-byte UUIDv7.
-- Integers are signed BIGINT throughout: one Rust type (i64) for both engines.
-- Column types are chosen for sqlx's Any driver, which reads MySQL TEXT as
-- bytes and BINARY/VARBINARY as (UTF-8) text: strings are VARCHAR, binary
-- ids are read back through HEX(), client_msg_id is VARBINARY (exact bytes,
-- no trailing-space padding).

CREATE TABLE users (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username      VARCHAR(64)  NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    nickname      VARCHAR(255) NOT NULL DEFAULT '',
    avatar_url    VARCHAR(1024) NOT NULL DEFAULT '',
    extra         VARCHAR(4096) NOT NULL,
    status        VARCHAR(16)  NOT NULL DEFAULT 'active',
    created_at    BIGINT       NOT NULL,
    updated_at    BIGINT       NOT NULL,
    UNIQUE KEY users_username (username)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The head of each user's list; its row lock serialises appends per user.
CREATE TABLE user_seqs (
    user_id BIGINT NOT NULL PRIMARY KEY,
    seq     BIGINT NOT NULL DEFAULT 0
) ENGINE = InnoDB;

CREATE TABLE devices (
    id               BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id          BIGINT       NOT NULL,
    platform         VARCHAR(64)  NOT NULL DEFAULT '',
    model            VARCHAR(64)  NOT NULL DEFAULT '',
    os_version       VARCHAR(64)  NOT NULL DEFAULT '',
    app_version      VARCHAR(64)  NOT NULL DEFAULT '',
    token_hash       VARCHAR(64)  NOT NULL DEFAULT '',
    token_expires_at BIGINT       NOT NULL DEFAULT 0,
    ack_seq          BIGINT       NOT NULL DEFAULT 0,
    last_seen_at     BIGINT       NOT NULL DEFAULT 0,
    created_at       BIGINT       NOT NULL,
    KEY devices_user_id (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per direction.
CREATE TABLE friends (
    user_id    BIGINT       NOT NULL,
    friend_id  BIGINT       NOT NULL,
    state      VARCHAR(16)  NOT NULL,
    remark     VARCHAR(255) NOT NULL DEFAULT '',
    created_at BIGINT       NOT NULL,
    updated_at BIGINT       NOT NULL,
    PRIMARY KEY (user_id, friend_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE `groups` (
    id           BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name         VARCHAR(255)  NOT NULL,
    avatar_url   VARCHAR(1024) NOT NULL DEFAULT '',
    introduction VARCHAR(1024) NOT NULL,
    owner_id     BIGINT        NOT NULL,
    member_count BIGINT        NOT NULL DEFAULT 0,
    max_members  BIGINT        NOT NULL,
    muted_all    BIGINT        NOT NULL DEFAULT 0,
    member_invite BIGINT       NOT NULL DEFAULT 0,
    extra        VARCHAR(4096) NOT NULL,
    created_at   BIGINT        NOT NULL,
    updated_at   BIGINT        NOT NULL,
    dismissed_at BIGINT        NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE group_members (
    group_id    BIGINT       NOT NULL,
    user_id     BIGINT       NOT NULL,
    role        VARCHAR(16)  NOT NULL DEFAULT 'member',
    alias       VARCHAR(255) NOT NULL DEFAULT '',
    muted_until BIGINT       NOT NULL DEFAULT 0,
    joined_at   BIGINT       NOT NULL,
    PRIMARY KEY (group_id, user_id),
    KEY group_members_user_id (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Each message once; client_msg_id is NULL when the client sent none.
CREATE TABLE messages (
    id               BINARY(16)  NOT NULL PRIMARY KEY,
    sender_id        BIGINT      NOT NULL,
    sender_device_id BIGINT      NOT NULL,
    conv_type        BIGINT      NOT NULL,
    receiver_id      BIGINT      NOT NULL,
    content_type     BIGINT      NOT NULL,
    content          MEDIUMBLOB  NOT NULL,
    mentions         VARCHAR(4096) NOT NULL,
    client_msg_id    VARBINARY(64) NULL,
    status           BIGINT      NOT NULL DEFAULT 0,
    created_at       BIGINT      NOT NULL,
    UNIQUE KEY messages_client_msg_id (sender_id, client_msg_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The per-user lists: seq is contiguous per user.
CREATE TABLE user_messages (
    user_id    BIGINT     NOT NULL,
    seq        BIGINT     NOT NULL,
    message_id BINARY(16) NOT NULL,
    conv_type  BIGINT     NOT NULL,
    conv_id    BIGINT     NOT NULL,
    PRIMARY KEY (user_id, seq),
    KEY user_messages_message_id (message_id)
) ENGINE = InnoDB;
