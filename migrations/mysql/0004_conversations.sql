-- The conversation index (DESIGN.md "Derived state"): per user and
-- conversation, kept in the transaction that appends the user's list rows.
-- last_seq orders the listing and starts a conversation's history;
-- change_seq is the seq of the newest list entry reflected here, so a
-- client applies a synced entry to its copy only when it is newer.
CREATE TABLE conversations (
    user_id    BIGINT NOT NULL,
    conv_type  BIGINT NOT NULL,
    conv_id    BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL,
    change_seq BIGINT NOT NULL,
    unread     BIGINT NOT NULL DEFAULT 0,
    mentions   BIGINT NOT NULL DEFAULT 0,
    read_seq   BIGINT NOT NULL DEFAULT 0,
    pinned     BIGINT NOT NULL DEFAULT 0,
    muted      BIGINT NOT NULL DEFAULT 0,
    hidden     BIGINT NOT NULL DEFAULT 0,
    -- USER conversations: how far the other party has read this list (a seq of it).
    peer_read_seq BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, conv_type, conv_id)
) ENGINE = InnoDB;

-- Each list row links to the previous row of the same conversation in the
-- same list (0: none), so one conversation's history is a walk of primary
-- key lookups from its last_seq: no second index on every list row.
ALTER TABLE user_messages ADD COLUMN prev_seq BIGINT NOT NULL DEFAULT 0;

-- 1: deleted for the list's owner alone (DELETE_FOR_ME, CLEAR_CONVERSATION).
-- The row keeps its seq, so lists stay without gaps; SYNC returns it
-- emptied, history and the counts skip it.
ALTER TABLE user_messages ADD COLUMN deleted BIGINT NOT NULL DEFAULT 0;
