//! Users and their list heads.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{id, state, Result, Store, StoreError};
use crate::domain::{Stored, UserStatus};

/// A user account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub username: String,
    pub password_hash: String,
    pub nickname: String,
    pub avatar_url: String,
    pub status: UserStatus,
    pub created_at: i64,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.status == UserStatus::Active
    }

    fn from_row(row: &AnyRow) -> Result<User> {
        Ok(User {
            id: id(row, "id")?,
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
            nickname: row.try_get("nickname")?,
            avatar_url: row.try_get("avatar_url")?,
            status: state(row, "status")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// What registration stores.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub nickname: &'a str,
    pub now_ms: i64,
}

const USER_COLUMNS: &str = "id, username, password_hash, nickname, avatar_url, status, created_at";

impl Store {
    /// Creates a user and its empty list (seq 0) in one transaction.
    /// A taken username is [`StoreError::Conflict`].
    pub async fn create_user(&self, u: NewUser<'_>) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO users (username, password_hash, nickname, avatar_url, extra, status, created_at, updated_at) \
             VALUES (?, ?, ?, '', '{{}}', ?, ?, ?){}",
            self.dialect().returning_id()
        );
        let insert = sqlx::query(&sql)
            .bind(u.username)
            .bind(u.password_hash)
            .bind(u.nickname)
            .bind(UserStatus::Active.as_str())
            .bind(u.now_ms)
            .bind(u.now_ms);
        let user_id = self.dialect().insert_id(&mut tx, insert).await?;
        sqlx::query("INSERT INTO user_seqs (user_id, seq) VALUES (?, 0)")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        self.commit(tx).await?;
        Ok(user_id as u64)
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?");
        let row = sqlx::query(&sql)
            .bind(username)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    pub async fn user_by_id(&self, user_id: u64) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(user_id as i64)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// The head of a user's list (0 when empty).
    pub async fn max_seq(&self, user_id: u64) -> Result<u64> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM user_seqs WHERE user_id = ?")
            .bind(user_id as i64)
            .fetch_optional(self.pool())
            .await?;
        seq.map(|s| s as u64).ok_or(StoreError::NotFound)
    }
}

impl Store {
    /// Changes the caller's profile; `None` keeps a field.
    pub async fn update_profile(
        &self,
        user_id: u64,
        nickname: Option<&str>,
        avatar_url: Option<&str>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET nickname = COALESCE(?, nickname), avatar_url = COALESCE(?, avatar_url), updated_at = ? WHERE id = ?",
        )
        .bind(nickname)
        .bind(avatar_url)
        .bind(now)
        .bind(user_id as i64)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The users among `ids` that exist, ascending by id.
    pub async fn users_by_ids(&self, ids: &[u64]) -> Result<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = sqlx::QueryBuilder::<sqlx::Any>::new(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id IN ("
        ));
        let mut sep = q.separated(", ");
        for id in ids {
            sep.push_bind(*id as i64);
        }
        q.push(") ORDER BY id");
        let rows = q.build().fetch_all(self.pool()).await?;
        rows.iter().map(User::from_row).collect()
    }

    /// Usernames starting with `prefix` and after `after`, ascending. A range
    /// on the unique index, so no LIKE escaping and no scan.
    pub async fn search_users(&self, prefix: &str, after: &str, limit: u32) -> Result<Vec<User>> {
        let start = if after > prefix { after } else { prefix };
        // Usernames are ASCII: every name with the prefix sorts below prefix + '\x7f'.
        let end = format!("{prefix}\u{7f}");
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username > ? AND username < ? AND status <> ? ORDER BY username LIMIT ?");
        let mut rows = sqlx::query(&sql)
            .bind(start)
            .bind(&end)
            .bind(UserStatus::Deleted.as_str())
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?;
        // `username > start` skips an exact match when paging starts before it.
        if after < prefix {
            let exact = self.user_by_username(prefix).await?;
            let mut out: Vec<User> = exact.into_iter().collect();
            out.extend(
                rows.iter()
                    .map(User::from_row)
                    .collect::<Result<Vec<_>>>()?,
            );
            out.truncate(limit as usize);
            return Ok(out);
        }
        rows.truncate(limit as usize);
        rows.iter().map(User::from_row).collect()
    }
}
