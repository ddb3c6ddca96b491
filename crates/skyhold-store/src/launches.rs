//! Launch rows: the intent written before the first RunInstances, and the
//! settlement that records what exists, puts the new instances into the
//! inventory, gives back the launch's quota reservation and appends the
//! audit entry, in one transaction.

use crate::audit::append_audit;
use crate::jobs::upsert_observed_in;
use crate::{on_pool, BeginWrite, ReadRow, Result, Store, StoreError};
use skyhold_core::audit::AuditDraft;
use skyhold_core::{
    AccountName, BlueprintId, LaunchId, Millis, ObservedResource, ReservationId, ResourceId, UserId,
};
use sqlx::Row;

/// One launch and where it stands.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LaunchRow {
    pub id: LaunchId,
    /// The `skyhold:launch-id` tag value.
    pub token: String,
    #[serde(skip)]
    pub idempotency_key: String,
    pub blueprint_id: BlueprintId,
    pub blueprint_name: String,
    pub blueprint_version: i64,
    pub account: String,
    pub region: String,
    pub name: String,
    pub instance_type: String,
    pub count: i64,
    pub owner: String,
    pub requested_by: Option<UserId>,
    pub requested_by_name: String,
    pub params: serde_json::Value,
    /// `running`, `succeeded`, `partial`, `failed`.
    pub state: String,
    pub instances: serde_json::Value,
    pub error_code: String,
    pub error: String,
    pub reservation_id: Option<ReservationId>,
    pub created_at: Millis,
    pub finished_at: Option<Millis>,
}

/// A launch about to call the provider.
#[derive(Debug, Clone)]
pub struct NewLaunch<'a> {
    pub token: &'a str,
    pub idempotency_key: &'a str,
    pub blueprint_id: BlueprintId,
    pub blueprint_name: &'a str,
    pub blueprint_version: i64,
    pub account: &'a str,
    pub region: &'a str,
    pub name: &'a str,
    pub instance_type: &'a str,
    pub count: i64,
    pub owner: &'a str,
    pub requested_by: Option<UserId>,
    pub requested_by_name: &'a str,
    pub params: &'a serde_json::Value,
    pub reservation_id: Option<ReservationId>,
    /// One key-hook secret hash per server (index 1…), or none.
    pub secret_hashes: &'a [String],
    /// The servers' names: refused (`NameTaken`) if one is in use, checked
    /// in the transaction that writes the row, serialized with every other
    /// launch's, so two launches cannot both take a name.
    pub server_names: &'a [String],
}

/// The first of `$names` a live instance (its Name tag) or a running
/// launch's server already has, read inside `$exec`; evaluates to
/// `Option<String>` (errors return from the enclosing function).
macro_rules! name_taken_in {
    ($exec:expr, $names:expr) => {
        'taken: {
            let names: &[String] = $names;
            if names.is_empty() {
                break 'taken None;
            }
            // Running launches first, then live instances: a launch that
            // finishes moves its names from the one to the other in one
            // transaction, and on PostgreSQL each statement sees what was
            // committed when it began. Asked the other way round, a finish
            // committed between the two reads was in neither (two servers
            // of one name, seen in `concurrent_launches_of_one_name_...`).
            // A running launch of several servers is named by its base
            // name; its servers' names are in its plan.
            let rows = sqlx::query("SELECT params FROM launches WHERE state = 'running'")
                .fetch_all(&mut *$exec)
                .await?;
            for r in rows {
                let params: String = r.try_get("params")?;
                let v: serde_json::Value = serde_json::from_str(&params).unwrap_or_default();
                let taken = v["servers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["name"].as_str());
                for t in taken {
                    if names.iter().any(|n| n == t) {
                        break 'taken Some(t.to_owned());
                    }
                }
            }
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT name FROM resources WHERE kind = 'instance' AND deleted_at IS NULL \
                 AND state NOT IN ('terminated', 'shutting-down') AND name IN (",
            );
            let mut sep = qb.separated(", ");
            for n in names {
                sep.push_bind(n);
            }
            qb.push(") LIMIT 1");
            if let Some(r) = qb.build().fetch_optional(&mut *$exec).await? {
                break 'taken Some(r.try_get::<String, _>("name")?);
            }
            None
        }
    };
}

/// How a launch ended.
#[derive(Debug, Clone)]
pub struct LaunchOutcome<'a> {
    /// `succeeded`, `partial` or `failed`.
    pub state: &'a str,
    pub instances: &'a serde_json::Value,
    pub error_code: &'a str,
    pub error: &'a str,
    /// The instances that exist, by server index.
    pub servers: &'a [(u32, ObservedResource)],
    /// The DNS records wanted for them.
    pub dns: &'a [crate::WantedRecord],
}

const COLS: &str = "id, token, idempotency_key, blueprint_id, blueprint_name, blueprint_version, account, \
    region, name, instance_type, count, owner, requested_by, requested_by_name, params, state, instances, \
    error_code, error, reservation_id, created_at, finished_at";

