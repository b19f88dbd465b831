//! Groups and their members. Every membership change first touches the
//! group row (`lock_group`), which serialises changes of one group: the
//! member count and the size limit cannot race.

use sqlx::any::AnyRow;
use sqlx::{Any, QueryBuilder, Row};

use super::{id, state, Result, Store, Tx};
use crate::domain::{Role, Stored};

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: u64,
    pub name: String,
    pub avatar_url: String,
    pub introduction: String,
    pub owner_id: u64,
    pub member_count: u32,
    pub max_members: u32,
    pub muted_all: bool,
    pub member_invite: bool,
    /// Plain members may mention everyone (@all).
    pub member_mention_all: bool,
    pub created_at: i64,
    pub dismissed_at: i64,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub user_id: u64,
    pub role: Role,
    pub alias: String,
    pub muted_until: i64,
    pub joined_at: i64,
}

/// What creating a group stores.
#[derive(Debug, Clone)]
pub struct NewGroup<'a> {
    pub name: &'a str,
    pub avatar_url: &'a str,
    pub introduction: &'a str,
    pub owner_id: u64,
    pub max_members: u32,
    pub member_invite: bool,
    pub now: i64,
}

/// Changed group settings; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct GroupChanges {
    pub name: Option<String>,
    pub avatar_url: Option<String>,
    pub introduction: Option<String>,
    pub member_invite: Option<bool>,
    pub member_mention_all: Option<bool>,
    pub muted_all: Option<bool>,
}

const GROUP_COLUMNS: &str =
    "id, name, avatar_url, introduction, owner_id, member_count, max_members, \
     muted_all, member_invite, member_mention_all, created_at, dismissed_at";

fn group_row(r: &AnyRow) -> Result<GroupRow> {
    Ok(GroupRow {
        id: id(r, "id")?,
        name: r.try_get("name")?,
        avatar_url: r.try_get("avatar_url")?,
        introduction: r.try_get("introduction")?,
        owner_id: id(r, "owner_id")?,
        member_count: r.try_get::<i64, _>("member_count")? as u32,
        max_members: r.try_get::<i64, _>("max_members")? as u32,
        muted_all: r.try_get::<i64, _>("muted_all")? != 0,
        member_invite: r.try_get::<i64, _>("member_invite")? != 0,
        member_mention_all: r.try_get::<i64, _>("member_mention_all")? != 0,
        created_at: r.try_get("created_at")?,
        dismissed_at: r.try_get("dismissed_at")?,
    })
}

fn member_row(r: &AnyRow) -> Result<MemberRow> {
    Ok(MemberRow {
        user_id: id(r, "user_id")?,
        role: state(r, "role")?,
        alias: r.try_get("alias")?,
        muted_until: r.try_get("muted_until")?,
        joined_at: r.try_get("joined_at")?,
    })
}

impl Store {
    pub async fn create_group(&self, tx: &mut Tx, g: NewGroup<'_>) -> Result<u64> {
        let sql = format!(
            "INSERT INTO `groups` (name, avatar_url, introduction, owner_id, member_count, max_members, \
             muted_all, member_invite, extra, created_at, updated_at, dismissed_at) \
             VALUES (?, ?, ?, ?, 0, ?, 0, ?, '{{}}', ?, ?, 0){}",
            self.dialect().returning_id()
        );
        let insert = sqlx::query(&sql)
            .bind(g.name)
            .bind(g.avatar_url)
            .bind(g.introduction)
            .bind(g.owner_id as i64)
            .bind(g.max_members as i64)
            .bind(g.member_invite as i64)
            .bind(g.now)
            .bind(g.now);
        Ok(self.dialect().insert_id(tx, insert).await? as u64)
    }

