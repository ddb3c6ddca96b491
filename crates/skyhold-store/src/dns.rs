//! skyhold's own record of the DNS records it made for launched servers:
//! the reconciler compares these rows with the inventory and the zone, and
//! never touches a record that has no row here.

use crate::{on_pool, ReadRow, Result, Store};
use skyhold_core::{LaunchId, Millis};

/// One DNS record skyhold made (or will make).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsRecordRow {
    pub id: i64,
    pub account: String,
    pub region: String,
    pub zone_id: String,
    pub name: String,
    pub rtype: String,
    /// The instance it names.
    pub provider_id: String,
    pub launch_id: Option<LaunchId>,
    /// The address written ('' before it is).
    pub value: String,
    /// `wanted`, `present` or `removed`.
    pub state: String,
    pub error: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A record to make for a new server.
#[derive(Debug, Clone)]
pub struct WantedRecord {
    pub zone_id: String,
    pub name: String,
    /// The server's index in its launch.
    pub index: u32,
}

const COLS: &str =
    "id, account, region, zone_id, name, rtype, provider_id, launch_id, value, state, \
    error, created_at, updated_at";

fn record_from_row(r: &impl ReadRow) -> Result<DnsRecordRow> {
    Ok(DnsRecordRow {
        id: r.int("id")?,
        account: r.text("account")?,
        region: r.text("region")?,
        zone_id: r.text("zone_id")?,
        name: r.text("name")?,
        rtype: r.text("rtype")?,
        provider_id: r.text("provider_id")?,
        launch_id: r.opt_int("launch_id")?.map(LaunchId),
        value: r.text("value")?,
        state: r.text("state")?,
        error: r.text("error")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

/// Inserts the wanted records of a settled launch inside `$tx`:
/// `$servers` pairs each server index with its instance id.
macro_rules! want_records_in {
    ($tx:expr, $launch:expr, $records:expr, $servers:expr, $now:expr) => {{
        let launch: &crate::LaunchRow = $launch;
        let mut r: Result<()> = Ok(());
        for w in $records {
            let w: &crate::WantedRecord = w;
            let Some(pid) = $servers.iter().find(|(i, _)| *i == w.index).map(|(_, p)| p) else {
                continue;
            };
            if let Err(e) = sqlx::query(
                "INSERT INTO dns_records (account, region, zone_id, name, rtype, provider_id, launch_id, value, \
                 state, error, created_at, updated_at) VALUES ($1, $2, $3, $4, 'A', $5, $6, '', 'wanted', '', $7, $7)",
            )
            .bind(&launch.account)
            .bind(&launch.region)
            .bind(&w.zone_id)
            .bind(&w.name)
            .bind(pid)
            .bind(launch.id.0)
            .bind($now)
            .execute(&mut *$tx)
            .await
            {
                r = Err(crate::map_unique(e, "a DNS record of this name"));
                break;
            }
        }
        r
    }};
}
pub(crate) use want_records_in;

impl Store {
    /// The records that are wanted or present (the reconciler's work).
    pub async fn live_dns_records(&self) -> Result<Vec<DnsRecordRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!(
                "SELECT {COLS} FROM dns_records WHERE state <> 'removed' ORDER BY id"
            ))
            .fetch_all(p)
            .await?;
            rows.iter().map(record_from_row).collect()
        })
    }

    /// Every record, newest first (for the Sync page), at most `limit`.
    pub async fn dns_records(&self, limit: i64) -> Result<Vec<DnsRecordRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(&format!("SELECT {COLS} FROM dns_records ORDER BY id DESC LIMIT $1"))
                .bind(limit)
                .fetch_all(p)
                .await?;
            rows.iter().map(record_from_row).collect()
        })
    }

    /// Records what the reconciler did with one record.
    pub async fn set_dns_record(
        &self,
        id: i64,
        state: &str,
        value: &str,
        error: &str,
        now: Millis,
    ) -> Result<()> {
        on_pool!(self, p => {
            sqlx::query("UPDATE dns_records SET state = $1, value = $2, error = $3, updated_at = $4 WHERE id = $5")
                .bind(state)
                .bind(value)
                .bind(error)
                .bind(now)
                .bind(id)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Adds a `wanted` record of type `rtype` beside `of` (same zone,
    /// name, instance and launch), unless a live one exists already.
    /// Returns the new row, `None` when there was one.
    pub async fn want_sibling_record(
        &self,
        of: &DnsRecordRow,
        rtype: &str,
        now: Millis,
    ) -> Result<Option<DnsRecordRow>> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!(
                "INSERT INTO dns_records (account, region, zone_id, name, rtype, provider_id, launch_id, value, \
                 state, error, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, '', 'wanted', '', $8, $8) \
                 ON CONFLICT DO NOTHING RETURNING {COLS}"
            ))
            .bind(&of.account)
            .bind(&of.region)
            .bind(&of.zone_id)
            .bind(&of.name)
            .bind(rtype)
            .bind(&of.provider_id)
            .bind(of.launch_id.map(|l| l.0))
            .bind(now)
            .fetch_optional(p)
            .await?;
            row.as_ref().map(record_from_row).transpose()
        })
    }

    /// The first of `names` that a live record of zone `zone_id` has.
    pub async fn dns_name_taken(&self, zone_id: &str, names: &[String]) -> Result<Option<String>> {
        let live = self.live_dns_records().await?;
        Ok(names
            .iter()
            .find(|n| {
                live.iter()
                    .any(|r| r.zone_id == zone_id && r.name.eq_ignore_ascii_case(n))
            })
            .cloned())
    }
}
