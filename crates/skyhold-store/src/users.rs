//! Users, browser sessions and API tokens. Secrets arrive here already
//! hashed: the store never sees a password or a token in the clear.

use crate::{on_pool, ReadRow, Result, Store, StoreError};
use skyhold_core::{Millis, Role, TokenId, UserId};
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub role: Role,
    /// argon2id PHC string. Never leaves the application layer.
    pub password_hash: String,
    pub email: String,
    /// Set when an admin disabled the user: no login, no session, no token.
    pub disabled_at: Option<Millis>,
    /// `local`, `proxy` or `oidc`: how the user came to exist.
    pub source: String,
    pub created_at: Millis,
}

/// The columns [`user_from_row`] reads, for `SELECT`s joined as `u`.
pub(crate) const USER_COLS: &str =
    "u.id, u.username, u.role, u.password_hash, u.email, u.disabled_at, u.source, u.created_at";

#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub user: User,
    pub csrf: String,
    /// How the session was started: `password`, `proxy` or `oidc`.
    pub method: String,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiToken {
    pub id: TokenId,
    pub name: String,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

pub(crate) fn user_from_row(row: &impl ReadRow) -> Result<User> {
    let role = row.text("role")?;
    Ok(User {
        id: UserId(row.int("id")?),
        username: row.text("username")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        password_hash: row.text("password_hash")?,
        email: row.text("email")?,
        disabled_at: row.opt_int("disabled_at")?,
        source: row.text("source")?,
        created_at: row.int("created_at")?,
    })
}

impl Store {
    pub async fn count_users(&self) -> Result<i64> {
        on_pool!(self, p => {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(p).await?;
            Ok(n)
        })
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("SELECT {USER_COLS} FROM users u WHERE u.username = $1"))
                .bind(username)
                .fetch_optional(p)
                .await?;
            row.as_ref().map(user_from_row).transpose()
        })
    }

    pub async fn set_password(&self, user: UserId, password_hash: &str) -> Result<()> {
        on_pool!(self, p => {
            let r = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user.0)
                .execute(p)
                .await?;
            if r.rows_affected() == 0 { return Err(StoreError::NotFound); }
            Ok(())
        })
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user: UserId,
        csrf: &str,
        method: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now).execute(p).await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf, method, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token_hash)
            .bind(user.0)
            .bind(csrf)
            .bind(method)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// The live session with this hash, if any.
    pub async fn session(&self, token_hash: &str, now: Millis) -> Result<Option<SessionInfo>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!(
                "SELECT {USER_COLS}, s.csrf, s.method, s.expires_at \
                 FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL"
            ))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(p)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some(SessionInfo {
                    user: user_from_row(&r)?,
                    csrf: r.try_get("csrf")?,
                    method: r.try_get("method")?,
                    expires_at: r.try_get("expires_at")?,
                })),
            }
        })
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(p).await?;
            Ok(())
        })
    }

    pub async fn create_token(
        &self,
        user: UserId,
        token_hash: &str,
        name: &str,
        now: Millis,
    ) -> Result<TokenId> {
        on_pool!(self, p => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO api_tokens (user_id, token_hash, name, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(user.0)
            .bind(token_hash)
            .bind(name)
            .bind(now)
            .fetch_one(p)
            .await?;
            Ok(TokenId(id))
        })
    }

    /// The user and token id behind a live (not revoked) token, marking it used.
    pub async fn token_user(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> Result<Option<(User, TokenId)>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!(
                "SELECT {USER_COLS}, t.id AS token_id, t.last_used_at \
                 FROM api_tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL"
            ))
            .bind(token_hash)
            .fetch_optional(p)
            .await?;
            let Some(r) = row else { return Ok(None) };
            let token = TokenId(r.try_get("token_id")?);
            let last: Option<i64> = r.try_get("last_used_at")?;
            // Record use at most once a minute: reads stay reads.
            if last.is_none_or(|l| now - l > 60_000) {
                sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(token.0)
                    .execute(p)
                    .await?;
            }
            Ok(Some((user_from_row(&r)?, token)))
        })
    }

    pub async fn list_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY id",
            )
            .bind(user.0)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ApiToken {
                        id: TokenId(r.try_get("id")?),
                        name: r.try_get("name")?,
                        created_at: r.try_get("created_at")?,
                        last_used_at: r.try_get("last_used_at")?,
                        revoked_at: r.try_get("revoked_at")?,
                    })
                })
                .collect()
        })
    }

    /// Revokes a token of `user`. NotFound if it is not theirs or already revoked.
    pub async fn revoke_token(&self, user: UserId, token: TokenId, now: Millis) -> Result<()> {
        on_pool!(self, p => {
            let r = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(token.0)
            .bind(user.0)
            .execute(p)
            .await?;
            if r.rows_affected() == 0 { return Err(StoreError::NotFound); }
            Ok(())
        })
    }
}
