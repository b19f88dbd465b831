-- tern schema, SQLite dialect. Same tables and columns as migrations/mysql.
-- Times are milliseconds since the epoch; message ids are 16-byte UUIDv7.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    nickname      TEXT    NOT NULL DEFAULT '',
    avatar_url    TEXT    NOT NULL DEFAULT '',
    extra         TEXT    NOT NULL DEFAULT '{}',
    status        TEXT    NOT NULL DEFAULT 'active',
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- The head of each user's list; its row lock serialises appends per user.
CREATE TABLE user_seqs (
    user_id BIGINT PRIMARY KEY,
    seq     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE devices (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          BIGINT NOT NULL,
    platform         TEXT   NOT NULL DEFAULT '',
    model            TEXT   NOT NULL DEFAULT '',
    os_version       TEXT   NOT NULL DEFAULT '',
    app_version      TEXT   NOT NULL DEFAULT '',
    token_hash       TEXT   NOT NULL DEFAULT '',
    token_expires_at BIGINT NOT NULL DEFAULT 0,
    ack_seq          BIGINT NOT NULL DEFAULT 0,
    last_seen_at     BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL
);
CREATE INDEX devices_user_id ON devices (user_id);

-- One row per direction.
CREATE TABLE friends (
    user_id    BIGINT NOT NULL,
    friend_id  BIGINT NOT NULL,
    state      TEXT   NOT NULL,
    remark     TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);

CREATE TABLE `groups` (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    avatar_url   TEXT    NOT NULL DEFAULT '',
    introduction TEXT    NOT NULL DEFAULT '',
    owner_id     BIGINT  NOT NULL,
    member_count BIGINT  NOT NULL DEFAULT 0,
    max_members  BIGINT  NOT NULL,
    muted_all    BIGINT  NOT NULL DEFAULT 0,
    member_invite BIGINT NOT NULL DEFAULT 0,
    extra        TEXT    NOT NULL DEFAULT '{}',
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    dismissed_at BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE group_members (
    group_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    role        TEXT   NOT NULL DEFAULT 'member',
    alias       TEXT   NOT NULL DEFAULT '',
    muted_until BIGINT NOT NULL DEFAULT 0,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_id ON group_members (user_id);

-- Each message once; client_msg_id is NULL when the client sent none.
CREATE TABLE messages (
    id               BLOB   PRIMARY KEY,
    sender_id        BIGINT NOT NULL,
    sender_device_id BIGINT NOT NULL,
    conv_type        BIGINT NOT NULL,
    receiver_id      BIGINT NOT NULL,
    content_type     BIGINT NOT NULL,
    content          BLOB   NOT NULL,
    mentions         TEXT   NOT NULL DEFAULT '',
    client_msg_id    TEXT,
    status           BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    UNIQUE (sender_id, client_msg_id)
);

-- The per-user lists: seq is contiguous per user.
CREATE TABLE user_messages (
    user_id    BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    message_id BLOB   NOT NULL,
    conv_type  BIGINT NOT NULL,
    conv_id    BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX user_messages_message_id ON user_messages (message_id);
