//! The inventory: listings, detail pages, the dashboard, the change
//! history, sync and targeted refresh.

use super::{Action, Actor, App, Object, COUNT_CAP};
use crate::error::AppError;
use crate::sync::KindReport;
use serde::Serialize;
use skyhold_core::{
    now_millis, AccountName, Millis, Resource, ResourceId, ResourceKind, ResourceQuery,
};
use skyhold_store::{ChangeEvent, EventQuery, Page, SyncStatus};

#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub name: String,
    pub provider: String,
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    /// How credentials are obtained (never the credentials).
    pub auth: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceDetail {
    pub resource: Resource,
    /// Its change history, newest first.
    pub history: Vec<ChangeEvent>,
    /// Related resources, grouped by kind.
    pub related: Vec<(ResourceKind, Vec<Resource>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub per_kind: Vec<(String, i64)>,
    pub instances_by_state: Vec<(String, i64)>,
    pub instances_by_account: Vec<(String, i64)>,
    pub instances_by_region: Vec<(String, i64)>,
    pub instances_by_type: Vec<(String, i64)>,
    /// vCPUs and memory (MiB) of running instances of known types.
    pub running_vcpus: u64,
    pub running_memory_mib: u64,
    /// Running instances whose type's size is not known.
    pub running_unknown_type: i64,
    pub volume_gib: i64,
    pub unattached_volumes: i64,
    pub unassociated_ips: i64,
    /// Alarms whose state is ALARM.
    pub alarms_in_alarm: i64,
    /// Instances stopped for more than `stopped_days` days (up to the
    /// count cap: more reads as `COUNT_CAP` + 1).
    pub stopped_days: u32,
    pub stopped_long: i64,
    /// Resources with no owner and no grant (up to the count cap).
    pub orphans: i64,
    pub sync: Vec<SyncStatus>,
}

/// Sums `(key, count)` pairs by key, largest first (ties by key).
fn tally<'a>(pairs: impl Iterator<Item = (&'a str, i64)>) -> Vec<(String, i64)> {
    let mut m: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for (k, n) in pairs {
        *m.entry(k).or_default() += n;
    }
    let mut v: Vec<(String, i64)> = m.into_iter().map(|(k, n)| (k.to_owned(), n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

impl App {
    /// The query as the actor may run it: restricted accounts filtered out.
    fn scoped(&self, actor: &Actor, q: &ResourceQuery) -> ResourceQuery {
        let mut q = q.clone();
        q.visibility = self.visibility(actor);
        q
    }

    pub async fn list_resources(&self, actor: &Actor, q: &ResourceQuery) -> Result<Page, AppError> {
        self.authorize(actor, Action::ViewInventory, Object::None)
            .await?;
        Ok(self.store.list_resources(&self.scoped(actor, q)).await?)
    }

    pub async fn count_resources(&self, actor: &Actor, q: &ResourceQuery) -> Result<i64, AppError> {
        self.authorize(actor, Action::ViewInventory, Object::None)
            .await?;
        Ok(self
            .store
            .count_resources(&self.scoped(actor, q), COUNT_CAP)
            .await?)
    }

    /// The resource as it is after the actor's own action on it, or `None`
    /// when that action (giving it away) left it out of their sight; not a
    /// refusal, so nothing is audited.
    pub async fn resource_after_action(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<Option<Resource>, AppError> {
        let r = self.store.get_resource(id).await.map_err(|e| match e {
            skyhold_store::StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            other => other.into(),
        })?;
        Ok(self.can_see(actor, &r).then_some(r))
    }

    /// One resource, if the actor may see it (a refusal is audited).
    pub async fn visible_resource(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<Resource, AppError> {
        let r = self.store.get_resource(id).await.map_err(|e| match e {
            skyhold_store::StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            other => other.into(),
        })?;
        self.authorize(actor, Action::ViewResource, Object::Resource(&r))
            .await?;
        Ok(r)
    }

    pub async fn resource(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<ResourceDetail, AppError> {
        let r = self.visible_resource(actor, id).await?;
        let mut related = self.related(&r).await?;
        for (_, list) in &mut related {
            list.retain(|x| self.can_see(actor, x));
        }
        related.retain(|(_, list)| !list.is_empty());
        let history = self
            .store
            .list_events(&EventQuery {
                resource: Some(r.id),
                limit: 100,
                ..Default::default()
            })
            .await?;
        Ok(ResourceDetail {
            resource: r,
            history,
            related,
        })
    }

    /// The kinds synced for at least one account, in display order (all
    /// kinds when no account is configured): what the navigation shows.
    pub fn enabled_kinds(&self) -> Vec<ResourceKind> {
        if self.config.accounts.is_empty() {
            return ResourceKind::ALL.to_vec();
        }
        ResourceKind::ALL
            .into_iter()
            .filter(|k| self.config.accounts.iter().any(|a| a.kinds.contains(k)))
            .collect()
    }

    pub async fn accounts(&self, actor: &Actor) -> Result<Vec<AccountView>, AppError> {
        self.authorize(actor, Action::ViewAccounts, Object::None)
            .await?;
        Ok(self
            .config
            .accounts
            .iter()
            .filter(|a| self.can_see_account(actor, a.name.as_str()))
            .map(|a| AccountView {
                name: a.name.to_string(),
                provider: a.provider.clone(),
                regions: if a.all_enabled_regions {
                    // The regions resolved so far (none before the first
                    // resolution).
                    let mut r: Vec<String> = self
                        .sync
                        .jobs(&a.name)
                        .into_iter()
                        .map(|(region, _)| region)
                        .filter(|r| r != skyhold_core::GLOBAL_REGION)
                        .collect();
                    r.sort();
                    r.dedup();
                    r
                } else {
                    a.regions.clone()
                },
                endpoint_url: a.endpoint_url.clone(),
                auth: a.auth_summary.clone(),
            })
            .collect())
    }

    /// Change events, newest first, from raw query pairs: `since` (RFC 3339,
    /// a date, or a duration back from now such as `24h`; default 24h),
    /// `kind`, `account`, `limit` (1-1000, default 100) and `cursor`.
    /// Returns the events and the cursor of the next page.
    pub async fn changes(
        &self,
        actor: &Actor,
        pairs: &[(String, String)],
    ) -> Result<(Vec<ChangeEvent>, Option<i64>), AppError> {
        self.authorize(actor, Action::ViewInventory, Object::None)
            .await?;
        let mut q = EventQuery {
            since: now_millis() - 86_400_000,
            limit: 100,
            ..Default::default()
        };
        for (k, v) in pairs {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "since" => q.since = parse_since(v, now_millis())?,
                "kind" => {
                    q.kind = Some(ResourceKind::parse(v).ok_or_else(|| {
                        AppError::bad_parameter("kind", format!("unknown kind {v:?}"))
                    })?)
                }
                "account" => {
                    q.account = Some(
                        AccountName::parse(v).map_err(|m| AppError::bad_parameter("account", m))?,
                    )
                }
                "limit" => q.limit = crate::error::page_limit(v)?,
                "cursor" => {
                    q.before_id = Some(v.parse().map_err(|_| {
                        AppError::bad_parameter("cursor", "use next_cursor as given")
                    })?)
                }
                other => return Err(AppError::bad_parameter(other, "unknown parameter")),
            }
        }
        let mut events = self.store.list_events(&q).await?;
        let next = if events.len() > q.limit as usize {
            events.truncate(q.limit as usize);
            events.last().map(|e| e.id)
        } else {
            None
        };
        // Events of restricted accounts show only for what the actor may
        // see there (granted resources; owned ones need the row).
        if let Some(v) = self.visibility(actor) {
            let mut kept = Vec::with_capacity(events.len());
            for e in events {
                let visible = !v.hidden_accounts.contains(&e.account)
                    || e.resource_id.is_some_and(|id| v.granted_ids.contains(&id));
                let owned = !visible
                    && match e.resource_id {
                        Some(id) => self
                            .store
                            .get_resource(id)
                            .await
                            .is_ok_and(|r| self.can_see(actor, &r)),
                        None => false,
                    };
                if visible || owned {
                    kept.push(e);
                }
            }
            events = kept;
        }
        Ok((events, next))
    }

    /// Targeted refresh: reads one resource afresh from its provider and
    /// applies the result to its row alone (a change event when it changed,
    /// a tombstone when it is gone). Returns the updated resource.
    pub async fn refresh_resource(
        &self,
        actor: &Actor,
        id: ResourceId,
    ) -> Result<Resource, AppError> {
        let r = self.store.get_resource(id).await.map_err(|e| match e {
            skyhold_store::StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            other => other.into(),
        })?;
        self.authorize(actor, Action::RefreshResource, Object::Resource(&r))
            .await?;
        tracing::info!(user = ?actor.username, resource = %id, kind = %r.observed.kind, "refresh requested");
        self.reread(&r).await
    }

    pub async fn sync_status(&self, actor: &Actor) -> Result<Vec<SyncStatus>, AppError> {
        self.authorize(actor, Action::ViewSyncStatus, Object::None)
            .await?;
        let mut rows = self.store.sync_statuses().await?;
        rows.retain(|r| self.can_see_account(actor, &r.account));
        Ok(rows)
    }

    /// Starts a sync of every account (or one). With `wait`, returns the
    /// per-listing reports when done; otherwise returns at once.
    pub async fn trigger_sync(
        &self,
        actor: &Actor,
        account: Option<&str>,
        wait: bool,
    ) -> Result<Option<Vec<KindReport>>, AppError> {
        self.authorize(actor, Action::TriggerSync, Object::None)
            .await?;
        let account = match account.map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => {
                let name =
                    AccountName::parse(a).map_err(|m| AppError::bad_parameter("account", m))?;
                if self.config.account(&name).is_none() {
                    return Err(AppError::NotFound(format!("account {name}")));
                }
                Some(name)
            }
        };
        tracing::info!(user = %actor.username, account = ?account.as_ref().map(|a| a.to_string()), wait, "sync requested");
        if wait {
            Ok(Some(self.sync.run(account.as_ref()).await))
        } else {
            let engine = self.sync.clone();
            tokio::spawn(async move {
                engine.run(account.as_ref()).await;
            });
            Ok(None)
        }
    }

    /// How many resources the actor sees that match `search` (written by
    /// skyhold, so it parses), counted up to `COUNT_CAP` + 1.
    async fn bounded_count(&self, actor: &Actor, search: &str) -> Result<i64, AppError> {
        let q = ResourceQuery {
            search: skyhold_core::search::parse(search, now_millis())
                .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?,
            ..Default::default()
        };
        Ok(self
            .store
            .count_resources(&self.scoped(actor, &q), COUNT_CAP)
            .await?)
    }

    pub async fn dashboard(&self, actor: &Actor) -> Result<Dashboard, AppError> {
        self.authorize(actor, Action::ViewInventory, Object::None)
            .await?;
        let s = &self.store;
        // Every count comes from the summary table the store keeps as rows
        // change (a few hundred rows), not from scanning resources.
        let mut summary = s.summary().await?;
        let vis = self.visibility(actor);
        if let Some(v) = &vis {
            summary.retain(|r| !v.hidden_accounts.contains(&r.account));
        }
        let of_kind = |kind: &'static str| summary.iter().filter(move |r| r.kind == kind);
        let count_of = |kind: &'static str, state: &str| {
            of_kind(kind)
                .filter(|r| r.state == state)
                .map(|r| r.count)
                .sum::<i64>()
        };
        let (mut vcpus, mut memory, mut unknown) = (0u64, 0u64, 0i64);
        for g in of_kind("instance").filter(|g| g.state == "running") {
            match skyhold_core::instance_types::specs(&g.rtype) {
                Some(sp) => {
                    vcpus += u64::from(sp.vcpus) * g.count as u64;
                    memory += sp.memory_mib * g.count as u64;
                }
                None => unknown += g.count,
            }
        }
        let stopped_days = self.config.stopped_days;
        // The two bounded counts and the sync status at once: each waits on
        // the database, and at a million resources the counts take 5 to 20
        // ms each.
        let stopped_search = format!("kind:instance stopped>{stopped_days}d");
        let (stopped_long, orphans, sync) = tokio::try_join!(
            self.bounded_count(actor, &stopped_search),
            self.bounded_count(actor, "is:orphan"),
            self.sync_status(actor),
        )?;
        let instances = || of_kind("instance");
        Ok(Dashboard {
            per_kind: tally(summary.iter().map(|r| (r.kind.as_str(), r.count))),
            instances_by_state: tally(instances().map(|g| (g.state.as_str(), g.count))),
            instances_by_account: tally(instances().map(|g| (g.account.as_str(), g.count))),
            instances_by_region: tally(instances().map(|g| (g.region.as_str(), g.count))),
            instances_by_type: tally(instances().map(|g| (g.rtype.as_str(), g.count))),
            running_vcpus: vcpus,
            running_memory_mib: memory,
            running_unknown_type: unknown,
            volume_gib: of_kind("volume").map(|r| r.size_gib).sum(),
            unattached_volumes: count_of("volume", "available"),
            unassociated_ips: count_of("elastic_ip", "unassociated"),
            alarms_in_alarm: count_of("alarm", "alarm"),
            stopped_days,
            // Both counted up to the cap, as a list page's total is: an
            // exact count reads every long-stopped instance (100 ms and
            // more at a million resources on PostgreSQL; PERFORMANCE.md).
            stopped_long,
            orphans,
            sync,
        })
    }
}

/// `since` for the change history: RFC 3339, a date (midnight UTC), or a
/// duration back from `now` (`24h`, `7d`).
pub fn parse_since(v: &str, now: Millis) -> Result<Millis, AppError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis()));
    }
    if let Ok(d) = humantime::parse_duration(v) {
        return Ok(now.saturating_sub(d.as_millis() as i64));
    }
    Err(AppError::bad_parameter(
        "since",
        format!("{v:?} is not a time (2026-01-31, RFC 3339) or a duration back from now (24h, 7d)"),
    ))
}
