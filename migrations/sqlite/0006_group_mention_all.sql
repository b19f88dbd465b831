-- Whether plain members may mention everyone (@all, mention id 0) in the
-- group; owners and admins always may.
ALTER TABLE `groups` ADD COLUMN member_mention_all BIGINT NOT NULL DEFAULT 0;
