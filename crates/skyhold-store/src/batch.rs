//! Batched writes of resource rows and change events, for `apply_listing`:
//! one statement per batch instead of one per row. On PostgreSQL the
//! batch's columns are bound as arrays and unnested, so every batch runs
//! the same prepared statement whatever its size, in one round trip; on
//! SQLite (in-process, no round trips) it is a VALUES list.

use crate::Result;
use skyhold_core::{Millis, ObservedResource};
use sqlx::{PgConnection, QueryBuilder, SqliteConnection};

/// Rows per statement on SQLite (its limit is 32,766 bound values).
const SQLITE_BATCH: usize = 500;
/// Rows per statement on PostgreSQL.
const PG_BATCH: usize = 2_000;

/// The scope of a listing: (account, region, kind).
pub(crate) type Scope<'a> = (&'a str, &'a str, &'a str);

/// A resource to insert: its observation, fingerprint and tombstone.
pub(crate) struct NewRow<'a> {
    pub o: &'a ObservedResource,
    pub fp: String,
    pub deleted: Option<Millis>,
}

/// A row to rewrite from a new observation.
pub(crate) struct Rewrite<'a> {
    pub id: i64,
    pub o: &'a ObservedResource,
    pub fp: String,
    pub deleted: Option<Millis>,
}

/// A change event about to be written.
pub(crate) struct NewEvent {
    /// The row it is about; `None` for one inserted by the same batch
    /// (looked up by provider id).
    pub resource_id: Option<i64>,
    pub provider_id: String,
    pub name: String,
    pub event: &'static str,
    pub changes: Vec<skyhold_core::FieldChange>,
}

impl NewEvent {
    pub fn new(
        resource_id: Option<i64>,
        provider_id: &str,
        name: &str,
        event: &'static str,
        changes: Vec<skyhold_core::FieldChange>,
    ) -> Self {
        Self {
            resource_id,
            provider_id: provider_id.to_owned(),
            name: name.to_owned(),
            event,
            changes,
        }
    }

    fn changes_json(&self) -> String {
        serde_json::to_string(&self.changes).unwrap_or_else(|_| "[]".into())
    }
}

/// The stored text of an observation's tags and attributes.
fn json_columns(o: &ObservedResource) -> (String, String) {
    (
        serde_json::to_string(&o.tags).unwrap_or_default(),
        serde_json::Value::Object(o.attributes.clone()).to_string(),
    )
}

