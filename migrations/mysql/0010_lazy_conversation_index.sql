-- The conversation index may lag its list by a few entries (DESIGN.md
-- "Derived state"; logic/src/store/unindexed.rs): `unindexed` counts
-- the newest entries of the user's list that the user's conversation rows
-- do not reflect yet. Whoever takes the list head next folds them in
-- first; readers of the index fold them before they read. 0 (every row
-- exact) is what every existing list is.
ALTER TABLE user_seqs ADD COLUMN unindexed BIGINT NOT NULL DEFAULT 0;
