-- A block now ends the relation on both sides. Before, the blocked user's
-- own row stayed (ACCEPTED, PENDING or REQUESTED); it grants nothing now,
-- but FRIEND_LIST would still show it. Remove those rows.
DELETE FROM friends
WHERE state <> 'blocked'
  AND EXISTS (
    SELECT 1 FROM friends AS r
    WHERE r.user_id = friends.friend_id
      AND r.friend_id = friends.user_id
      AND r.state = 'blocked'
  );
