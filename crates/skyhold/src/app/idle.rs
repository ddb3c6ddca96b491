//! The idle policy's evaluation: every running instance whose rules
//! (blueprint over account over global `[policies.idle]`) set a CPU
//! threshold is judged by its CloudWatch metrics, read with GetMetricData
//! in batches per account and region ([`skyhold_core::idle`] decides).
//! Instances without datapoints are reported as "no data", never stopped.
//! The pass itself (caps, holds, warnings through the outbox, stops
//! through the pipeline, re-checks) is the policies module's, shared with
//! the expiry policy.

use super::actions::display_name;
use super::expiry::KeepStatus;
use super::policies::{
    is_done, Done, Evaluation, Exempt, PolicyDecision, IDLE, PREVIEW_HORIZON_MS,
};
use super::App;
use crate::error::AppError;
use skyhold_core::idle::{self, IdleEffective, IdleRules, IdleStep, Verdict};
use skyhold_core::{rfc3339, Millis, Resource};
use std::collections::{BTreeMap, HashMap};

/// The metrics' period: CloudWatch's basic monitoring (5 minutes), or a
/// minute for windows too short to hold a few of those (a period longer
/// than the window returns nothing).
fn period_s(window_ms: i64) -> i32 {
    if window_ms < 20 * 60_000 {
        60
    } else {
        300
    }
}

impl App {
    /// The idle rules of one instance, or `None` where the policy is off.
    fn idle_rules_for(
        &self,
        r: &Resource,
        blueprints: &HashMap<String, IdleRules>,
        global: &IdleRules,
    ) -> Option<IdleEffective> {
        let account = self
            .config
            .account(&r.account)
            .map(|a| a.policies.idle.clone())
            .unwrap_or_default();
        let blueprint = super::policies::blueprint_name(r)
            .and_then(|n| blueprints.get(n))
            .cloned()
            .unwrap_or_default();
        blueprint.over(&account.over(global)).effective()
    }

    async fn idle_blueprint_rules(&self) -> Result<HashMap<String, IdleRules>, AppError> {
        Ok(self
            .store
            .list_blueprints()
            .await?
            .into_iter()
            .filter(|b| !b.spec.idle_policy.is_empty())
            .map(|b| (b.spec.name.clone(), b.spec.idle_policy))
            .collect())
    }

    /// Every running instance judged, and the steps recorded so far.
    pub(super) async fn evaluate_idle(&self, now: Millis) -> Result<(Evaluation, Done), AppError> {
        let done = self.steps_done(IDLE).await?;
        let instances = self.store.running_instances().await?;
        let global = self.config.policies.idle.clone();
        let eval = self
            .evaluate_idle_of(&instances, &done, now, &global)
            .await?;
        Ok((eval, done))
    }

