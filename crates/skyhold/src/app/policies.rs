//! The expiry policy as a reconciler: each pass (on a timer, on demand,
//! or to carry out a held pass an admin confirmed) reads every live
//! resource with an expiry, works out its ladder (the rules of its
//! blueprint over its account's over the global ones, see
//! [`skyhold_core::policy`]) and takes the one step that is due
//! ([`skyhold_core::ladder::due`]): a warning into the outbox, or a stop
//! or deletion through the action pipeline under the idempotency key
//! `policy:expiry:r<id>:<step>@<deadline>#<attempt>`.
//!
//! Safety: a resource is re-read from its provider and re-evaluated right
//! before it is acted on; `dry-run` rules record what they would do and
//! do nothing; a pass that would stop or delete more than
//! `max_actions_per_pass` acts on none of them, alerts the admins and
//! waits for a confirmation. Steps are recorded once per (policy,
//! resource, step, deadline), so a rerun or a second replica never takes
//! one twice.

use super::access::{Action, Actor, Object};
use super::actions::{display_name, Op};
use super::expiry::KeepStatus;
use super::App;
use crate::error::AppError;
use serde::Serialize;
use skyhold_core::expiry::{Expiry, EXPIRABLE, EXPIRES_TAG};
use skyhold_core::ladder::{self, Step};
use skyhold_core::launch::BLUEPRINT_TAG;
use skyhold_core::policy::{Effective, ExpiryRules, Mode};
use skyhold_core::search::format_duration;
use skyhold_core::{rfc3339, Millis, PowerAction, Resource, ResourceId, ResourceKind};
use skyhold_store::{
    NewExtendLink, NewNotification, NewStep, NewWarning, PolicyRun, StepRow, StoreError,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How an outcome is counted in a pass's totals.
fn tally(outcome: &str, step: &str) -> &'static str {
    match outcome.split(':').next().unwrap_or_default() {
        "would" => "would",
        "held" => "held",
        "deferred" => "deferred",
        "failed" => "failed",
        "skipped" => "skipped",
        _ => match step {
            "warn" => "warned",
            "stop" => "stopped",
            _ => "terminated",
        },
    }
}

/// A warning of a pass, owned until the pass writes its warnings.
struct Warning {
    policy: &'static str,
    resource_id: ResourceId,
    step: String,
    due_at: Millis,
    run_id: i64,
    reason: String,
    key: String,
    kind: &'static str,
    recipient: String,
    email: String,
    subject: String,
    body: serde_json::Value,
    channels: Vec<String>,
    /// The extend link's token hash (expiry warnings).
    extend_link: Option<String>,
    link_expires_at: Millis,
}

impl Warning {
    fn as_new(&self) -> NewWarning<'_> {
        NewWarning {
            step: NewStep {
                policy: self.policy,
                resource_id: self.resource_id,
                step: &self.step,
                due_at: self.due_at,
                run_id: self.run_id,
                state: "sent",
                attempts: 1,
                action_id: None,
                reason: &self.reason,
            },
            notification: NewNotification {
                dedupe_key: &self.key,
                kind: self.kind,
                recipient: &self.recipient,
                email: &self.email,
                subject: &self.subject,
                body: &self.body,
                resource_id: Some(self.resource_id),
                channels: &self.channels,
            },
            extend_link: self.extend_link.as_deref().map(|h| NewExtendLink {
                token_hash: h,
                extend_ms: super::expiry::LINK_EXTEND_MS,
                expires_at: self.link_expires_at,
            }),
        }
    }
}

/// The expiry policy's name (in runs, steps and keys).
pub const EXPIRY: &str = "expiry";
/// The idle policy's name.
pub const IDLE: &str = "idle";

/// How many times a failed stop or deletion is tried (one per pass).
const MAX_ATTEMPTS: i64 = 3;

/// How far ahead the preview looks.
pub const PREVIEW_HORIZON_MS: i64 = 24 * 3_600_000;

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Timer,
    Demand,
    /// Carrying out a held pass (its id).
    Confirm(i64),
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::Timer => "timer",
            Cause::Demand => "demand",
            Cause::Confirm(_) => "confirm",
        }
    }
}

/// One step of one resource's ladder that a pass takes (or would).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PolicyDecision {
    /// `expiry` or `idle`.
    pub policy: &'static str,
    pub resource_id: ResourceId,
    pub provider_id: String,
    pub name: String,
    pub kind: String,
    pub account: String,
    pub region: String,
    pub owner: String,
    /// `warn`, `stop` or `terminate`.
    pub step: String,
    /// The step as keyed (`warn:86400000`, `stop`, `terminate`).
    #[serde(skip)]
    pub step_key: String,
    /// When the step is due (RFC 3339).
    pub due_at: String,
    #[serde(skip)]
    pub due_ms: Millis,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub expires_at: String,
    /// The idle policy: when the instance is (or was due to be) stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_at: Option<String>,
    /// Deletion only: a final snapshot first.
    pub final_snapshot: bool,
    /// `enforce` or `dry-run` (the rules of this resource).
    pub mode: String,
    /// Why, in words (`expired: expires-at … passed, warned 24h and 1h
    /// before`).
    pub reason: String,
    /// A keep tag that is not honoured, reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untrusted_keep: Option<String>,
    /// What became of it: `sent`, `done`, `failed: …`, `would`, `held`,
    /// `skipped: …`, `deferred`.
    pub outcome: String,
}

