-- Apart from 0004 so that a backfill that fails (a lock wait, a killed
-- node) runs again on the next start: MySQL commits 0004's DDL at once.
-- Both statements can run twice.
-- Lists written before the index: link their rows, and index each
-- conversation as read up to its newest entry.
UPDATE user_messages AS um
JOIN (
    SELECT user_id, seq,
           COALESCE(LAG(seq) OVER (PARTITION BY user_id, conv_type, conv_id ORDER BY seq), 0) AS prev
    FROM user_messages
) AS w ON w.user_id = um.user_id AND w.seq = um.seq
SET um.prev_seq = w.prev
WHERE w.prev <> 0;

INSERT IGNORE INTO conversations (user_id, conv_type, conv_id, last_seq, change_seq, read_seq)
SELECT user_id, conv_type, conv_id, MAX(seq), MAX(seq), MAX(seq)
FROM user_messages
GROUP BY user_id, conv_type, conv_id;