fn json(r: &impl ReadRow, col: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&r.text(col)?)
        .map_err(|e| StoreError::Corrupt(format!("launch {col}: {e}")))
}

fn launch_from_row(r: &impl ReadRow) -> Result<LaunchRow> {
    Ok(LaunchRow {
        id: LaunchId(r.int("id")?),
        token: r.text("token")?,
        idempotency_key: r.text("idempotency_key")?,
        blueprint_id: BlueprintId(r.int("blueprint_id")?),
        blueprint_name: r.text("blueprint_name")?,
        blueprint_version: r.int("blueprint_version")?,
        account: r.text("account")?,
        region: r.text("region")?,
        name: r.text("name")?,
        instance_type: r.text("instance_type")?,
        count: r.int("count")?,
        owner: r.text("owner")?,
        requested_by: r.opt_int("requested_by")?.map(UserId),
        requested_by_name: r.text("requested_by_name")?,
        params: json(r, "params")?,
        state: r.text("state")?,
        instances: json(r, "instances")?,
        error_code: r.text("error_code")?,
        error: r.text("error")?,
        reservation_id: r.opt_int("reservation_id")?.map(ReservationId),
        created_at: r.int("created_at")?,
        finished_at: r.opt_int("finished_at")?,
    })
}

impl Store {
    /// Records a launch as `running` just before its first provider call.
    /// `Conflict` when a launch with this idempotency key exists (the
    /// caller then reads it).
    pub async fn create_launch(&self, l: &NewLaunch<'_>, now: Millis) -> Result<LaunchRow> {
        let mut locks: Vec<String> = l.server_names.iter().map(|n| n.to_lowercase()).collect();
        locks.sort();
        locks.dedup();
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            // SQLite's one writer serializes this already; PostgreSQL
            // takes a lock per name, in sorted order.
            if matches!(self.pool, crate::Pool::Postgres(_)) {
                for n in &locks {
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                        .bind(format!("skyhold-launch-name:{n}"))
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if let Some(taken) = name_taken_in!(tx, l.server_names) {
                return Err(StoreError::NameTaken(taken));
            }
            let row = sqlx::query(&format!(
                "INSERT INTO launches (token, idempotency_key, blueprint_id, blueprint_name, blueprint_version, \
                 account, region, name, instance_type, count, owner, requested_by, requested_by_name, params, \
                 state, instances, error_code, error, reservation_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'running', '[]', '', '', $15, $16) \
                 RETURNING {COLS}"
            ))
            .bind(l.token)
            .bind(l.idempotency_key)
            .bind(l.blueprint_id.0)
            .bind(l.blueprint_name)
            .bind(l.blueprint_version)
            .bind(l.account)
            .bind(l.region)
            .bind(l.name)
            .bind(l.instance_type)
            .bind(l.count)
            .bind(l.owner)
            .bind(l.requested_by.map(|u| u.0))
            .bind(l.requested_by_name)
            .bind(l.params.to_string())
            .bind(l.reservation_id.map(|r| r.0))
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| crate::map_unique(e, "a launch with this idempotency key"))?;
            let launch = launch_from_row(&row)?;
            for (i, hash) in l.secret_hashes.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO instance_secrets (launch_id, server_index, account, region, provider_id, \
                     secret_hash, created_at) VALUES ($1, $2, $3, $4, '', $5, $6)",
                )
                .bind(launch.id.0)
                .bind(i as i64 + 1)
                .bind(l.account)
                .bind(l.region)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(launch)
        })
    }

    /// The key-hook secret hash of an instance, with its account and
    /// region (`None`: skyhold gave it none).
    pub async fn instance_secret(
        &self,
        provider_id: &str,
    ) -> Result<Option<(String, String, String)>> {
        if provider_id.is_empty() {
            return Ok(None);
        }
        on_pool!(self, p => {
            let row = sqlx::query(
                "SELECT secret_hash, account, region FROM instance_secrets WHERE provider_id = $1 \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(provider_id)
            .fetch_optional(p)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some((r.try_get("secret_hash")?, r.try_get("account")?, r.try_get("region")?))),
            }
        })
    }

    /// Settles a running launch: its outcome, the instances that exist (by
    /// server index) put into the inventory of (`account`, `region`) and
    /// bound to their key-hook secrets, the DNS records `dns` wanted for
    /// them (by server index), its reservation given
    /// back (what it made counts from the inventory now), and the audit
    /// entry, in one transaction. Returns the row and the instances'
    /// resource ids (in `observed`'s order). `NotFound` if it was settled
    /// already.
    pub async fn finish_launch(
        &self,
        id: LaunchId,
        outcome: &LaunchOutcome<'_>,
        account: &AccountName,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<(LaunchRow, Vec<ResourceId>)> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let row = sqlx::query(&format!(
                "UPDATE launches SET state = $1, instances = $2, error_code = $3, error = $4, finished_at = $5 \
                 WHERE id = $6 AND state = 'running' RETURNING {COLS}"
            ))
            .bind(outcome.state)
            .bind(outcome.instances.to_string())
            .bind(outcome.error_code)
            .bind(outcome.error)
            .bind(now)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
            let l = launch_from_row(&row)?;
            let (observed, dns) = (outcome.servers, outcome.dns);
            let mut ids = Vec::with_capacity(observed.len());
            for (index, o) in observed {
                ids.push(upsert_observed_in!(tx, account.as_str(), l.region.as_str(), o, now)?);
                sqlx::query(
                    "UPDATE instance_secrets SET provider_id = $1 WHERE launch_id = $2 AND server_index = $3",
                )
                .bind(&o.provider_id)
                .bind(l.id.0)
                .bind(i64::from(*index))
                .execute(&mut *tx)
                .await?;
            }
            let servers: Vec<(u32, &String)> = observed.iter().map(|(i, o)| (*i, &o.provider_id)).collect();
            crate::dns::want_records_in!(tx, &l, dns, servers, now)?;
            if let Some(r) = l.reservation_id {
                sqlx::query("DELETE FROM quota_reservations WHERE id = $1")
                    .bind(r.0)
                    .execute(&mut *tx)
                    .await?;
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok((l, ids))
        })
    }

    pub async fn launch(&self, id: LaunchId) -> Result<LaunchRow> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("SELECT {COLS} FROM launches WHERE id = $1"))
                .bind(id.0)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            launch_from_row(&row)
        })
    }

    pub async fn launch_by_key(&self, key: &str) -> Result<Option<LaunchRow>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("SELECT {COLS} FROM launches WHERE idempotency_key = $1"))
                .bind(key)
                .fetch_optional(p)
                .await?;
            row.as_ref().map(launch_from_row).transpose()
        })
    }

    /// Launches, newest first, below `cursor`: of `owner` (the owner tag's
    /// value) and/or asked for by `requested_by`, and, when `visible` is
    /// given as (user, owner values), only those that user asked for or
    /// whose owner is one of the values (filtered here, so pages are full).
    /// At most `limit + 1` rows (one more tells that a next page exists).
    pub async fn list_launches(
        &self,
        owner: Option<&str>,
        requested_by: Option<UserId>,
        visible: Option<(UserId, &[String])>,
        cursor: Option<LaunchId>,
        limit: i64,
    ) -> Result<Vec<LaunchRow>> {
        on_pool!(self, p => {
            let mut qb = sqlx::QueryBuilder::new(format!("SELECT {COLS} FROM launches WHERE 1 = 1"));
            if let Some(o) = owner {
                qb.push(" AND owner = ").push_bind(o);
            }
            if let Some(u) = requested_by {
                qb.push(" AND requested_by = ").push_bind(u.0);
            }
            if let Some((u, owners)) = visible {
                qb.push(" AND (requested_by = ").push_bind(u.0);
                for o in owners {
                    qb.push(" OR owner = ").push_bind(o);
                }
                qb.push(")");
            }
            if let Some(c) = cursor {
                qb.push(" AND id < ").push_bind(c.0);
            }
            qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit + 1);
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(launch_from_row).collect()
        })
    }

    /// Launches still `running` (a process settles its own; the rest were
    /// left by one that died).
    pub async fn unsettled_launches(&self) -> Result<Vec<LaunchRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!(
                "SELECT {COLS} FROM launches WHERE state = 'running' ORDER BY id"
            ))
            .fetch_all(p)
            .await?;
            rows.iter().map(launch_from_row).collect()
        })
    }

    /// Whether a live instance or a running launch already uses one of
    /// `names` (the Name tag): a launch refuses such names before it calls
    /// the provider. Returns the first name taken.
    pub async fn launch_name_taken(&self, names: &[String]) -> Result<Option<String>> {
        on_pool!(self, p => {
            let mut conn = p.acquire().await?;
            Ok(name_taken_in!(conn, names))
        })
    }
}

impl Store {
    /// Every active user with at least one SSH key, and their keys (the
    /// candidates of an instance's authorized_keys).
    pub async fn users_with_ssh_keys(&self) -> Result<Vec<(UserId, Vec<crate::SshKey>)>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT k.user_id, k.id, k.name, k.public_key, k.fingerprint, k.created_at FROM ssh_keys k \
                 JOIN users u ON u.id = k.user_id WHERE u.disabled_at IS NULL ORDER BY k.user_id, k.id",
            )
            .fetch_all(p)
            .await?;
            let mut out: Vec<(UserId, Vec<crate::SshKey>)> = Vec::new();
            for r in rows {
                let user = UserId(r.try_get("user_id")?);
                let key = crate::SshKey {
                    id: skyhold_core::SshKeyId(r.try_get("id")?),
                    name: r.try_get("name")?,
                    public_key: r.try_get("public_key")?,
                    fingerprint: r.try_get("fingerprint")?,
                    created_at: r.try_get("created_at")?,
                };
                match out.last_mut() {
                    Some((u, keys)) if *u == user => keys.push(key),
                    _ => out.push((user, vec![key])),
                }
            }
            Ok(out)
        })
    }
}
