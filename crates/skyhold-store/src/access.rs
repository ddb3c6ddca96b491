//! Who may do what: user administration, groups and their members, the one
//! grants table, SSH keys. Every change here is written in one transaction
//! with its audit entry.

use crate::audit::append_audit;
use crate::users::{user_from_row, User, USER_COLS};
use crate::{map_unique, on_pool, BeginWrite, ReadRow, Result, Store, StoreError};
use skyhold_core::audit::{AuditDraft, AuditEntry};
use skyhold_core::{GrantId, GroupId, Millis, Role, SshKeyId, UserId};
use sqlx::Row;

/// A new user, as the application layer validated it.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub email: &'a str,
    /// `local`, `proxy` or `oidc`.
    pub source: &'a str,
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub role: Option<Role>,
    pub email: Option<String>,
    /// `Some(true)` disables (ending every session and token at once),
    /// `Some(false)` enables again.
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub created_at: Millis,
    /// Member user names, sorted.
    pub members: Vec<String>,
    /// Where notifications about what the group owns go ('' for none).
    pub email: String,
}

/// A stored grant, with the names of its subject and (for user and group
/// objects) its object resolved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Grant {
    pub id: GrantId,
    /// `user` or `group`.
    pub subject_kind: String,
    pub subject_id: i64,
    pub subject_name: String,
    /// `account`, `resource`, `group` or `user`.
    pub object_kind: String,
    /// The account name, the resource id, or the group's or user's id.
    pub object_key: String,
    /// The account name, the resource id, or the group or user name.
    pub object_name: String,
    pub level: String,
    pub created_at: Millis,
}