    /// Locks the group row for a membership or settings change and reads it.
    pub async fn lock_group(
        &self,
        tx: &mut Tx,
        group_id: u64,
        now: i64,
    ) -> Result<Option<GroupRow>> {
        sqlx::query("UPDATE `groups` SET updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(group_id as i64)
            .execute(&mut **tx)
            .await?;
        let sql = format!("SELECT {GROUP_COLUMNS} FROM `groups` WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(group_id as i64)
            .fetch_optional(&mut **tx)
            .await?;
        row.as_ref().map(group_row).transpose()
    }

    pub async fn group(&self, group_id: u64) -> Result<Option<GroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM `groups` WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(group_id as i64)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(group_row).transpose()
    }

    pub async fn update_group(&self, tx: &mut Tx, group_id: u64, c: &GroupChanges) -> Result<()> {
        let mut q = QueryBuilder::<Any>::new("UPDATE `groups` SET id = id");
        if let Some(v) = &c.name {
            q.push(", name = ").push_bind(v.clone());
        }
        if let Some(v) = &c.avatar_url {
            q.push(", avatar_url = ").push_bind(v.clone());
        }
        if let Some(v) = &c.introduction {
            q.push(", introduction = ").push_bind(v.clone());
        }
        if let Some(v) = c.member_invite {
            q.push(", member_invite = ").push_bind(v as i64);
        }
        if let Some(v) = c.member_mention_all {
            q.push(", member_mention_all = ").push_bind(v as i64);
        }
        if let Some(v) = c.muted_all {
            q.push(", muted_all = ").push_bind(v as i64);
        }
        q.push(" WHERE id = ").push_bind(group_id as i64);
        q.build().execute(&mut **tx).await?;
        Ok(())
    }

    /// Adds members (user id, role) and raises the member count.
    pub async fn add_members(
        &self,
        tx: &mut Tx,
        group_id: u64,
        members: &[(u64, Role)],
        now: i64,
    ) -> Result<()> {
        for chunk in members.chunks(200) {
            let mut q = QueryBuilder::<Any>::new(
                "INSERT INTO group_members (group_id, user_id, role, alias, muted_until, joined_at) ",
            );
            q.push_values(chunk, |mut b, (user, role)| {
                b.push_bind(group_id as i64)
                    .push_bind(*user as i64)
                    .push_bind(role.as_str())
                    .push_bind("")
                    .push_bind(0i64)
                    .push_bind(now);
            });
            q.build().execute(&mut **tx).await?;
        }
        self.adjust_count(tx, group_id, members.len() as i64).await
    }

    pub async fn remove_members(&self, tx: &mut Tx, group_id: u64, users: &[u64]) -> Result<()> {
        for chunk in users.chunks(200) {
            let mut q = QueryBuilder::<Any>::new("DELETE FROM group_members WHERE group_id = ");
            q.push_bind(group_id as i64).push(" AND user_id IN (");
            let mut sep = q.separated(", ");
            for u in chunk {
                sep.push_bind(*u as i64);
            }
            q.push(")");
            q.build().execute(&mut **tx).await?;
        }
        self.adjust_count(tx, group_id, -(users.len() as i64)).await
    }

    async fn adjust_count(&self, tx: &mut Tx, group_id: u64, delta: i64) -> Result<()> {
        sqlx::query("UPDATE `groups` SET member_count = member_count + ? WHERE id = ?")
            .bind(delta)
            .bind(group_id as i64)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn set_owner(&self, tx: &mut Tx, group_id: u64, owner: u64) -> Result<()> {
        sqlx::query("UPDATE `groups` SET owner_id = ? WHERE id = ?")
            .bind(owner as i64)
            .bind(group_id as i64)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn set_role(&self, tx: &mut Tx, group_id: u64, user: u64, role: Role) -> Result<()> {
        sqlx::query("UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?")
            .bind(role.as_str())
            .bind(group_id as i64)
            .bind(user as i64)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn set_muted_until(
        &self,
        tx: &mut Tx,
        group_id: u64,
        user: u64,
        until: i64,
    ) -> Result<()> {
        sqlx::query("UPDATE group_members SET muted_until = ? WHERE group_id = ? AND user_id = ?")
            .bind(until)
            .bind(group_id as i64)
            .bind(user as i64)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Marks the group dismissed and removes every member.
    pub async fn dismiss_group(&self, tx: &mut Tx, group_id: u64, now: i64) -> Result<()> {
        sqlx::query("UPDATE `groups` SET dismissed_at = ?, member_count = 0 WHERE id = ?")
            .bind(now)
            .bind(group_id as i64)
            .execute(&mut **tx)
            .await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = ?")
            .bind(group_id as i64)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// One member, read inside a transaction.
    pub async fn member_in(
        &self,
        tx: &mut Tx,
        group_id: u64,
        user: u64,
    ) -> Result<Option<MemberRow>> {
        let row = sqlx::query(
            "SELECT user_id, role, alias, muted_until, joined_at FROM group_members WHERE group_id = ? AND user_id = ?",
        )
        .bind(group_id as i64)
        .bind(user as i64)
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(member_row).transpose()
    }

    pub async fn member(&self, group_id: u64, user: u64) -> Result<Option<MemberRow>> {
        let row = sqlx::query(
            "SELECT user_id, role, alias, muted_until, joined_at FROM group_members WHERE group_id = ? AND user_id = ?",
        )
        .bind(group_id as i64)
        .bind(user as i64)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(member_row).transpose()
    }

    /// Every member id of a group, ascending.
    pub async fn member_ids_in(&self, tx: &mut Tx, group_id: u64) -> Result<Vec<u64>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id",
        )
        .bind(group_id as i64)
        .fetch_all(&mut **tx)
        .await?;
        Ok(ids.into_iter().map(|i| i as u64).collect())
    }

    pub async fn member_ids(&self, group_id: u64) -> Result<Vec<u64>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id",
        )
        .bind(group_id as i64)
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().map(|i| i as u64).collect())
    }

    /// A page of members after `after` (user id).
    pub async fn members_page(
        &self,
        group_id: u64,
        after: u64,
        limit: u32,
    ) -> Result<Vec<MemberRow>> {
        let rows = sqlx::query(
            "SELECT user_id, role, alias, muted_until, joined_at FROM group_members \
             WHERE group_id = ? AND user_id > ? ORDER BY user_id LIMIT ?",
        )
        .bind(group_id as i64)
        .bind(after.min(i64::MAX as u64) as i64)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(member_row).collect()
    }

    /// Groups a user is in, after `after` (group id), ascending.
    pub async fn groups_of(&self, user: u64, after: u64, limit: u32) -> Result<Vec<GroupRow>> {
        let sql = format!(
            "SELECT {} FROM `groups` g JOIN group_members m ON m.group_id = g.id \
             WHERE m.user_id = ? AND g.id > ? ORDER BY g.id LIMIT ?",
            GROUP_COLUMNS
                .split(", ")
                .map(|c| format!("g.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
            .bind(user as i64)
            .bind(after.min(i64::MAX as u64) as i64)
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(group_row).collect()
    }

    /// Live (not dismissed) groups after `after` (group id), ascending.
    pub async fn groups_page(&self, after: u64, limit: u32) -> Result<Vec<GroupRow>> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM `groups` WHERE id > ? AND dismissed_at = 0 ORDER BY id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(after.min(i64::MAX as u64) as i64)
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(group_row).collect()
    }
}