impl PolicyDecision {
    fn destructive(&self) -> bool {
        self.step != "warn"
    }
}

/// A resource left alone, and why (kept, never, unreadable tag).
#[derive(Debug, Clone, Serialize)]
pub struct Exempt {
    pub resource_id: ResourceId,
    pub name: String,
    pub account: String,
    pub owner: String,
    pub why: String,
}

/// Everything a pass (or the preview) finds.
#[derive(Debug, Default)]
pub(super) struct Evaluation {
    pub(super) candidates: usize,
    pub(super) due: Vec<PolicyDecision>,
    pub(super) upcoming: Vec<PolicyDecision>,
    /// Steps a late pass overtook (never taken later): (resource, key, due).
    pub(super) overtaken: Vec<(ResourceId, String, Millis)>,
    pub(super) exempt: Vec<Exempt>,
    /// Time spent waiting for the provider while evaluating (metrics).
    pub(super) provider_ms: u64,
}

/// The preview: what the rules (as configured, or with a change) would
/// do now and within the next 24 hours.
#[derive(Debug, Serialize)]
pub struct Preview {
    /// `expiry` or `idle`.
    pub policy: String,
    #[serde(rename = "generated_at")]
    pub now: String,
    pub horizon: String,
    pub candidates: usize,
    pub now_items: Vec<PolicyDecision>,
    pub next_24h: Vec<PolicyDecision>,
    /// Counts by owner, account and step: `{owner, account, step, now,
    /// next_24h}`.
    pub by_owner_account: Vec<PreviewCount>,
    pub exempt: Vec<Exempt>,
    /// The global rules the preview used (with the change applied).
    pub rules: serde_json::Value,
}

/// A preview from an evaluation at `now` with a horizon.
fn preview_of(policy: &str, eval: Evaluation, now: Millis, rules: serde_json::Value) -> Preview {
    let mut counts: BTreeMap<(String, String, String), (usize, usize)> = BTreeMap::new();
    for d in &eval.due {
        counts
            .entry((d.owner.clone(), d.account.clone(), d.step.clone()))
            .or_default()
            .0 += 1;
    }
    for d in &eval.upcoming {
        counts
            .entry((d.owner.clone(), d.account.clone(), d.step.clone()))
            .or_default()
            .1 += 1;
    }
    let mut due = eval.due;
    for d in &mut due {
        d.outcome = if d.mode == Mode::DryRun.as_str() {
            "would (dry-run)".into()
        } else {
            "due".into()
        };
    }
    let mut upcoming = eval.upcoming;
    upcoming.sort_by_key(|d| d.due_ms);
    Preview {
        policy: policy.to_owned(),
        now: rfc3339(now),
        horizon: rfc3339(now + PREVIEW_HORIZON_MS),
        candidates: eval.candidates,
        now_items: due,
        next_24h: upcoming,
        by_owner_account: counts
            .into_iter()
            .map(|((owner, account, step), (n, u))| PreviewCount {
                owner,
                account,
                step,
                now: n,
                next_24h: u,
            })
            .collect(),
        exempt: eval.exempt,
        rules,
    }
}

#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PreviewCount {
    pub owner: String,
    pub account: String,
    pub step: String,
    pub now: usize,
    pub next_24h: usize,
}

fn step_key(s: Step) -> String {
    match s {
        Step::Warn { before_ms } => format!("warn:{before_ms}"),
        other => other.as_str().to_owned(),
    }
}

/// Whether the resource is in a state a stop applies to.
fn running(r: &Resource) -> bool {
    let s = r.observed.state.as_str();
    match r.observed.kind {
        ResourceKind::Instance => matches!(s, "pending" | "running"),
        ResourceKind::DbInstance => !matches!(
            s,
            "stopped" | "stopping" | "deleting" | "failed" | "inaccessible-encryption-credentials"
        ),
        _ => true,
    }
}

/// Minutes-rounded time for the words of a reason (`2026-12-03T10:00Z`).
fn short_time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .unwrap_or_default()
}

/// The recorded steps of one policy, by (resource, key, deadline).
pub(super) type Done = HashMap<(ResourceId, String, Millis), StepRow>;

pub(super) fn is_done(row: Option<&StepRow>) -> bool {
    match row {
        None => false,
        Some(s) => match s.state.as_str() {
            "acting" => false,
            "failed" => s.attempts >= MAX_ATTEMPTS,
            _ => true,
        },
    }
}

impl App {
    /// The expiry rules of one resource: its blueprint's (by the
    /// `skyhold:blueprint` tag, as the blueprint is now) over its
    /// account's over the global ones (`global` replaces the configured
    /// global rules, for a preview of a change).
    fn rules_for(
        &self,
        r: &Resource,
        blueprints: &HashMap<String, ExpiryRules>,
        global: &ExpiryRules,
    ) -> Effective {
        let account = self
            .config
            .account(&r.account)
            .map(|a| a.policies.expiry.clone())
            .unwrap_or_default();
        let blueprint = blueprint_name(r)
            .and_then(|n| blueprints.get(n))
            .cloned()
            .unwrap_or_default();
        blueprint.over(&account.over(global)).effective()
    }

