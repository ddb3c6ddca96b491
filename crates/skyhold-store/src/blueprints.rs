//! Blueprints: a row per blueprint (its name and current version) and a row
//! per version (the spec as JSON). An edit writes a new version; old
//! versions are never changed, so a launch that recorded one can always
//! show what it was launched with. Deleting hides the blueprint and keeps
//! its versions.

use crate::audit::append_audit;
use crate::{map_unique, on_pool, BeginWrite, ReadRow, Result, Store, StoreError};
use skyhold_core::audit::AuditDraft;
use skyhold_core::blueprint::BlueprintSpec;
use skyhold_core::{BlueprintId, Millis};

/// One version of a blueprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlueprintRow {
    pub id: BlueprintId,
    /// The version this row holds (the current one unless asked otherwise).
    pub version: i64,
    /// The blueprint's current version.
    pub current_version: i64,
    pub spec: BlueprintSpec,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
}

const COLS: &str = "b.id, b.version AS current_version, v.version, v.spec, b.created_at, b.updated_at, b.deleted_at";

fn row_to_blueprint(r: &impl ReadRow) -> Result<BlueprintRow> {
    let spec: BlueprintSpec = serde_json::from_str(&r.text("spec")?)
        .map_err(|e| StoreError::Corrupt(format!("blueprint spec: {e}")))?;
    Ok(BlueprintRow {
        id: BlueprintId(r.int("id")?),
        version: r.int("version")?,
        current_version: r.int("current_version")?,
        spec,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        deleted_at: r.opt_int("deleted_at")?,
    })
}

fn spec_json(spec: &BlueprintSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| StoreError::Corrupt(format!("blueprint spec: {e}")))
}

/// The draft with the blueprint's id as its target id and the version in
/// its new value.
fn with_version(audit: &AuditDraft, id: i64, version: i64) -> AuditDraft {
    let mut d = audit.clone();
    d.target.id = id.to_string();
    match d.new.as_mut() {
        Some(serde_json::Value::Object(m)) => {
            m.insert("version".into(), version.into());
        }
        _ => d.new = Some(serde_json::json!({ "version": version })),
    }
    d
}

/// Writes one version row inside `$tx` (create and update share it).
macro_rules! insert_version {
    ($tx:expr, $id:expr, $version:expr, $json:expr, $by:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO blueprint_versions (blueprint_id, version, spec, created_by, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($id)
        .bind($version)
        .bind($json)
        .bind($by)
        .bind($now)
        .execute(&mut *$tx)
        .await?
    };
}

impl Store {
    /// Creates a blueprint at version 1. `Conflict` if the name is taken
    /// (by a live or a deleted blueprint).
    pub async fn create_blueprint(
        &self,
        spec: &BlueprintSpec,
        by: Option<i64>,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<BlueprintRow> {
        let json = spec_json(spec)?;
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO blueprints (name, version, created_at, updated_at) VALUES ($1, 1, $2, $2) RETURNING id",
            )
            .bind(&spec.name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| map_unique(e, &format!("blueprint {}", spec.name)))?;
            insert_version!(tx, id, 1i64, &json, by, now);
            append_audit!(tx, &with_version(audit, id, 1));
            tx.commit().await?;
            Ok(BlueprintRow {
                id: BlueprintId(id),
                version: 1,
                current_version: 1,
                spec: spec.clone(),
                created_at: now,
                updated_at: now,
                deleted_at: None,
            })
        })
    }

    /// Writes `spec` as the next version of blueprint `id`, if its current
    /// version is still `expected_version` (an edit made from an older page
    /// is a `Conflict`, not a silent overwrite). `NotFound` if it is gone.
    pub async fn update_blueprint(
        &self,
        id: BlueprintId,
        expected_version: i64,
        spec: &BlueprintSpec,
        by: Option<i64>,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<BlueprintRow> {
        let json = spec_json(spec)?;
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let current: Option<(i64, Millis)> = sqlx::query_as(
                "SELECT version, created_at FROM blueprints WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
            let (version, created_at) = current.ok_or(StoreError::NotFound)?;
            if version != expected_version {
                return Err(StoreError::Conflict(format!(
                    "blueprint {} changed since version {expected_version} (now version {version}); a newer version",
                    spec.name
                )));
            }
            let next = version + 1;
            sqlx::query("UPDATE blueprints SET name = $1, version = $2, updated_at = $3 WHERE id = $4")
                .bind(&spec.name)
                .bind(next)
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_unique(e, &format!("blueprint {}", spec.name)))?;
            insert_version!(tx, id.0, next, &json, by, now);
            let mut d = with_version(audit, id.0, next);
            d.old = Some(serde_json::json!({ "version": version }));
            append_audit!(tx, &d);
            tx.commit().await?;
            Ok(BlueprintRow {
                id,
                version: next,
                current_version: next,
                spec: spec.clone(),
                created_at,
                updated_at: now,
                deleted_at: None,
            })
        })
    }

    /// Hides a blueprint (its versions stay for the launches that used
    /// them) and removes the grants on it. `NotFound` if it is gone
    /// already.
    pub async fn delete_blueprint(
        &self,
        id: BlueprintId,
        now: Millis,
        audit: &AuditDraft,
    ) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("UPDATE blueprints SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM grants WHERE object_kind = 'blueprint' AND object_key = $1")
                .bind(id.0.to_string())
                .execute(&mut *tx)
                .await?;
            let mut d = audit.clone();
            d.target.id = id.0.to_string();
            append_audit!(tx, &d);
            tx.commit().await?;
            Ok(())
        })
    }

    /// A live blueprint by id or exact name (a name never reads as an id:
    /// all-digit names are refused), at its current version or at
    /// `version`. Deleted blueprints are found only by id with a version.
    pub async fn blueprint(&self, name_or_id: &str, version: Option<i64>) -> Result<BlueprintRow> {
        let by_id = name_or_id.parse::<i64>().ok();
        let sql = format!(
            "SELECT {COLS} FROM blueprints b JOIN blueprint_versions v ON v.blueprint_id = b.id \
             WHERE (b.id = $1 OR b.name = $2) AND v.version = COALESCE($3, b.version) \
             AND (b.deleted_at IS NULL OR ($3 IS NOT NULL AND b.id = $1))"
        );
        on_pool!(self, p => {
            let row = sqlx::query(&sql)
                .bind(by_id)
                .bind(name_or_id)
                .bind(version)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            row_to_blueprint(&row)
        })
    }

    /// Live blueprints at their current versions, by name.
    pub async fn list_blueprints(&self) -> Result<Vec<BlueprintRow>> {
        let sql = format!(
            "SELECT {COLS} FROM blueprints b JOIN blueprint_versions v ON v.blueprint_id = b.id \
             AND v.version = b.version WHERE b.deleted_at IS NULL ORDER BY b.name"
        );
        on_pool!(self, p => {
            let rows = sqlx::query(&sql).fetch_all(p).await?;
            rows.iter().map(row_to_blueprint).collect()
        })
    }
}
