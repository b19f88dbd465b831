-- A block now ends the relation on both sides. Before, the blocked user's
-- own row stayed (ACCEPTED, PENDING or REQUESTED); it grants nothing now,
-- but FRIEND_LIST would still show it. Remove those rows.
DELETE f FROM friends AS f
JOIN friends AS r ON r.user_id = f.friend_id AND r.friend_id = f.user_id
WHERE r.state = 'blocked' AND f.state <> 'blocked';