    /// A policy's recorded steps, by (resource, key, deadline).
    pub(super) async fn steps_done(&self, policy: &str) -> Result<Done, AppError> {
        Ok(self
            .store
            .policy_steps(policy)
            .await?
            .into_iter()
            .map(|s| ((s.resource_id, s.step.clone(), s.due_at), s))
            .collect())
    }

    async fn blueprint_rules(&self) -> Result<HashMap<String, ExpiryRules>, AppError> {
        Ok(self
            .store
            .list_blueprints()
            .await?
            .into_iter()
            .filter(|b| !b.spec.expiry_policy.is_empty())
            .map(|b| (b.spec.name.clone(), b.spec.expiry_policy))
            .collect())
    }

    /// Reads every candidate and works out what is due now and (for the
    /// preview) what falls due before `horizon`.
    async fn evaluate(
        &self,
        global: &ExpiryRules,
        now: Millis,
        horizon: Option<Millis>,
    ) -> Result<(Evaluation, Done), AppError> {
        let kinds: Vec<&str> = EXPIRABLE.iter().map(|k| k.as_str()).collect();
        let resources = self.store.resources_tagged(&kinds, EXPIRES_TAG).await?;
        let done = self.steps_done(EXPIRY).await?;
        let blueprints = self.blueprint_rules().await?;
        let mut out = Evaluation::default();
        for r in &resources {
            let rules = self.rules_for(r, &blueprints, global);
            let keep = self.keep_status(r).await?;
            self.evaluate_one(r, &rules, &keep, &done, now, horizon, &mut out);
        }
        Ok((out, done))
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate_one(
        &self,
        r: &Resource,
        rules: &Effective,
        keep: &KeepStatus,
        done: &Done,
        now: Millis,
        horizon: Option<Millis>,
        out: &mut Evaluation,
    ) {
        let exempt = |why: String| Exempt {
            resource_id: r.id,
            name: display_name(&r.observed).to_owned(),
            account: r.account.to_string(),
            owner: r.observed.owner.clone(),
            why,
        };
        let expires_at =
            match Expiry::from_tag(r.observed.tags.get(EXPIRES_TAG).map(String::as_str)) {
                Expiry::At(t) => t,
                Expiry::Never => return,
                Expiry::Unset => return,
                Expiry::Unreadable => {
                    out.exempt.push(exempt(format!(
                        "unreadable {EXPIRES_TAG} tag {:?} (not RFC 3339 or never)",
                        skyhold_core::clip(&r.observed.tags[EXPIRES_TAG], 64)
                    )));
                    return;
                }
            };
        out.candidates += 1;
        let untrusted_keep = match keep {
            KeepStatus::Trusted { reason, by, .. } => {
                out.exempt.push(exempt(if by.is_empty() {
                    format!("kept ({reason}; the account trusts keep tags)")
                } else {
                    format!("kept by {by}: {reason}")
                }));
                return;
            }
            KeepStatus::Untrusted { reason } => Some(reason.clone()),
            KeepStatus::None => None,
        };
        let schedule = ladder::schedule(&rules.ladder(), r.observed.kind, expires_at);
        let is = |at: Millis, s: Step| is_done(done.get(&(r.id, step_key(s), at)));
        let decision = |at: Millis, s: Step| {
            let warned: Vec<String> = schedule
                .iter()
                .filter_map(|(wat, ws)| match ws {
                    Step::Warn { before_ms } if *wat <= at => done
                        .get(&(r.id, step_key(*ws), *wat))
                        .filter(|row| row.state == "sent")
                        .map(|_| format_duration(*before_ms)),
                    _ => None,
                })
                .collect();
            let warned = if warned.is_empty() {
                "no warning was sent".to_owned()
            } else {
                format!("warned {} before", warned.join(" and "))
            };
            let reason = match s {
                Step::Warn { before_ms } => format!(
                    "expires: expires-at {} in {}",
                    short_time(expires_at),
                    format_duration(before_ms)
                ),
                Step::Stop => format!(
                    "expired: expires-at {} passed, {warned}",
                    short_time(expires_at)
                ),
                Step::Terminate { snapshot } => format!(
                    "expired: expires-at {} passed {} ago, {warned}; deleted{}",
                    short_time(expires_at),
                    format_duration(at - expires_at),
                    if snapshot && has_data(r.observed.kind) {
                        " after a final snapshot"
                    } else {
                        ""
                    }
                ),
            };
            PolicyDecision {
                policy: EXPIRY,
                resource_id: r.id,
                provider_id: r.observed.provider_id.clone(),
                name: r.observed.name.clone(),
                kind: r.observed.kind.as_str().to_owned(),
                account: r.account.to_string(),
                region: r.region.clone(),
                owner: r.observed.owner.clone(),
                step: s.as_str().to_owned(),
                step_key: step_key(s),
                due_at: rfc3339(at),
                due_ms: at,
                expires_at: rfc3339(expires_at),
                stop_at: None,
                final_snapshot: matches!(s, Step::Terminate { snapshot: true })
                    && has_data(r.observed.kind),
                mode: rules.mode.as_str().to_owned(),
                reason,
                untrusted_keep: untrusted_keep.clone(),
                outcome: String::new(),
            }
        };
        if let Some(((at, s), overtaken)) = ladder::due(&schedule, now, running(r), is) {
            out.overtaken
                .extend(overtaken.iter().map(|(a, s)| (r.id, step_key(*s), *a)));
            out.due.push(decision(at, s));
        }
        if let Some(h) = horizon {
            for (at, s) in &schedule {
                if *at > now && *at <= h && !is(*at, *s) {
                    out.upcoming.push(decision(*at, *s));
                }
            }
        }
    }

    /// One pass of the expiry policy. Returns its recorded run.
    pub async fn run_expiry_pass(
        self: &Arc<Self>,
        cause: Cause,
        requested_by: &str,
    ) -> Result<PolicyRun, AppError> {
        self.run_policy_pass(EXPIRY, cause, requested_by).await
    }

    /// One pass of `policy` (`expiry` or `idle`). Returns its recorded run.
    pub async fn run_policy_pass(
        self: &Arc<Self>,
        policy: &'static str,
        cause: Cause,
        requested_by: &str,
    ) -> Result<PolicyRun, AppError> {
        let mode = match policy {
            super::budgets::BUDGET => Mode::Enforce,
            IDLE => self.config.policies.idle.mode.unwrap_or_default(),
            _ => self.config.policies.expiry.effective().mode,
        };
        let now = self.now();
        let run_id = self
            .store
            .start_policy_run(
                policy,
                mode.as_str(),
                cause.as_str(),
                requested_by,
                self.sync.holder(),
                match cause {
                    Cause::Confirm(id) => Some(id),
                    _ => None,
                },
                now,
            )
            .await?;
        let result = self.policy_pass(policy, run_id, cause, now).await;
        if let Err(e) = &result {
            let note = format!("{}: {e}", e.code());
            self.store
                .finish_policy_run(
                    run_id,
                    "failed",
                    &serde_json::json!({}),
                    &serde_json::json!([]),
                    &note,
                    None,
                    self.now(),
                )
                .await?;
        }
        result?;
        Ok(self.store.policy_run(run_id).await?)
    }

    /// The most stops and deletions one pass of `policy` takes, in all
    /// (`account` None) or in one account.
    fn policy_cap(&self, policy: &str, account: Option<&str>) -> usize {
        let acct = account.and_then(|a| self.config.accounts.iter().find(|c| c.name.as_str() == a));
        let p = &self.config.policies;
        match policy {
            IDLE => {
                let rules = match acct {
                    Some(c) => c.policies.idle.over(&p.idle),
                    None => p.idle.clone(),
                };
                rules
                    .max_actions_per_pass
                    .unwrap_or(skyhold_core::policy::DEFAULT_MAX_ACTIONS) as usize
            }
            _ => {
                let rules = match acct {
                    Some(c) => c.policies.expiry.over(&p.expiry),
                    None => p.expiry.clone(),
                };
                rules.effective().max_actions_per_pass as usize
            }
        }
    }

    async fn policy_pass(
        self: &Arc<Self>,
        policy: &'static str,
        run_id: i64,
        cause: Cause,
        now: Millis,
    ) -> Result<(), AppError> {
        let (mut eval, done) = match policy {
            IDLE => self.evaluate_idle(now).await?,
            super::budgets::BUDGET => self.evaluate_budget(now).await?,
            _ => {
                self.evaluate(&self.config.policies.expiry.clone(), now, None)
                    .await?
            }
        };
        // Overtaken steps are recorded as skipped: never taken later.
        for (rid, key, at) in &eval.overtaken {
            let enforce = eval
                .due
                .iter()
                .find(|d| d.resource_id == *rid)
                .is_some_and(|d| d.mode == Mode::Enforce.as_str());
            if enforce {
                self.store
                    .record_step(
                        &NewStep {
                            policy,
                            resource_id: *rid,
                            step: key,
                            due_at: *at,
                            run_id,
                            state: "skipped",
                            attempts: 0,
                            action_id: None,
                            reason: "overtaken by a later step (the pass came late)",
                        },
                        None,
                        now,
                    )
                    .await?;
            }
        }
        // The mass-action cap: stops and deletions this pass would take,
        // in total and per account.
        let held_plan = match cause {
            Cause::Confirm(id) => Some(self.store.policy_run(id).await?),
            _ => None,
        };
        let in_plan = |d: &PolicyDecision| {
            held_plan.as_ref().is_some_and(|p| {
                p.plan.as_array().is_some_and(|items| {
                    items.iter().any(|i| {
                        i["resource_id"].as_i64() == Some(d.resource_id.0)
                            && i["step"].as_str() == Some(d.step.as_str())
                            && i["due_at"].as_str() == Some(d.due_at.as_str())
                    })
                })
            })
        };
        let destructive: Vec<usize> = eval
            .due
            .iter()
            .enumerate()
            .filter(|(_, d)| d.destructive() && d.mode == Mode::Enforce.as_str())
            .map(|(i, _)| i)
            .collect();
        let cap = self.policy_cap(policy, None);
        let mut per_account: BTreeMap<&str, usize> = BTreeMap::new();
        for i in &destructive {
            *per_account
                .entry(eval.due[*i].account.as_str())
                .or_default() += 1;
        }
        let over_account = per_account
            .iter()
            .find(|(a, n)| **n > self.policy_cap(policy, Some(a)));
        let already_held = match cause {
            Cause::Confirm(_) => None,
            _ => self.store.held_policy_run(policy).await?,
        };
        let hold = held_plan.is_none() && (destructive.len() > cap || over_account.is_some());
        let mut state = "done";
        let mut note = String::new();
        let mut alert = None;
        let mut alert_body = serde_json::Value::Null;
        let alert_key = format!("policy:{policy}:held:{run_id}");
        if let Some(prior) = &already_held {
            if !destructive.is_empty() {
                note = format!(
                    "{} stops/deletions wait: run {} is held for confirmation",
                    destructive.len(),
                    prior.id
                );
            }
        } else if hold {
            state = "held";
            note = match over_account {
                Some((a, n)) if destructive.len() <= cap => format!(
                    "held: {n} stops/deletions in account {a} exceed its max_actions_per_pass; confirm on the Policies page"
                ),
                _ => format!(
                    "held: {} stops/deletions exceed max_actions_per_pass = {cap}; confirm on the Policies page",
                    destructive.len()
                ),
            };
            alert_body = serde_json::json!({
                "kind": "policy.held",
                "policy": policy,
                "run_id": run_id,
                "actions": destructive.len(),
                "max_actions_per_pass": cap,
                "reason": note,
            });
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut plan = Vec::new();
        // Warnings are written together after the loop (a few hundred
        // per transaction); stops and deletions are taken one by one.
        let mut warnings: Vec<(usize, Warning)> = Vec::new();
        let mut recipients: HashMap<String, (String, String)> = HashMap::new();
        for i in 0..eval.due.len() {
            let d = eval.due[i].clone();
            let dry = d.mode == Mode::DryRun.as_str();
            let outcome = if dry {
                "would".to_owned()
            } else if d.destructive() {
                if held_plan.is_some() && !in_plan(&d) {
                    "deferred: not in the confirmed plan".to_owned()
                } else if already_held.is_some() {
                    "deferred".to_owned()
                } else if hold {
                    "held".to_owned()
                } else {
                    self.take_step(run_id, &d, &done).await
                }
            } else {
                warnings.push((i, self.warning(run_id, &d, &mut recipients).await?));
                continue;
            };
            *counts.entry(tally(&outcome, &d.step)).or_default() += 1;
            eval.due[i].outcome = outcome;
            if dry || d.destructive() {
                plan.push(serde_json::to_value(&eval.due[i]).unwrap_or_default());
            }
        }
        let written = self
            .store
            .record_warnings(
                &warnings.iter().map(|(_, w)| w.as_new()).collect::<Vec<_>>(),
                now,
            )
            .await?;
        for ((i, _), new) in warnings.iter().zip(written) {
            let outcome = if new { "sent" } else { "skipped: sent already" };
            *counts.entry(tally(outcome, "warn")).or_default() += 1;
            eval.due[*i].outcome = outcome.to_owned();
        }
        // What the confirmed plan held that is no longer due (extended,
        // kept, stopped or gone since) is reported, not taken.
        if let Some(p) = &held_plan {
            for item in p.plan.as_array().into_iter().flatten() {
                let destructive = item["step"].as_str().is_some_and(|s| s != "warn");
                let taken = eval.due.iter().any(|d| {
                    d.resource_id.0 == item["resource_id"].as_i64().unwrap_or_default()
                        && Some(d.step.as_str()) == item["step"].as_str()
                        && Some(d.due_at.as_str()) == item["due_at"].as_str()
                });
                if destructive && item["outcome"] == "held" && !taken {
                    let mut item = item.clone();
                    item["outcome"] = "skipped: no longer due since the pass was held".into();
                    *counts.entry("skipped").or_default() += 1;
                    plan.push(item);
                }
            }
        }
        if state == "held" {
            alert = Some(alert_body);
        }
        let mut counts_json =
            serde_json::json!({"candidates": eval.candidates, "exempt": eval.exempt.len()});
        // The idle policy's instances without datapoints, by id (shown as
        // "no data" on their pages).
        let no_data: Vec<i64> = eval
            .exempt
            .iter()
            .filter(|e| e.why.starts_with("no data"))
            .map(|e| e.resource_id.0)
            .collect();
        if policy == IDLE {
            counts_json["no_data"] = no_data.len().into();
            counts_json["no_data_ids"] = no_data.into();
            counts_json["metrics_ms"] = eval.provider_ms.into();
        }
        for (k, v) in counts {
            counts_json[k] = v.into();
        }
        let plan_json = serde_json::Value::Array(plan);
        let (subject, channels) = (
            format!("skyhold: {policy} pass {run_id} is held for confirmation"),
            self.channels_for(""),
        );
        let notification = alert.as_ref().map(|body| NewNotification {
            dedupe_key: &alert_key,
            kind: "policy.held",
            recipient: "admins",
            email: "",
            subject: &subject,
            body,
            resource_id: None,
            channels: &channels,
        });
        self.store
            .finish_policy_run(
                run_id,
                state,
                &counts_json,
                &plan_json,
                &note,
                notification.as_ref(),
                self.now(),
            )
            .await?;
        Ok(())
    }

    /// A warning's step and notification, ready to be written (once per
    /// warning point). `recipients` caches each owner's address for the
    /// pass.
    async fn warning(
        &self,
        run_id: i64,
        d: &PolicyDecision,
        recipients: &mut HashMap<String, (String, String)>,
    ) -> Result<Warning, AppError> {
        let (recipient, email) = match recipients.get(&d.owner) {
            Some(r) => r.clone(),
            None => {
                let r = self.recipient(&d.owner).await?;
                recipients.insert(d.owner.clone(), r.clone());
                r
            }
        };
        let kind = if d.policy == IDLE {
            "idle.warning"
        } else {
            "expiry.warning"
        };
        let mut body = self.notification_body(kind, d);
        // An expiry warning carries a single-use link that extends the
        // resource by a day (used by someone allowed to, after login).
        let extend_link = (d.policy == EXPIRY).then(|| {
            let (hash, url) = self.new_extend_link();
            body["extend_url"] = url.into();
            hash
        });
        let name = if d.name.is_empty() {
            &d.provider_id
        } else {
            &d.name
        };
        let subject = if d.policy == IDLE {
            format!(
                "skyhold: {} {name} is idle and will be stopped at {}",
                d.kind,
                d.stop_at.as_deref().unwrap_or_default()
            )
        } else {
            format!("skyhold: {} {name} expires at {}", d.kind, d.expires_at)
        };
        Ok(Warning {
            policy: d.policy,
            resource_id: d.resource_id,
            step: d.step_key.clone(),
            due_at: d.due_ms,
            run_id,
            reason: d.reason.clone(),
            key: format!(
                "policy:{}:r{}:{}@{}",
                d.policy, d.resource_id, d.step_key, d.due_ms
            ),
            kind,
            recipient,
            channels: self.channels_for(&email),
            email,
            subject,
            body,
            extend_link,
            link_expires_at: self.now() + super::expiry::LINK_VALID_MS,
        })
    }

    /// Re-checks one resource and, when the step is still due, takes it
    /// through the pipeline. Returns the outcome in words.
    async fn take_step(self: &Arc<Self>, run_id: i64, d: &PolicyDecision, done: &Done) -> String {
        match self.try_step(run_id, d, done).await {
            Ok(o) => o,
            Err(e) => format!("failed: {}: {e}", e.code()),
        }
    }

    async fn try_step(
        self: &Arc<Self>,
        run_id: i64,
        d: &PolicyDecision,
        done: &Done,
    ) -> Result<String, AppError> {
        let r = match self.store.get_resource(d.resource_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Ok("skipped: gone".into()),
            Err(e) => return Err(e.into()),
        };
        // Re-read right before acting: it may have been extended, stopped,
        // kept or deleted since it was selected.
        let fresh = self.reread(&r).await?;
        if fresh.deleted_at.is_some() {
            return Ok("skipped: gone since".into());
        }
        let now = self.now();
        let mut again = Evaluation::default();
        if d.policy == IDLE {
            again = self
                .evaluate_idle_of(
                    std::slice::from_ref(&fresh),
                    done,
                    now,
                    &self.config.policies.idle,
                )
                .await?;
        } else if d.policy == super::budgets::BUDGET {
            let (mut all, _) = self.evaluate_budget(now).await?;
            all.due
                .retain(|x| x.resource_id == fresh.id && fresh.observed.state == "running");
            again = all;
        } else {
            let global = self.config.policies.expiry.clone();
            let blueprints = self.blueprint_rules().await?;
            let rules = self.rules_for(&fresh, &blueprints, &global);
            let keep = self.keep_status(&fresh).await?;
            self.evaluate_one(&fresh, &rules, &keep, done, now, None, &mut again);
        }
        let still = again
            .due
            .iter()
            .any(|x| x.step_key == d.step_key && x.due_ms == d.due_ms);
        if !still {
            return Ok(format!(
                "skipped: no longer due after a re-read ({})",
                match again.due.first() {
                    Some(x) => format!("now {} at {}", x.step, x.due_at),
                    None if !again.exempt.is_empty() => again.exempt[0].why.clone(),
                    None => "expiry moved, or not running".into(),
                }
            ));
        }
        let attempts = done
            .get(&(d.resource_id, d.step_key.clone(), d.due_ms))
            .map_or(0, |s| s.attempts)
            + 1;
        let step = |state: &'static str, action_id: Option<i64>, reason: String| {
            (state, action_id, reason)
        };
        let claimed = self
            .store
            .record_step(
                &NewStep {
                    policy: d.policy,
                    resource_id: d.resource_id,
                    step: &d.step_key,
                    due_at: d.due_ms,
                    run_id,
                    state: "acting",
                    attempts,
                    action_id: None,
                    reason: &d.reason,
                },
                None,
                now,
            )
            .await?;
        if !claimed {
            return Ok("skipped: taken already".into());
        }
        let op = match d.step.as_str() {
            "stop" => Op::Power(PowerAction::Stop),
            _ => Op::Delete {
                final_snapshot: d.final_snapshot,
            },
        };
        let mut actor = Actor::system(&format!("policy:{}", d.policy));
        actor.ctx.idempotency_key = format!(
            "policy:{}:r{}:{}@{}#{attempts}",
            d.policy, d.resource_id, d.step_key, d.due_ms
        );
        actor.ctx.reason = d.reason.clone();
        let result = self
            .act(&actor, d.resource_id, op, Some(&fresh.observed.provider_id))
            .await;
        let (state, action_id, outcome) = match &result {
            Ok(a) if a.state == "succeeded" => step("done", Some(a.id.0), "done".into()),
            Ok(a) => step(
                "failed",
                Some(a.id.0),
                format!("failed: {}: {}", a.error_code, a.error),
            ),
            Err(e) => step("failed", None, format!("failed: {}: {e}", e.code())),
        };
        let (recipient, email) = self.recipient(&d.owner).await?;
        let kind = match (d.policy, state, d.step.as_str()) {
            (IDLE, "done", _) => "idle.stopped",
            (IDLE, _, _) => "idle.failed",
            (super::budgets::BUDGET, "done", _) => "budget.stopped",
            (super::budgets::BUDGET, _, _) => "budget.failed",
            (_, "done", "stop") => "expiry.stopped",
            (_, "done", _) => "expiry.deleted",
            _ => "expiry.failed",
        };
        let mut body = self.notification_body(kind, d);
        body["outcome"] = outcome.clone().into();
        let key = format!(
            "policy:{}:r{}:{}@{}#{attempts}",
            d.policy, d.resource_id, d.step_key, d.due_ms
        );
        let subject = format!(
            "skyhold: {} {} {}",
            d.kind,
            if d.name.is_empty() {
                &d.provider_id
            } else {
                &d.name
            },
            match kind {
                "expiry.stopped" => "was stopped: it expired",
                "expiry.deleted" => "was deleted: it expired",
                "idle.stopped" => "was stopped: it was idle",
                "idle.failed" => "could not be stopped when idle",
                "budget.stopped" => "was stopped: its owner's monthly budget is spent",
                "budget.failed" => "could not be stopped for a spent budget",
                _ => "could not be acted on at its expiry",
            }
        );
        // Owners hear of stops and deletions; failures go to the admins.
        let (recipient, email) = if state == "done" {
            (recipient, email)
        } else {
            ("admins".to_owned(), String::new())
        };
        let channels = self.channels_for(&email);
        self.store
            .settle_step(
                &NewStep {
                    policy: d.policy,
                    resource_id: d.resource_id,
                    step: &d.step_key,
                    due_at: d.due_ms,
                    run_id,
                    state,
                    attempts,
                    action_id,
                    reason: &d.reason,
                },
                Some(&NewNotification {
                    dedupe_key: &key,
                    kind,
                    recipient: &recipient,
                    email: &email,
                    subject: &subject,
                    body: &body,
                    resource_id: Some(d.resource_id),
                    channels: &channels,
                }),
                self.now(),
            )
            .await?;
        Ok(outcome)
    }

    /// Who hears about a resource of `owner`: the user and their email; a
    /// user without one, their first group with an address; a group, its
    /// address; else (and for unowned resources) the admins: never
    /// skipped silently.
    pub(super) async fn recipient(&self, owner: &str) -> Result<(String, String), AppError> {
        let group_address = |g: &skyhold_store::Group| {
            (!g.email.is_empty()).then(|| (format!("group:{}", g.name), g.email.clone()))
        };
        let admins = || ("admins".to_owned(), String::new());
        match skyhold_core::access::owner_subject(owner) {
            Some(skyhold_core::Subject::User(u)) => match self.store.user_by_name(&u).await? {
                Some(user) if !user.email.is_empty() && user.disabled_at.is_none() => {
                    Ok((format!("user:{u}"), user.email))
                }
                // No address of their own: their first group's that has one.
                _ => Ok(self
                    .store
                    .groups_of_member(&u)
                    .await?
                    .iter()
                    .find_map(group_address)
                    .unwrap_or_else(admins)),
            },
            Some(skyhold_core::Subject::Group(g)) => Ok(self
                .store
                .group_by_name(&g)
                .await?
                .as_ref()
                .and_then(group_address)
                .unwrap_or_else(admins)),
            None => Ok(admins()),
        }
    }

    /// The channels a notification goes to (the outbox's deliveries).
    fn channels_for(&self, _email: &str) -> Vec<String> {
        self.channels()
    }

    fn notification_body(&self, kind: &str, d: &PolicyDecision) -> serde_json::Value {
        serde_json::json!({
            "kind": kind,
            "policy": d.policy,
            "resource": {
                "id": d.resource_id.0,
                "provider_id": d.provider_id,
                "name": d.name,
                "kind": d.kind,
                "account": d.account,
                "region": d.region,
                "owner": d.owner,
            },
            "step": d.step,
            "due_at": d.due_at,
            "expires_at": d.expires_at,
            "reason": d.reason,
        })
    }

    /// What the expiry rules (as configured, or with `change` over the
    /// global ones) would warn, stop and delete now and within 24 hours.
    pub async fn policy_preview(
        &self,
        actor: &Actor,
        change: Option<ExpiryRules>,
    ) -> Result<Preview, AppError> {
        self.authorize(actor, Action::ViewPolicies, Object::None)
            .await?;
        let configured = self.config.policies.expiry.clone();
        let global = match &change {
            Some(c) => c.over(&configured),
            None => configured,
        };
        let now = self.now();
        let (eval, _) = self
            .evaluate(&global, now, Some(now + PREVIEW_HORIZON_MS))
            .await?;
        Ok(preview_of(
            EXPIRY,
            eval,
            now,
            serde_json::to_value(global.to_raw()).unwrap_or_default(),
        ))
    }

    /// The idle policy's preview: what a pass would warn and stop now
    /// (reading the metrics as a pass does), and the stops that follow
    /// within 24 h if the instances stay idle; "no data" among the exempt.
    /// With `change`, of the global `[policies.idle]` rules with it
    /// applied (nothing saved).
    pub async fn idle_preview(
        &self,
        actor: &Actor,
        change: Option<skyhold_core::idle::IdleRules>,
    ) -> Result<Preview, AppError> {
        self.authorize(actor, Action::ViewPolicies, Object::None)
            .await?;
        let now = self.now();
        let global = match &change {
            Some(c) => c.over(&self.config.policies.idle),
            None => self.config.policies.idle.clone(),
        };
        let done = self.steps_done(IDLE).await?;
        let instances = self.store.running_instances().await?;
        let eval = self
            .evaluate_idle_of(&instances, &done, now, &global)
            .await?;
        Ok(preview_of(
            IDLE,
            eval,
            now,
            serde_json::to_value(&global).unwrap_or_default(),
        ))
    }

    /// Passes, newest first, and the next page's cursor.
    pub async fn policy_runs(
        &self,
        actor: &Actor,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<PolicyRun>, Option<i64>), AppError> {
        self.authorize(actor, Action::ViewPolicies, Object::None)
            .await?;
        let mut rows = self.store.policy_runs(before, limit).await?;
        let more = rows.len() as i64 > limit.clamp(1, 500);
        rows.truncate(limit.clamp(1, 500) as usize);
        let next = more.then(|| rows.last().map(|r| r.id)).flatten();
        Ok((rows, next))
    }

    pub async fn policy_run(&self, actor: &Actor, id: i64) -> Result<PolicyRun, AppError> {
        self.authorize(actor, Action::ViewPolicies, Object::None)
            .await?;
        self.store.policy_run(id).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound(format!("policy run {id}")),
            o => o.into(),
        })
    }

    /// Runs a pass of `policy` (`expiry`, `idle`) now (admins).
    pub async fn run_policies_now(
        self: &Arc<Self>,
        actor: &Actor,
        policy: &str,
    ) -> Result<PolicyRun, AppError> {
        self.authorize(actor, Action::RunPolicies, Object::None)
            .await?;
        let policy = match policy {
            EXPIRY => EXPIRY,
            IDLE => IDLE,
            super::budgets::BUDGET => super::budgets::BUDGET,
            other => {
                return Err(AppError::bad_parameter(
                    "policy",
                    format!(
                        "{:?}: expiry, idle or budget",
                        skyhold_core::clip(other, 32)
                    ),
                ))
            }
        };
        let run = self
            .run_policy_pass(policy, Cause::Demand, &actor.username)
            .await?;
        let mut d = actor.audit("policy.run", policy_target(run.id));
        d.new =
            Some(serde_json::json!({"run_id": run.id, "state": run.state, "counts": run.counts}));
        self.record(&d).await;
        Ok(run)
    }

    /// Confirms a held pass and carries out its plan (each item re-checked
    /// first); returns the run that did.
    pub async fn confirm_policy_run(
        self: &Arc<Self>,
        actor: &Actor,
        id: i64,
    ) -> Result<PolicyRun, AppError> {
        self.authorize(actor, Action::ConfirmPolicyRun, Object::None)
            .await?;
        let held = self.policy_run(actor, id).await?;
        if !self
            .store
            .confirm_policy_run(id, &actor.username, self.now())
            .await?
        {
            return Err(AppError::InvalidState(format!(
                "policy run {id} is {}, not held: nothing to confirm",
                held.state
            )));
        }
        let mut d = actor.audit("policy.confirm", policy_target(id));
        d.new = Some(
            serde_json::json!({"run_id": id, "actions": held.plan.as_array().map_or(0, Vec::len)}),
        );
        self.record(&d).await;
        let policy = match held.policy.as_str() {
            IDLE => IDLE,
            super::budgets::BUDGET => super::budgets::BUDGET,
            _ => EXPIRY,
        };
        self.run_policy_pass(policy, Cause::Confirm(id), &actor.username)
            .await
    }
}

