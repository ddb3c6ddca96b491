//! DNS names of launched servers: checked at launch (the zone exists, the
//! names fit it and are free), wanted when the launch settles, and kept in
//! step with the servers by a reconciler that runs after launches and
//! actions and on a timer. It works only from skyhold's own record of what
//! it made, so a record skyhold did not make is never touched.

use super::App;
use crate::error::AppError;
use skyhold_core::blueprint::{BlueprintSpec, FieldError};
use skyhold_core::{now_millis, AccountName, Provider, ResourceKind};
use skyhold_store::DnsRecordRow;

/// What one reconciler pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnsPass {
    pub written: usize,
    pub removed: usize,
    pub waiting: usize,
    pub failed: usize,
}

impl App {
    /// The zone of a blueprint as the provider shows it, `(id, domain)`;
    /// a field error on `dns_zone` when there is none such.
    pub(super) async fn blueprint_zone(
        &self,
        provider: &dyn Provider,
        spec: &BlueprintSpec,
    ) -> Result<Option<(String, String)>, AppError> {
        if spec.dns_zone.trim().is_empty() {
            return Ok(None);
        }
        let found = tokio::time::timeout(
            self.config.action_timeout,
            provider.dns_zone(&spec.dns_zone),
        )
        .await
        .map_err(|_| AppError::Provider("Route 53 did not answer in time".into()))??;
        match found {
            Some(z) => Ok(Some(z)),
            None => Err(FieldError::new(
                "dns_zone",
                format!("no hosted zone {:?} in this account", spec.dns_zone),
            )
            .into()),
        }
    }

    /// Refuses DNS names outside the zone or in use there (by skyhold's
    /// own records, or by any record of the zone), before any call that
    /// changes something.
    pub(super) async fn check_dns_names(
        &self,
        provider: &dyn Provider,
        zone: &(String, String),
        names: &[String],
    ) -> Result<(), AppError> {
        let (zone_id, domain) = zone;
        for n in names {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            if n != *domain && !n.ends_with(&format!(".{domain}")) {
                return Err(FieldError::new(
                    "dns_name_pattern",
                    format!("{n} is not inside zone {domain}"),
                )
                .into());
            }
        }
        if let Some(taken) = self.store.dns_name_taken(zone_id, names).await? {
            return Err(AppError::NameTaken(format!(
                "{taken} is the DNS name of another server: choose another name"
            )));
        }
        for n in names {
            let exists = tokio::time::timeout(
                self.config.action_timeout,
                provider.dns_name_exists(zone_id, n),
            )
            .await
            .map_err(|_| AppError::Provider("Route 53 did not answer in time".into()))??;
            if exists {
                return Err(AppError::NameTaken(format!(
                    "zone {domain} has a record named {n} already: choose another name"
                )));
            }
        }
        Ok(())
    }

    /// One reconciler pass over skyhold's records (those of instance
    /// `only` when given): a record whose server has an address is written
    /// (or rewritten when the address changed); one whose server is gone is
    /// deleted. Idempotent; failures are recorded on the row and retried
    /// next pass.
    pub async fn reconcile_dns(&self, only: Option<&str>) -> Result<DnsPass, AppError> {
        let mut pass = DnsPass::default();
        let live = self.store.live_dns_records().await?;
        // Names that have their AAAA row already (no insert is tried for
        // them on every pass).
        let with_aaaa: std::collections::HashSet<(String, String)> = live
            .iter()
            .filter(|r| r.rtype == "AAAA")
            .map(|r| (r.zone_id.clone(), r.name.clone()))
            .collect();
        for rec in live {
            if only.is_some_and(|p| p != rec.provider_id) {
                continue;
            }
            let has_aaaa = with_aaaa.contains(&(rec.zone_id.clone(), rec.name.clone()));
            let mut next = Some(rec);
            while let Some(rec) = next.take() {
                match self.reconcile_record(&rec, has_aaaa).await {
                    Ok((step, sibling)) => {
                        match step {
                            Step::Written => pass.written += 1,
                            Step::Removed => pass.removed += 1,
                            Step::Waiting => pass.waiting += 1,
                            Step::Unchanged => {}
                        }
                        // An AAAA record the server needs now, in this pass.
                        next = sibling;
                    }
                    Err(e) => {
                        pass.failed += 1;
                        tracing::warn!(record = %rec.name, rtype = %rec.rtype, error = %e, "DNS reconcile");
                        self.store
                            .set_dns_record(
                                rec.id,
                                &rec.state,
                                &rec.value,
                                &e.to_string(),
                                now_millis(),
                            )
                            .await?;
                    }
                }
            }
        }
        Ok(pass)
    }