    /// Judges `instances` (running ones) at `now`.
    pub(super) async fn evaluate_idle_of(
        &self,
        instances: &[Resource],
        done: &Done,
        now: Millis,
        global: &IdleRules,
    ) -> Result<Evaluation, AppError> {
        let blueprints = self.idle_blueprint_rules().await?;
        let mut groups: BTreeMap<(String, String), Vec<(&Resource, IdleEffective)>> =
            BTreeMap::new();
        for r in instances {
            if r.deleted_at.is_some() || r.observed.state != "running" {
                continue;
            }
            if let Some(rules) = self.idle_rules_for(r, &blueprints, global) {
                groups
                    .entry((r.account.to_string(), r.region.clone()))
                    .or_default()
                    .push((r, rules));
            }
        }
        let mut out = Evaluation::default();
        for ((_, region), items) in groups {
            let exempt = |r: &Resource, why: String| Exempt {
                resource_id: r.id,
                name: display_name(&r.observed).to_owned(),
                account: r.account.to_string(),
                owner: r.observed.owner.clone(),
                why,
            };
            let longest = items.iter().map(|(_, x)| x.for_ms).max().unwrap_or(0);
            let network = items.iter().any(|(_, x)| x.network_below_bytes.is_some());
            let ids: Vec<String> = items
                .iter()
                .map(|(r, _)| r.observed.provider_id.clone())
                .collect();
            let asked = std::time::Instant::now();
            let metrics = match self.sync.provider(&items[0].0.account) {
                None => Err("the account is not configured any more".to_owned()),
                Some(p) => p
                    .instance_metrics(
                        &region,
                        &ids,
                        now - longest,
                        now,
                        period_s(longest),
                        network,
                    )
                    .await
                    .map_err(|e| e.to_string()),
            };
            out.provider_ms += asked.elapsed().as_millis() as u64;
            for (r, rules) in &items {
                out.candidates += 1;
                let m = match &metrics {
                    Ok(m) => m.get(&r.observed.provider_id).cloned().unwrap_or_default(),
                    Err(e) => {
                        out.exempt
                            .push(exempt(r, format!("no data: metrics unavailable: {e}")));
                        continue;
                    }
                };
                if let KeepStatus::Trusted { reason, by, .. } = self.keep_status(r).await? {
                    out.exempt.push(exempt(
                        r,
                        if by.is_empty() {
                            format!("kept ({reason}; the account trusts keep tags)")
                        } else {
                            format!("kept by {by}: {reason}")
                        },
                    ));
                    continue;
                }
                // Time stopped never counts: the window starts at the
                // last start (EC2's launch time), else when first seen.
                let since = r
                    .observed
                    .created_at
                    .filter(|t| *t > 0)
                    .unwrap_or(r.first_seen);
                let verdict = idle::judge(rules, since, now, &m.cpu, &m.network_bytes);
                if verdict == Verdict::NoData {
                    out.exempt.push(exempt(
                        r,
                        format!(
                            "no data: no CloudWatch datapoints in the last {}",
                            idle::human((now - since).min(rules.for_ms))
                        ),
                    ));
                    continue;
                }
                // This running period's warning, if any (keyed by its start).
                let warned = done
                    .get(&(r.id, "warn".to_owned(), since))
                    .filter(|s| s.state == "sent")
                    .map(|s| s.created_at);
                let reason = idle::reason(rules, &verdict);
                let decision =
                    |step: &str, due_ms: Millis, shown: Millis, stop_at: Millis| PolicyDecision {
                        policy: IDLE,
                        resource_id: r.id,
                        provider_id: r.observed.provider_id.clone(),
                        name: r.observed.name.clone(),
                        kind: r.observed.kind.as_str().to_owned(),
                        account: r.account.to_string(),
                        region: r.region.clone(),
                        owner: r.observed.owner.clone(),
                        step: step.to_owned(),
                        step_key: step.to_owned(),
                        due_at: rfc3339(shown),
                        due_ms,
                        expires_at: String::new(),
                        stop_at: Some(rfc3339(stop_at)),
                        final_snapshot: false,
                        mode: rules.mode.as_str().to_owned(),
                        reason: match (step, warned) {
                            ("stop", Some(w)) => {
                                format!("{reason}, warned {} before", idle::human(now - w))
                            }
                            _ => reason.clone(),
                        },
                        untrusted_keep: None,
                        outcome: String::new(),
                    };
                match idle::due(rules, &verdict, since, now, warned) {
                    Some(IdleStep::Warn { stop_at }) => {
                        out.due.push(decision("warn", since, now, stop_at));
                        // For the preview: the stop that follows if it stays idle.
                        if stop_at <= now + PREVIEW_HORIZON_MS {
                            out.upcoming
                                .push(decision("stop", stop_at, stop_at, stop_at));
                        }
                    }
                    Some(IdleStep::Stop { due_at })
                        if !is_done(done.get(&(r.id, "stop".to_owned(), due_at))) =>
                    {
                        out.due.push(decision("stop", due_at, due_at, due_at));
                    }
                    None if matches!(verdict, Verdict::Idle { .. }) => {
                        if let Some(stop_at) = warned
                            .map(|w| w + rules.warn_before_ms)
                            .filter(|t| *t > now && *t <= now + PREVIEW_HORIZON_MS)
                        {
                            out.upcoming
                                .push(decision("stop", stop_at, stop_at, stop_at));
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

impl App {
    /// Whether any level sets idle rules (else the timer skips the pass).
    pub async fn idle_configured(&self) -> bool {
        !self.config.policies.idle.is_empty()
            || self
                .config
                .accounts
                .iter()
                .any(|a| !a.policies.idle.is_empty())
            || self
                .idle_blueprint_rules()
                .await
                .is_ok_and(|b| !b.is_empty())
    }
}

impl App {
    /// Whether the latest idle pass reported this instance as "no data".
    pub async fn idle_no_data(&self, id: skyhold_core::ResourceId) -> bool {
        let Ok(runs) = self.store.policy_runs(None, 20).await else {
            return false;
        };
        runs.iter()
            .find(|r| r.policy == IDLE && r.state != "running")
            .and_then(|r| r.counts["no_data_ids"].as_array().cloned())
            .is_some_and(|ids| ids.iter().any(|v| v.as_i64() == Some(id.0)))
    }
}