/// The batched writes, one implementation per backend's connection.
pub(crate) trait BatchWrite {
    /// Inserts rows of one scope, first and last seen `now`.
    async fn insert_resources(
        &mut self,
        scope: Scope<'_>,
        rows: &[NewRow<'_>],
        now: Millis,
    ) -> Result<()>;

    /// Rewrites rows from their new observations, last seen `now`.
    async fn rewrite_resources(&mut self, rows: &[Rewrite<'_>], now: Millis) -> Result<()>;

    /// Tombstones rows at `now`.
    async fn tombstone_resources(&mut self, ids: &[i64], now: Millis) -> Result<()>;

    /// Records change events of one scope at `now`.
    async fn insert_events(
        &mut self,
        scope: Scope<'_>,
        events: &[NewEvent],
        now: Millis,
    ) -> Result<()>;
}

const INSERT_COLUMNS: &str = "INSERT INTO resources (account, region, kind, provider_id, name, \
     state, rtype, owner, private_ip, public_ip, created_at, size_gib, tags, attributes, search, \
     fingerprint, first_seen, last_seen, deleted_at) ";
const EVENT_COLUMNS: &str = "INSERT INTO resource_events (resource_id, account, region, kind, \
     provider_id, name, at, event, changes) ";

/// Binds what an observation stores, from `name` to `fingerprint`, in
/// the column order both SQLite statements share.
fn push_content<'args>(
    b: &mut sqlx::query_builder::Separated<'_, 'args, sqlx::Sqlite, &'static str>,
    o: &'args ObservedResource,
    fp: &'args str,
) {
    let (tags, attributes) = json_columns(o);
    b.push_bind(&o.name)
        .push_bind(&o.state)
        .push_bind(&o.rtype)
        .push_bind(&o.owner)
        .push_bind(&o.private_ip)
        .push_bind(&o.public_ip)
        .push_bind(o.created_at.unwrap_or(0))
        .push_bind(o.size_gib)
        .push_bind(tags)
        .push_bind(attributes)
        .push_bind(o.search_text())
        .push_bind(fp);
}

impl BatchWrite for SqliteConnection {
    async fn insert_resources(
        &mut self,
        (account, region, kind): Scope<'_>,
        rows: &[NewRow<'_>],
        now: Millis,
    ) -> Result<()> {
        for chunk in rows.chunks(SQLITE_BATCH) {
            let mut qb = QueryBuilder::new(INSERT_COLUMNS);
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(account)
                    .push_bind(region)
                    .push_bind(kind)
                    .push_bind(&r.o.provider_id);
                push_content(&mut b, r.o, &r.fp);
                b.push_bind(now).push_bind(now).push_bind(r.deleted);
            });
            qb.build().execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn rewrite_resources(&mut self, rows: &[Rewrite<'_>], now: Millis) -> Result<()> {
        for chunk in rows.chunks(SQLITE_BATCH) {
            // VALUES columns are named column1, column2, ... in SQLite.
            let mut qb = QueryBuilder::new(
                "UPDATE resources SET name = v.column2, state = v.column3, rtype = v.column4, \
                 owner = v.column5, private_ip = v.column6, public_ip = v.column7, \
                 created_at = v.column8, size_gib = v.column9, tags = v.column10, \
                 attributes = v.column11, search = v.column12, fingerprint = v.column13, \
                 deleted_at = v.column14, last_seen = ",
            );
            qb.push_bind(now).push(" FROM (");
            qb.push_values(chunk, |mut b, r| {
                b.push_bind(r.id);
                push_content(&mut b, r.o, &r.fp);
                b.push_bind(r.deleted);
            });
            qb.push(") AS v WHERE resources.id = v.column1");
            qb.build().execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn tombstone_resources(&mut self, ids: &[i64], now: Millis) -> Result<()> {
        for chunk in ids.chunks(SQLITE_BATCH) {
            let mut qb = QueryBuilder::new("UPDATE resources SET deleted_at = ");
            qb.push_bind(now).push(" WHERE id IN (");
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn insert_events(
        &mut self,
        (account, region, kind): Scope<'_>,
        events: &[NewEvent],
        now: Millis,
    ) -> Result<()> {
        for chunk in events.chunks(SQLITE_BATCH) {
            let mut qb = QueryBuilder::new(EVENT_COLUMNS);
            qb.push_values(chunk, |mut b, e| {
                match e.resource_id {
                    Some(id) => {
                        b.push_bind(id);
                    }
                    None => {
                        b.push("(SELECT id FROM resources WHERE account = ")
                            .push_bind_unseparated(account)
                            .push_unseparated(" AND region = ")
                            .push_bind_unseparated(region)
                            .push_unseparated(" AND kind = ")
                            .push_bind_unseparated(kind)
                            .push_unseparated(" AND provider_id = ")
                            .push_bind_unseparated(&e.provider_id)
                            .push_unseparated(")");
                    }
                }
                b.push_bind(account)
                    .push_bind(region)
                    .push_bind(kind)
                    .push_bind(&e.provider_id)
                    .push_bind(&e.name)
                    .push_bind(now)
                    .push_bind(e.event)
                    .push_bind(e.changes_json());
            });
            qb.build().execute(&mut *self).await?;
        }
        Ok(())
    }
}

/// PostgreSQL's insert of a batch from arrays: the scope and time are $1-$4,
/// the columns $5-$18.
const INSERT_UNNEST: &str =
    "INSERT INTO resources (account, region, kind, provider_id, name, state, rtype, owner, \
         private_ip, public_ip, created_at, size_gib, tags, attributes, search, fingerprint, \
         first_seen, last_seen, deleted_at) \
         SELECT $1, $2, $3, u.provider_id, u.name, u.state, u.rtype, u.owner, u.private_ip, \
         u.public_ip, u.created_at, u.size_gib, u.tags, u.attributes, u.search, u.fingerprint, \
         $4, $4, u.deleted_at FROM UNNEST($5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], \
         $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::BIGINT[], $13::BIGINT[], $14::TEXT[], \
         $15::TEXT[], $16::TEXT[], $17::TEXT[], $18::BIGINT[]) AS u(provider_id, name, state, \
         rtype, owner, private_ip, public_ip, created_at, size_gib, tags, attributes, search, \
     fingerprint, deleted_at)";

impl BatchWrite for PgConnection {
    async fn insert_resources(
        &mut self,
        (account, region, kind): Scope<'_>,
        rows: &[NewRow<'_>],
        now: Millis,
    ) -> Result<()> {
        for chunk in rows.chunks(PG_BATCH) {
            let mut c = Columns::default();
            for r in chunk {
                c.push(r.o, &r.fp, r.deleted);
            }
            let q = sqlx::query(INSERT_UNNEST)
                .bind(account)
                .bind(region)
                .bind(kind)
                .bind(now)
                .bind(std::mem::take(&mut c.provider_id));
            c.bind_content(q).execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn rewrite_resources(&mut self, rows: &[Rewrite<'_>], now: Millis) -> Result<()> {
        for chunk in rows.chunks(PG_BATCH) {
            let mut c = Columns::default();
            let mut ids = Vec::with_capacity(chunk.len());
            for r in chunk {
                ids.push(r.id);
                c.push(r.o, &r.fp, r.deleted);
            }
            let q = sqlx::query(
                "UPDATE resources AS r SET name = u.name, state = u.state, rtype = u.rtype, \
                 owner = u.owner, private_ip = u.private_ip, public_ip = u.public_ip, \
                 created_at = u.created_at, size_gib = u.size_gib, tags = u.tags, \
                 attributes = u.attributes, search = u.search, fingerprint = u.fingerprint, \
                 deleted_at = u.deleted_at, last_seen = $1 \
                 FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], \
                 $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::TEXT[], \
                 $13::TEXT[], $14::TEXT[], $15::BIGINT[]) AS u(id, name, state, rtype, owner, \
                 private_ip, public_ip, created_at, size_gib, tags, attributes, search, \
                 fingerprint, deleted_at) WHERE r.id = u.id",
            )
            .bind(now)
            .bind(ids);
            c.bind_content(q).execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn tombstone_resources(&mut self, ids: &[i64], now: Millis) -> Result<()> {
        for chunk in ids.chunks(PG_BATCH) {
            sqlx::query("UPDATE resources SET deleted_at = $1 WHERE id = ANY($2)")
                .bind(now)
                .bind(chunk)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    async fn insert_events(
        &mut self,
        (account, region, kind): Scope<'_>,
        events: &[NewEvent],
        now: Millis,
    ) -> Result<()> {
        for chunk in events.chunks(PG_BATCH) {
            let mut ids = Vec::with_capacity(chunk.len());
            let (mut pids, mut names, mut kinds, mut changes) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for e in chunk {
                ids.push(e.resource_id);
                pids.push(e.provider_id.as_str());
                names.push(e.name.as_str());
                kinds.push(e.event);
                changes.push(e.changes_json());
            }
            // An event without an id is about a row the same listing
            // inserted: found by its provider id.
            sqlx::query(
                "INSERT INTO resource_events (resource_id, account, region, kind, provider_id, \
                 name, at, event, changes) \
                 SELECT COALESCE(u.id, (SELECT r.id FROM resources r WHERE r.account = $1 \
                 AND r.region = $2 AND r.kind = $3 AND r.provider_id = u.provider_id)), \
                 $1, $2, $3, u.provider_id, u.name, $4, u.event, u.changes \
                 FROM UNNEST($5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[]) \
                 AS u(id, provider_id, name, event, changes)",
            )
            .bind(account)
            .bind(region)
            .bind(kind)
            .bind(now)
            .bind(ids)
            .bind(pids)
            .bind(names)
            .bind(kinds)
            .bind(changes)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }
}

/// A batch's columns as arrays (PostgreSQL's UNNEST).
#[derive(Default)]
struct Columns {
    provider_id: Vec<String>,
    name: Vec<String>,
    state: Vec<String>,
    rtype: Vec<String>,
    owner: Vec<String>,
    private_ip: Vec<String>,
    public_ip: Vec<String>,
    created_at: Vec<i64>,
    size_gib: Vec<i64>,
    tags: Vec<String>,
    attributes: Vec<String>,
    search: Vec<String>,
    fingerprint: Vec<String>,
    deleted_at: Vec<Option<i64>>,
}

impl Columns {
    /// Binds the columns from `name` to `deleted_at`, in the order both
    /// statements unnest them.
    fn bind_content(
        self,
        q: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
        q.bind(self.name)
            .bind(self.state)
            .bind(self.rtype)
            .bind(self.owner)
            .bind(self.private_ip)
            .bind(self.public_ip)
            .bind(self.created_at)
            .bind(self.size_gib)
            .bind(self.tags)
            .bind(self.attributes)
            .bind(self.search)
            .bind(self.fingerprint)
            .bind(self.deleted_at)
    }

    fn push(&mut self, o: &ObservedResource, fp: &str, deleted: Option<Millis>) {
        let (tags, attributes) = json_columns(o);
        self.provider_id.push(o.provider_id.clone());
        self.name.push(o.name.clone());
        self.state.push(o.state.clone());
        self.rtype.push(o.rtype.clone());
        self.owner.push(o.owner.clone());
        self.private_ip.push(o.private_ip.clone());
        self.public_ip.push(o.public_ip.clone());
        self.created_at.push(o.created_at.unwrap_or(0));
        self.size_gib.push(o.size_gib);
        self.tags.push(tags);
        self.attributes.push(attributes);
        self.search.push(o.search_text());
        self.fingerprint.push(fp.to_owned());
        self.deleted_at.push(deleted);
    }
}