    /// One record's step; with, for an A record whose server has an IPv6
    /// address and no AAAA row yet (`has_aaaa`), the AAAA record newly
    /// wanted beside it.
    async fn reconcile_record(
        &self,
        rec: &DnsRecordRow,
        has_aaaa: bool,
    ) -> Result<(Step, Option<DnsRecordRow>), AppError> {
        let account = AccountName::parse(&rec.account).map_err(AppError::Conflict)?;
        let provider = self.sync.provider(&account).ok_or_else(|| {
            AppError::Conflict(format!(
                "account {} is not configured any more",
                rec.account
            ))
        })?;
        let server = self
            .store
            .resources_by_provider_ids(
                &account,
                Some(&rec.region),
                Some(ResourceKind::Instance),
                std::slice::from_ref(&rec.provider_id),
            )
            .await?
            .into_iter()
            .next();
        let alive = server.as_ref().filter(|r| {
            r.deleted_at.is_none()
                && !matches!(r.observed.state.as_str(), "terminated" | "shutting-down")
        });
        let timeout = self.config.action_timeout;
        let late = || AppError::Provider("Route 53 did not answer in time".into());
        let Some(r) = alive else {
            return self.remove_record(provider.as_ref(), rec).await;
        };
        let o = &r.observed;
        let ipv6 = o
            .attributes
            .get("ipv6_address")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        let address = match rec.rtype.as_str() {
            "AAAA" => ipv6.to_owned(),
            _ if self.config.dns_private || o.public_ip.is_empty() => o.private_ip.clone(),
            _ => o.public_ip.clone(),
        };
        let sibling = match rec.rtype.as_str() {
            "A" if !ipv6.is_empty() && !has_aaaa => {
                self.store
                    .want_sibling_record(rec, "AAAA", now_millis())
                    .await?
            }
            _ => None,
        };
        if address.is_empty() && rec.rtype == "AAAA" {
            // The server has no IPv6 address (any more): no AAAA record.
            return self.remove_record(provider.as_ref(), rec).await;
        }
        if address.is_empty() {
            return Ok((Step::Waiting, sibling));
        }
        if rec.state == "present" && rec.value == address && rec.error.is_empty() {
            return Ok((Step::Unchanged, sibling));
        }
        tokio::time::timeout(
            timeout,
            provider.change_dns_record(&rec.zone_id, &rec.name, &rec.rtype, &address, false),
        )
        .await
        .map_err(|_| late())??;
        self.store
            .set_dns_record(rec.id, "present", &address, "", now_millis())
            .await?;
        Ok((Step::Written, sibling))
    }

    /// Deletes `rec` from its zone (if it was written) and marks it
    /// removed.
    async fn remove_record(
        &self,
        provider: &dyn Provider,
        rec: &DnsRecordRow,
    ) -> Result<(Step, Option<DnsRecordRow>), AppError> {
        if rec.state == "present" {
            tokio::time::timeout(
                self.config.action_timeout,
                provider.change_dns_record(&rec.zone_id, &rec.name, &rec.rtype, &rec.value, true),
            )
            .await
            .map_err(|_| AppError::Provider("Route 53 did not answer in time".into()))??;
        }
        self.store
            .set_dns_record(rec.id, "removed", &rec.value, "", now_millis())
            .await?;
        Ok((Step::Removed, None))
    }

    /// skyhold's DNS records, newest first (the Sync page).
    pub async fn dns_records(
        &self,
        actor: &super::Actor,
        limit: i64,
    ) -> Result<Vec<DnsRecordRow>, AppError> {
        self.authorize(actor, super::Action::ViewSyncStatus, super::Object::None)
            .await?;
        Ok(self.store.dns_records(limit).await?)
    }
}

enum Step {
    Written,
    Removed,
    Waiting,
    Unchanged,
}
