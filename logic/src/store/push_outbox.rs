//! The push outbox: per user a cursor over its list (how far it has been
//! planned), and the notifications planned and not yet answered for. See
//! `crate::push` for who writes and who sends.

use sqlx::any::AnyRow;
use sqlx::{QueryBuilder, Row};

use super::messages::push_ids;
use super::{id, PushToken, Result, Store};
use crate::domain::PushProvider;

/// Ids per DELETE of answered rows.
const DONE_CHUNK: usize = 1000;

/// Outbox `kind`s.
pub const ALERT: i64 = 1;
pub const WITHDRAW: i64 = 2;

/// A notification to send: one row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub user_id: u64,
    pub device_id: u64,
    /// The message's id as a UUID string.
    pub message_id: String,
    /// 1: an alert; 2: a withdrawal (a recall).
    pub kind: i64,
    pub title: String,
    pub body: String,
    pub badge: u64,
    pub conv_type: i32,
    pub conv_id: u64,
    pub seq: u64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A claimed row, with the device's push token as it is now (`None`:
/// the device has none any more).
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: u64,
    pub row: OutboxRow,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// The claim: the row's `next_attempt_at` while this sender owns it.
    /// Answering for the row checks it, so a sender whose lease ran out
    /// (another took the row) changes nothing.
    pub lease_until: i64,
    pub token: Option<PushToken>,
}

impl Claimed {
    fn from_row(r: &AnyRow) -> Result<Claimed> {
        let row = OutboxRow {
            user_id: id(r, "user_id")?,
            device_id: id(r, "device_id")?,
            message_id: r.try_get("message_id")?,
            kind: r.try_get("kind")?,
            title: r.try_get("title")?,
            body: r.try_get("body")?,
            badge: id(r, "badge")?,
            conv_type: r.try_get::<i64, _>("conv_type")? as i32,
            conv_id: id(r, "conv_id")?,
            seq: id(r, "seq")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
        };
        let provider: Option<i64> = r.try_get("provider")?;
        let token = match provider.and_then(PushProvider::from_stored) {
            Some(provider) => Some(PushToken {
                device_id: row.device_id,
                user_id: row.user_id,
                provider,
                token: r.try_get("token")?,
                apns_topic: r.try_get("apns_topic")?,
                apns_sandbox: r.try_get::<i64, _>("apns_sandbox")? != 0,
                updated_at: r.try_get("token_updated_at")?,
            }),
            None => None,
        };
        Ok(Claimed {
            id: id(r, "id")?,
            lease_until: r.try_get("next_attempt_at")?,
            attempts: r
                .try_get::<i64, _>("attempts")?
                .clamp(0, i64::from(u32::MAX)) as u32,
            row,
            token,
        })
    }
}