impl App {
    /// The outbox, newest first, and the next page's cursor.
    pub async fn notifications(
        &self,
        actor: &Actor,
        resource: Option<ResourceId>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<skyhold_store::Notification>, Option<i64>), AppError> {
        self.authorize(actor, Action::ViewNotifications, Object::None)
            .await?;
        let limit = limit.clamp(1, 500);
        let mut rows = self.store.notifications(before, resource, limit).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = more.then(|| rows.last().map(|n| n.id)).flatten();
        Ok((rows, next))
    }
}

/// The name of the blueprint a resource was launched from (its
/// `skyhold:blueprint` tag, `NAME@VERSION`).
pub(super) fn blueprint_name(r: &Resource) -> Option<&str> {
    r.observed
        .tags
        .get(BLUEPRINT_TAG)
        .and_then(|v| v.rsplit_once('@').map(|(n, _)| n))
}

/// Whether a kind holds data a final snapshot keeps.
fn has_data(kind: ResourceKind) -> bool {
    matches!(
        kind,
        ResourceKind::Instance
            | ResourceKind::Volume
            | ResourceKind::DbInstance
            | ResourceKind::CacheCluster
    )
}

fn policy_target(run: i64) -> skyhold_core::audit::AuditTarget {
    skyhold_core::audit::AuditTarget {
        kind: "policy_run".into(),
        id: run.to_string(),
        ..Default::default()
    }
}