/// Which grants to list.
#[derive(Debug, Clone, Default)]
pub struct GrantFilter {
    pub object: Option<(String, String)>,
    pub subject: Option<(String, i64)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SshKey {
    pub id: SshKeyId,
    pub name: String,
    pub public_key: String,
    pub fingerprint: String,
    pub created_at: Millis,
}

const GRANT_COLS: &str = "g.id, g.subject_kind, g.subject_id, g.object_kind, g.object_key, g.level, g.created_at, \
    CASE WHEN g.subject_kind = 'user' THEN (SELECT username FROM users WHERE id = g.subject_id) \
         ELSE (SELECT name FROM groups WHERE id = g.subject_id) END AS subject_name, \
    CASE WHEN g.object_kind = 'user' THEN (SELECT username FROM users WHERE CAST(id AS TEXT) = g.object_key) \
         WHEN g.object_kind = 'group' THEN (SELECT name FROM groups WHERE CAST(id AS TEXT) = g.object_key) \
         WHEN g.object_kind = 'blueprint' THEN (SELECT name FROM blueprints WHERE CAST(id AS TEXT) = g.object_key) \
         ELSE g.object_key END AS object_name";

fn grant_from_row(
    r: &impl ReadRow,
    subject_name: Option<String>,
    object_name: Option<String>,
) -> Result<Grant> {
    Ok(Grant {
        id: GrantId(r.int("id")?),
        subject_kind: r.text("subject_kind")?,
        subject_id: r.int("subject_id")?,
        subject_name: subject_name.unwrap_or_default(),
        object_kind: r.text("object_kind")?,
        object_key: r.text("object_key")?,
        object_name: object_name.unwrap_or_default(),
        level: r.text("level")?,
        created_at: r.int("created_at")?,
    })
}

/// Fills in the id of a row just created when the draft names none.
fn with_id(draft: &AuditDraft, id: i64) -> AuditDraft {
    let mut d = draft.clone();
    if d.target.id.is_empty() {
        d.target.id = id.to_string();
    }
    d
}

impl Store {
    /// Creates a user and its audit entry in one transaction.
    pub async fn create_user(
        &self,
        u: &NewUser<'_>,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<(UserId, AuditEntry)> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (username, password_hash, role, created_at, email, source) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(u.username)
            .bind(u.password_hash)
            .bind(u.role.as_str())
            .bind(now)
            .bind(u.email)
            .bind(u.source)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map_unique(e, &format!("user {}", u.username)))?;
            let e = append_audit!(tx, &with_id(audit, id));
            tx.commit().await?;
            Ok((UserId(id), e))
        })
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!("SELECT {USER_COLS} FROM users u ORDER BY u.username"))
                .fetch_all(p)
                .await?;
            rows.iter().map(user_from_row).collect()
        })
    }

    pub async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1"))
                .bind(id.0)
                .fetch_optional(p)
                .await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    /// Applies `patch` to user `id` with its audit entry; disabling also
    /// deletes the user's sessions and revokes their tokens in the same
    /// transaction. Returns the user as it was before.
    pub async fn update_user(
        &self,
        id: UserId,
        patch: &UserPatch,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<User> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1"))
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
            let before = match row {
                Some(r) => user_from_row(&r)?,
                None => return Err(StoreError::NotFound),
            };
            if let Some(role) = patch.role {
                sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                    .bind(role.as_str()).bind(id.0).execute(&mut *tx).await?;
            }
            if let Some(email) = &patch.email {
                sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
                    .bind(email).bind(id.0).execute(&mut *tx).await?;
            }
            if let Some(h) = &patch.password_hash {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(h).bind(id.0).execute(&mut *tx).await?;
            }
            match patch.disabled {
                Some(true) => {
                    sqlx::query("UPDATE users SET disabled_at = COALESCE(disabled_at, $1) WHERE id = $2")
                        .bind(now).bind(id.0).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(id.0).execute(&mut *tx).await?;
                    sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                        .bind(now).bind(id.0).execute(&mut *tx).await?;
                }
                Some(false) => {
                    sqlx::query("UPDATE users SET disabled_at = NULL WHERE id = $1")
                        .bind(id.0).execute(&mut *tx).await?;
                }
                None => {}
            }
            // A new password ends every session of the user.
            if patch.password_hash.is_some() && patch.disabled != Some(true) {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id.0).execute(&mut *tx).await?;
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(before)
        })
    }

    pub async fn create_group(
        &self,
        name: &str,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<GroupId> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let id: i64 = sqlx::query_scalar("INSERT INTO groups (name, created_at) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| map_unique(e, &format!("group {name}")))?;
            append_audit!(tx, &with_id(audit, id));
            tx.commit().await?;
            Ok(GroupId(id))
        })
    }

    /// Deletes a group, its memberships and every grant it holds or is the
    /// object of.
    pub async fn delete_group(&self, id: GroupId, audit: &AuditDraft) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            sqlx::query("DELETE FROM grants WHERE (subject_kind = 'group' AND subject_id = $1) \
                         OR (object_kind = 'group' AND object_key = $2)")
                .bind(id.0).bind(id.0.to_string()).execute(&mut *tx).await?;
            let r = sqlx::query("DELETE FROM groups WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every group with its members, by name.
    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        self.groups_where("", None).await
    }

    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>> {
        Ok(self
            .groups_where("WHERE g.name = $1", Some(name))
            .await?
            .into_iter()
            .next())
    }

    /// The groups the user named `username` belongs to, each with all its
    /// members (what a quota check of theirs needs), by name.
    pub async fn groups_of_member(&self, username: &str) -> Result<Vec<Group>> {
        self.groups_where(
            "WHERE g.id IN (SELECT m2.group_id FROM group_members m2 JOIN users u2 ON u2.id = m2.user_id \
             WHERE u2.username = $1)",
            Some(username),
        )
        .await
    }

    /// Groups (`g`) matching `filter` (bound to `arg` as `$1`), with their
    /// members, in two queries.
    async fn groups_where(&self, filter: &str, arg: Option<&str>) -> Result<Vec<Group>> {
        let groups_sql = format!(
            "SELECT g.id, g.name, g.created_at, g.email FROM groups g {filter} ORDER BY g.name"
        );
        let members_sql = format!(
            "SELECT m.group_id, u.username FROM group_members m JOIN users u ON u.id = m.user_id \
             WHERE m.group_id IN (SELECT g.id FROM groups g {filter}) ORDER BY u.username"
        );
        on_pool!(self, p => {
            let mut q = sqlx::query(&groups_sql);
            let mut m = sqlx::query(&members_sql);
            if let Some(a) = arg {
                q = q.bind(a);
                m = m.bind(a);
            }
            // One connection for both (one pool checkout, one ping).
            let mut c = p.acquire().await?;
            let groups = q.fetch_all(&mut *c).await?;
            let members = m.fetch_all(&mut *c).await?;
            let mut by_group: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
            for r in &members {
                by_group.entry(r.int("group_id")?).or_default().push(r.text("username")?);
            }
            groups
                .iter()
                .map(|g| {
                    let id = g.int("id")?;
                    Ok(Group {
                        id: GroupId(id),
                        name: g.text("name")?,
                        created_at: g.int("created_at")?,
                        members: by_group.remove(&id).unwrap_or_default(),
                        email: g.text("email")?,
                    })
                })
                .collect()
        })
    }

    /// The groups `user` belongs to: (id, name), by name.
    pub async fn user_groups(&self, user: UserId) -> Result<Vec<(GroupId, String)>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT g.id, g.name FROM group_members m JOIN groups g ON g.id = m.group_id \
                 WHERE m.user_id = $1 ORDER BY g.name",
            )
            .bind(user.0)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| Ok((GroupId(r.int("id")?), r.text("name")?))).collect()
        })
    }

    /// Sets a group's notification address, audited.
    pub async fn set_group_email(
        &self,
        group: GroupId,
        email: &str,
        audit: &AuditDraft,
    ) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("UPDATE groups SET email = $1 WHERE id = $2")
                .bind(email)
                .bind(group.0)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Adds `user` to `group`. `Ok(false)`: already a member (nothing written).
    pub async fn add_member(
        &self,
        group: GroupId,
        user: UserId,
        audit: &AuditDraft,
    ) -> Result<bool> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query(
                "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(group.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn remove_member(
        &self,
        group: GroupId,
        user: UserId,
        audit: &AuditDraft,
    ) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
                .bind(group.0)
                .bind(user.0)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Sets `subject`'s level on `object` (creating or changing the grant)
    /// with its audit entry. Returns the grant id and the level it had.
    #[allow(clippy::too_many_arguments)]
    pub async fn put_grant(
        &self,
        subject: (&str, i64),
        object: (&str, &str),
        level: &str,
        created_by: Option<UserId>,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<(GrantId, Option<String>)> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let old = sqlx::query(
                "SELECT id, level FROM grants WHERE subject_kind = $1 AND subject_id = $2 \
                 AND object_kind = $3 AND object_key = $4",
            )
            .bind(subject.0).bind(subject.1).bind(object.0).bind(object.1)
            .fetch_optional(&mut *tx)
            .await?;
            let (id, old_level) = match old {
                Some(r) => {
                    let id = r.int("id")?;
                    sqlx::query("UPDATE grants SET level = $1 WHERE id = $2")
                        .bind(level).bind(id).execute(&mut *tx).await?;
                    (id, Some(r.text("level")?))
                }
                // A concurrent writer may have inserted the same grant since
                // the SELECT (PostgreSQL): then this one updates it.
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO grants (subject_kind, subject_id, object_kind, object_key, level, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (subject_kind, subject_id, object_kind, object_key) DO UPDATE SET level = excluded.level \
                         RETURNING id",
                    )
                    .bind(subject.0).bind(subject.1).bind(object.0).bind(object.1)
                    .bind(level).bind(created_by.map(|u| u.0)).bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    (id, None)
                }
            };
            // The target is the grant's object; the grant's own id goes
            // with the new value.
            let mut d = audit.clone();
            d.old = old_level.as_ref().map(|l| serde_json::json!({"level": l}));
            match d.new.as_mut() {
                Some(serde_json::Value::Object(m)) => {
                    m.insert("grant_id".into(), id.into());
                }
                _ => d.new = Some(serde_json::json!({"grant_id": id})),
            }
            append_audit!(tx, &d);
            tx.commit().await?;
            Ok((GrantId(id), old_level))
        })
    }

    pub async fn grant(&self, id: GrantId) -> Result<Grant> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("SELECT {GRANT_COLS} FROM grants g WHERE g.id = $1"))
                .bind(id.0)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            grant_from_row(&row, row.try_get("subject_name")?, row.try_get("object_name")?)
        })
    }

    pub async fn delete_grant(&self, id: GrantId, audit: &AuditDraft) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("DELETE FROM grants WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Grants matching `f`, by id.
    pub async fn list_grants(&self, f: &GrantFilter) -> Result<Vec<Grant>> {
        let mut sql = format!("SELECT {GRANT_COLS} FROM grants g WHERE 1 = 1");
        if f.object.is_some() {
            sql.push_str(" AND g.object_kind = $1 AND g.object_key = $2");
        }
        if f.subject.is_some() {
            let n = if f.object.is_some() { 3 } else { 1 };
            sql.push_str(&format!(
                " AND g.subject_kind = ${n} AND g.subject_id = ${}",
                n + 1
            ));
        }
        sql.push_str(" ORDER BY g.id LIMIT 10000");
        on_pool!(self, p => {
            let mut q = sqlx::query(&sql);
            if let Some((k, key)) = &f.object {
                q = q.bind(k.clone()).bind(key.clone());
            }
            if let Some((k, id)) = &f.subject {
                q = q.bind(k.clone()).bind(*id);
            }
            let rows = q.fetch_all(p).await?;
            rows.iter()
                .map(|r| grant_from_row(r, r.try_get("subject_name")?, r.try_get("object_name")?))
                .collect()
        })
    }

    /// The grants held by `user` directly or through one of `groups`, as
    /// (object kind, object key, level): what the authorization check
    /// needs about an actor on every request. One indexed query that
    /// returns one row (a JSON array built in SQL): on SQLite every row a
    /// query returns costs a hop between threads, which for a member with
    /// a hundred grants was most of the permissions' cost per request
    /// (measured; docs/PERFORMANCE.md (d)).
    pub async fn grants_held(
        &self,
        user: UserId,
        groups: &[GroupId],
    ) -> Result<Vec<(String, String, String)>> {
        let mut filter = String::from("(subject_kind = 'user' AND subject_id = $1)");
        if !groups.is_empty() {
            let ids: Vec<String> = groups.iter().map(|g| g.0.to_string()).collect();
            filter.push_str(&format!(
                " OR (subject_kind = 'group' AND subject_id IN ({}))",
                ids.join(", ")
            ));
        }
        let inner = format!(
            "SELECT object_kind, object_key, level FROM grants WHERE {filter} ORDER BY id LIMIT 10000"
        );
        let sql = if self.is_sqlite() {
            format!("SELECT json_group_array(json_array(object_kind, object_key, level)) FROM ({inner}) g")
        } else {
            format!(
                "SELECT COALESCE(json_agg(json_build_array(object_kind, object_key, level))::text, '[]') FROM ({inner}) g"
            )
        };
        let text: String = on_pool!(self, p => {
            sqlx::query_scalar(&sql).bind(user.0).fetch_one(p).await?
        });
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("held grants: {e}")))
    }

    pub async fn add_ssh_key(
        &self,
        user: UserId,
        name: &str,
        public_key: &str,
        fingerprint: &str,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<SshKeyId> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO ssh_keys (user_id, name, public_key, fingerprint, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(user.0).bind(name).bind(public_key).bind(fingerprint).bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map_unique(e, "this key"))?;
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(SshKeyId(id))
        })
    }

    pub async fn list_ssh_keys(&self, user: UserId) -> Result<Vec<SshKey>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, name, public_key, fingerprint, created_at FROM ssh_keys WHERE user_id = $1 ORDER BY id",
            )
            .bind(user.0)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SshKey {
                        id: SshKeyId(r.int("id")?),
                        name: r.text("name")?,
                        public_key: r.text("public_key")?,
                        fingerprint: r.text("fingerprint")?,
                        created_at: r.int("created_at")?,
                    })
                })
                .collect()
        })
    }

    pub async fn delete_ssh_key(
        &self,
        user: UserId,
        id: SshKeyId,
        audit: &AuditDraft,
    ) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2")
                .bind(id.0).bind(user.0).execute(&mut *tx).await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(())
        })
    }
}