impl Store {
    /// Of `users`, those that have a push cursor (a push token now or
    /// once): the only ones whose entries can notify.
    pub async fn push_cursor_users(&self, users: &[u64]) -> Result<Vec<u64>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = QueryBuilder::new("SELECT user_id FROM push_cursors WHERE user_id IN (");
        push_ids(&mut q, users.iter().copied());
        q.push(")");
        let rows = q.build().fetch_all(self.pool()).await?;
        rows.iter().map(|r| id(r, "user_id")).collect()
    }

    /// Of the next `scan` push cursors after user `after`'s, in user
    /// order, the users whose list has grown past theirs; and the user to
    /// continue after, `None` once the last cursor was read. A sweep reads
    /// every cursor this way, a bounded page per query, and no lagging
    /// user can keep another from being found.
    pub async fn push_lagging(&self, after: u64, scan: u32) -> Result<(Vec<u64>, Option<u64>)> {
        let rows = sqlx::query(
            "SELECT c.user_id AS user_id, c.pushed_seq AS pushed_seq, \
             COALESCE(s.seq, 0) AS head FROM push_cursors c \
             LEFT JOIN user_seqs s ON s.user_id = c.user_id \
             WHERE c.user_id > ? ORDER BY c.user_id LIMIT ?",
        )
        .bind(after as i64)
        .bind(i64::from(scan))
        .fetch_all(self.pool())
        .await?;
        let mut lagging = Vec::new();
        for r in &rows {
            if id(r, "head")? > id(r, "pushed_seq")? {
                lagging.push(id(r, "user_id")?);
            }
        }
        let next = match rows.last() {
            Some(last) if rows.len() as u64 == u64::from(scan) => Some(id(last, "user_id")?),
            _ => None,
        };
        Ok((lagging, next))
    }

    /// A user's push cursor and the head of its list; `None` without a cursor.
    pub async fn push_cursor(&self, user_id: u64) -> Result<Option<(u64, u64)>> {
        let row = sqlx::query(
            "SELECT c.pushed_seq, COALESCE(s.seq, 0) AS head FROM push_cursors c \
             LEFT JOIN user_seqs s ON s.user_id = c.user_id WHERE c.user_id = ?",
        )
        .bind(user_id as i64)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((id(&r, "pushed_seq")?, id(&r, "head")?)))
            .transpose()
    }

    /// The user's devices that have a push token.
    pub async fn push_tokens_of(&self, user_id: u64) -> Result<Vec<PushToken>> {
        let rows = sqlx::query(
            "SELECT device_id, user_id, provider, token, apns_topic, apns_sandbox, updated_at \
             FROM push_tokens WHERE user_id = ? ORDER BY device_id",
        )
        .bind(user_id as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(PushToken::from_row).collect()
    }

    /// Writes `rows` (a row already there for its device, message and
    /// kind is skipped) and moves the user's cursor from `from` to `to`,
    /// in one transaction. False, writing nothing, when the cursor is no
    /// longer at `from` (another node planned these entries meanwhile).
    pub async fn plan_push(
        &self,
        user_id: u64,
        from: u64,
        to: u64,
        rows: &[OutboxRow],
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE push_cursors SET pushed_seq = ? WHERE user_id = ? AND pushed_seq = ?",
        )
        .bind(to as i64)
        .bind(user_id as i64)
        .bind(from as i64)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        // A withdrawal takes the place of its message's alert still waiting
        // for the device, so the alert never lands after it; when that
        // alert was never tried, the device showed nothing: nothing to
        // withdraw.
        let mut kept = Vec::with_capacity(rows.len());
        for r in rows {
            if r.kind != WITHDRAW {
                kept.push(r);
                continue;
            }
            let pending = sqlx::query(
                "SELECT attempts FROM push_outbox WHERE device_id = ? AND message_id = ? AND kind = ?",
            )
            .bind(r.device_id as i64)
            .bind(&r.message_id)
            .bind(ALERT)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(p) = pending {
                sqlx::query(
                    "DELETE FROM push_outbox WHERE device_id = ? AND message_id = ? AND kind = ?",
                )
                .bind(r.device_id as i64)
                .bind(&r.message_id)
                .bind(ALERT)
                .execute(&mut *tx)
                .await?;
                if p.try_get::<i64, _>("attempts")? == 0 {
                    continue;
                }
            }
            kept.push(r);
        }
        for chunk in kept.chunks(100) {
            let mut q = QueryBuilder::new(format!(
                "{} INTO push_outbox (user_id, device_id, message_id, kind, title, body, badge, \
                 conv_type, conv_id, seq, attempts, next_attempt_at, created_at, expires_at) ",
                self.dialect().insert_ignore()
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.user_id as i64)
                    .push_bind(r.device_id as i64)
                    .push_bind(r.message_id.clone())
                    .push_bind(r.kind)
                    .push_bind(r.title.clone())
                    .push_bind(r.body.clone())
                    .push_bind(r.badge.min(i64::MAX as u64) as i64)
                    .push_bind(i64::from(r.conv_type))
                    .push_bind(r.conv_id as i64)
                    .push_bind(r.seq as i64)
                    .push_bind(0i64)
                    .push_bind(r.created_at)
                    .push_bind(r.created_at)
                    .push_bind(r.expires_at);
            });
            q.build().execute(&mut *tx).await?;
        }
        self.commit_messages(tx).await?;
        Ok(true)
    }

    /// Claims up to `limit` rows due at `now` until `lease_until` (another
    /// sender takes them after that if this one has not answered for
    /// them), and returns them with their devices' current push tokens.
    pub async fn claim_push(&self, now: i64, lease_until: i64, limit: u32) -> Result<Vec<Claimed>> {
        // Idle most of the time: look before taking the write lock.
        let due = sqlx::query("SELECT id FROM push_outbox WHERE next_attempt_at <= ? LIMIT 1")
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT id FROM push_outbox WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?{}",
            self.dialect().skip_locked()
        );
        let ids: Vec<u64> = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| id(r, "id"))
            .collect::<Result<_>>()?;
        if ids.is_empty() {
            self.commit_messages(tx).await?;
            return Ok(Vec::new());
        }
        let mut claim = QueryBuilder::new("UPDATE push_outbox SET next_attempt_at = ");
        claim.push_bind(lease_until);
        claim.push(", attempts = attempts + 1 WHERE id IN (");
        push_ids(&mut claim, ids.iter().copied());
        claim.push(")");
        claim.build().execute(&mut *tx).await?;
        self.commit_messages(tx).await?;
        let mut read = QueryBuilder::new(
            "SELECT o.id, o.user_id, o.device_id, o.message_id, o.kind, o.title, o.body, o.badge, \
             o.conv_type, o.conv_id, o.seq, o.attempts, o.next_attempt_at, o.created_at, o.expires_at, \
             t.provider, \
             t.token, t.apns_topic, t.apns_sandbox, t.updated_at AS token_updated_at \
             FROM push_outbox o LEFT JOIN push_tokens t ON t.device_id = o.device_id \
             WHERE o.id IN (",
        );
        push_ids(&mut read, ids.iter().copied());
        read.push(") ORDER BY o.id");
        let rows = read.build().fetch_all(self.pool()).await?;
        rows.iter().map(Claimed::from_row).collect()
    }

    /// Removes answered rows of one claim, those it still holds: one
    /// statement (one commit, one fsync on SQLite) for a whole claim.
    pub async fn push_done(&self, ids: &[u64], lease_until: i64) -> Result<()> {
        for chunk in ids.chunks(DONE_CHUNK) {
            let mut q = QueryBuilder::new("DELETE FROM push_outbox WHERE next_attempt_at = ");
            q.push_bind(lease_until);
            q.push(" AND id IN (");
            push_ids(&mut q, chunk.iter().copied());
            q.push(")");
            q.build().execute(self.pool()).await?;
        }
        Ok(())
    }

    /// Sends a row again at `at`, if this claim still holds it.
    pub async fn push_retry_at(&self, id: u64, lease_until: i64, at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE push_outbox SET next_attempt_at = ? WHERE id = ? AND next_attempt_at = ?",
        )
        .bind(at)
        .bind(id as i64)
        .bind(lease_until)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a device's push token that its provider no longer accepts,
    /// unless the device has registered another one since.
    pub async fn push_token_rejected(&self, device_id: u64, token: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM push_tokens WHERE device_id = ? AND token = ?")
            .bind(device_id as i64)
            .bind(token)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Rows waiting in the outbox.
    pub async fn push_outbox_depth(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM push_outbox")
            .fetch_one(self.pool())
            .await?;
        Ok(n.max(0) as u64)
    }
}
