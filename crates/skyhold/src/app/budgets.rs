//! Money budgets: a monthly spend limit per user and per group, with
//! defaults (`default:user`, `default:group`) and overrides, applied like
//! quotas: a launch for an owner must fit the owner's budget and each of
//! their groups' (a group's spend is its own resources' and its members').
//! At 80 % of a budget its subject is warned, at 100 % too, and launches
//! are refused (`budget_exceeded`) unless the budget only warns. Spend is
//! the ledger's, priced (see `spend`).

use super::access::{Action, Actor, Object};
use super::policies::{Done, Evaluation, PolicyDecision};
use super::quotas::quota_target;
use super::App;
use crate::error::{AppError, BudgetExceeded};
use skyhold_core::quota::QuotaSubject;
use skyhold_core::Millis;
use skyhold_store::{BudgetRow, NewNotification, UsageField, UsageFilter};
use std::collections::HashMap;

/// What happens at 100 %.
pub const ON_EXCEED: [&str; 3] = ["warn", "block", "stop"];

/// The budget policy's name (runs, steps, keys).
pub const BUDGET: &str = "budget";

/// How long after a budget's 100 % warning its subject's running
/// instances are stopped (`on_exceed = "stop"`).
pub const STOP_GRACE_MS: i64 = 3_600_000;

/// A budget as it stands this month.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BudgetStatus {
    /// Whose spend it bounds (`user:ann`, `group:dev`).
    pub subject: String,
    /// Where the limit comes from (the override, or `default:user`).
    pub source: String,
    pub limit_usd: f64,
    pub on_exceed: String,
    pub spend_usd: f64,
    pub projected_usd: f64,
    /// Spend as a percentage of the limit.
    pub percent: f64,
}

/// A stored budget, and its status where it names a user or a group.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BudgetView {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub budget: BudgetRow,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BudgetStatus>,
}

/// `2026-12`: the month a budget warning's key names.
fn month_label(now: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(now)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_default()
}

/// Month-to-date and projected spend per owner.
type OwnerSpend = HashMap<String, (f64, f64)>;

impl App {
    /// Sets a budget (admins).
    pub async fn set_budget(
        &self,
        actor: &Actor,
        subject: &str,
        monthly_usd: f64,
        on_exceed: Option<&str>,
    ) -> Result<BudgetRow, AppError> {
        self.authorize(actor, Action::ManageQuotas, Object::None)
            .await?;
        let subject = self.resolve_quota_subject(subject).await?;
        if !(monthly_usd.is_finite() && monthly_usd >= 0.0) {
            return Err(AppError::bad_parameter(
                "monthly_usd",
                "a monthly amount in USD, 0 or more",
            ));
        }
        let on_exceed = on_exceed.unwrap_or("block");
        if !ON_EXCEED.contains(&on_exceed) {
            return Err(AppError::bad_parameter(
                "on_exceed",
                format!(
                    "{:?}: warn (only warn at 80 % and 100 %), block (also refuse launches at 100 %) or stop (also stop the running instances an hour after the 100 % warning)",
                    skyhold_core::clip(on_exceed, 32)
                ),
            ));
        }
        let row = BudgetRow {
            subject: subject.key(),
            monthly_usd,
            on_exceed: on_exceed.to_owned(),
            updated_at: self.now(),
            updated_by: actor.username.clone(),
        };
        let mut target = quota_target(&subject);
        target.kind = "budget".into();
        let mut d = actor.audit("budget.set", target);
        d.new = Some(serde_json::to_value(&row).unwrap_or_default());
        self.store.set_budget(&row, &d).await?;
        Ok(row)
    }

    /// Removes a budget (admins); the default applies again.
    pub async fn delete_budget(&self, actor: &Actor, subject: &str) -> Result<(), AppError> {
        self.authorize(actor, Action::ManageQuotas, Object::None)
            .await?;
        let s = QuotaSubject::parse(subject).map_err(|m| AppError::bad_parameter("subject", m))?;
        let mut target = quota_target(&s);
        target.kind = "budget".into();
        let d = actor.audit("budget.delete", target);
        self.store
            .delete_budget(&s.key(), &d)
            .await
            .map_err(|e| match e {
                skyhold_store::StoreError::NotFound => {
                    AppError::NotFound(format!("budget {}", s.key()))
                }
                o => o.into(),
            })
    }

    /// Every stored budget with this month's status (admins and auditors).
    pub async fn budgets(&self, actor: &Actor) -> Result<Vec<BudgetView>, AppError> {
        self.authorize(actor, Action::ViewQuotas, Object::None)
            .await?;
        let rows = self.store.budgets().await?;
        let spend = self.month_spend_by_owner().await?;
        let mut out = Vec::with_capacity(rows.len());
        for b in rows {
            let status = match QuotaSubject::parse(&b.subject) {
                Ok(QuotaSubject::User(_) | QuotaSubject::Group(_)) => {
                    Some(self.status_of(&b.subject, &b, &spend).await?)
                }
                _ => None,
            };
            out.push(BudgetView { budget: b, status });
        }
        Ok(out)
    }

    /// The actor's own budgets (theirs and their groups').
    pub async fn my_budgets(&self, actor: &Actor) -> Result<Vec<BudgetStatus>, AppError> {
        self.authorize(actor, Action::ViewSpend, Object::None)
            .await?;
        self.budget_statuses(&actor.username).await
    }

    /// Month-to-date and projected spend per owner (the rest of the month
    /// at the rate of what is billing now).
    async fn month_spend_by_owner(&self) -> Result<OwnerSpend, AppError> {
        let now = self.now();
        let by = [UsageField::Owner];
        let all = UsageFilter::default();
        let set = self
            .store
            .usage_set(&[super::spend::month_to_date(now)], &all, now, false)
            .await?;
        let usage = set.grouped(&by, 0..1);
        let rate = set.rate(&by);
        let left = super::spend::hours_left(now);
        let mut out: OwnerSpend = HashMap::new();
        for r in self.price_buckets(&by, &usage).0 {
            let e = out
                .entry(r.fields.get("owner").cloned().unwrap_or_default())
                .or_default();
            e.0 += r.usd;
            e.1 += r.usd;
        }
        for r in self.price_buckets(&by, &rate).0 {
            let e = out
                .entry(r.fields.get("owner").cloned().unwrap_or_default())
                .or_default();
            e.1 += r.usd * left;
        }
        Ok(out)
    }

    /// The owners whose spend is `subject`'s (`user:ann` → ann;
    /// `group:dev` → the group's own and its members').
    async fn owners_of(&self, subject: &str) -> Result<Vec<String>, AppError> {
        Ok(match QuotaSubject::parse(subject) {
            Ok(QuotaSubject::User(u)) => vec![u],
            Ok(QuotaSubject::Group(g)) => self.group_owners(&g).await?,
            _ => Vec::new(),
        })
    }

    async fn status_of(
        &self,
        subject: &str,
        b: &BudgetRow,
        spend: &OwnerSpend,
    ) -> Result<BudgetStatus, AppError> {
        let (mut mtd, mut projected) = (0.0, 0.0);
        for o in self.owners_of(subject).await? {
            if let Some((m, p)) = spend.get(&o) {
                mtd += m;
                projected += p;
            }
        }
        let round = |v: f64| (v * 100.0).round() / 100.0;
        Ok(BudgetStatus {
            subject: subject.to_owned(),
            source: b.subject.clone(),
            limit_usd: b.monthly_usd,
            on_exceed: b.on_exceed.clone(),
            spend_usd: round(mtd),
            projected_usd: round(projected),
            percent: if b.monthly_usd > 0.0 {
                round(mtd / b.monthly_usd * 100.0)
            } else if mtd > 0.0 {
                f64::INFINITY.min(1e9)
            } else {
                0.0
            },
        })
    }

    /// The budgets that bound `owner` (a user name or `group:NAME`): the
    /// user's own (override, else `default:user`) and each of their
    /// groups' (override, else `default:group`), with this month's spend.
    pub(crate) async fn budget_statuses(&self, owner: &str) -> Result<Vec<BudgetStatus>, AppError> {
        let budgets = self.store.budgets().await?;
        if budgets.is_empty() {
            return Ok(Vec::new());
        }
        let find = |k: &str| budgets.iter().find(|b| b.subject == k);
        let mut subjects: Vec<(String, &BudgetRow)> = Vec::new();
        match skyhold_core::access::owner_subject(owner) {
            Some(skyhold_core::Subject::User(u)) => {
                let k = format!("user:{u}");
                if let Some(b) = find(&k).or_else(|| find("default:user")) {
                    subjects.push((k, b));
                }
                for g in self.store.groups_of_member(&u).await? {
                    let k = format!("group:{}", g.name);
                    if let Some(b) = find(&k).or_else(|| find("default:group")) {
                        subjects.push((k, b));
                    }
                }
            }
            Some(skyhold_core::Subject::Group(g)) => {
                let k = format!("group:{g}");
                if let Some(b) = find(&k).or_else(|| find("default:group")) {
                    subjects.push((k, b));
                }
            }
            None => {}
        }
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let spend = self.month_spend_by_owner().await?;
        let mut out = Vec::new();
        for (k, b) in subjects {
            out.push(self.status_of(&k, b, &spend).await?);
        }
        Ok(out)
    }

    /// Refuses a launch for `owner` when a blocking budget that applies
    /// is spent (100 % of its month), naming it.
    pub(crate) async fn check_budgets(&self, owner: &str, launch_usd: f64) -> Result<(), AppError> {
        for s in self.budget_statuses(owner).await? {
            if s.on_exceed != "warn" && s.spend_usd >= s.limit_usd {
                return Err(AppError::BudgetExceeded(Box::new(BudgetExceeded {
                    subject: s.subject,
                    source: s.source,
                    limit_usd: s.limit_usd,
                    spend_usd: s.spend_usd,
                    projected_usd: s.projected_usd,
                    launch_usd,
                })));
            }
        }
        Ok(())
    }

    /// Warns each subject at 80 % and at 100 % of its budget, once per
    /// month and threshold (the outbox's key). Returns how many warnings
    /// were written.
    pub async fn run_budget_pass(&self) -> Result<usize, AppError> {
        let budgets = self.store.budgets().await?;
        if budgets.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let spend = self.month_spend_by_owner().await?;
        let subjects = self.budget_subjects(&budgets).await?;
        let month = month_label(now);
        let mut written = 0;
        for (k, b) in subjects {
            let s = self.status_of(&k, b, &spend).await?;
            let level = if s.percent >= 100.0 {
                100
            } else if s.percent >= 80.0 {
                80
            } else {
                continue;
            };
            let key = format!("budget:{k}:{month}:{level}");
            if self.store.notification_exists(&key).await? {
                continue;
            }
            let owner = k.strip_prefix("user:").unwrap_or(&k);
            let (recipient, email) = self.recipient(owner).await?;
            let subject = format!(
                "skyhold: {k} has spent {:.0} % of its ${:.2} monthly budget",
                s.percent, s.limit_usd
            );
            let blocked = level == 100 && s.on_exceed != "warn";
            let body = serde_json::json!({
                "kind": "budget.warning",
                "budget": s,
                "reason": format!(
                    "budget: ${:.2} spent of ${:.2} this month ({:.0} %), ${:.2} projected{}",
                    s.spend_usd, s.limit_usd, s.percent, s.projected_usd,
                    if blocked { "; further launches are refused" } else { "" }
                ),
            });
            let channels = self.channels();
            self.store
                .add_notification(
                    &NewNotification {
                        dedupe_key: &key,
                        kind: "budget.warning",
                        recipient: &recipient,
                        email: &email,
                        subject: &subject,
                        body: &body,
                        resource_id: None,
                        channels: &channels,
                    },
                    now,
                )
                .await?;
            written += 1;
        }
        Ok(written)
    }

    /// The budget policy: for each spent budget with `on_exceed = "stop"`
    /// whose 100 % warning went out at least `STOP_GRACE_MS` ago, a stop of
    /// each running instance its subject owns (the pass's caps, holds and
    /// re-checks apply, as for expiry).
    pub(super) async fn evaluate_budget(
        &self,
        now: Millis,
    ) -> Result<(Evaluation, Done), AppError> {
        let done = self.steps_done(BUDGET).await?;
        let mut out = Evaluation::default();
        let budgets = self.store.budgets().await?;
        if !budgets.iter().any(|b| b.on_exceed == "stop") {
            return Ok((out, done));
        }
        let spend = self.month_spend_by_owner().await?;
        let subjects = self.budget_subjects(&budgets).await?;
        let month = month_label(now);
        let running = self.store.running_instances().await?;
        for (k, b) in subjects.into_iter().filter(|(_, b)| b.on_exceed == "stop") {
            let s = self.status_of(&k, b, &spend).await?;
            if s.percent < 100.0 {
                continue;
            }
            let Some(warned) = self
                .store
                .notification_time(&format!("budget:{k}:{month}:100"))
                .await?
            else {
                continue; // the budget pass warns first
            };
            let deadline = warned + STOP_GRACE_MS;
            if now < deadline {
                continue;
            }
            let owners = self.owners_of(&k).await?;
            for r in running
                .iter()
                .filter(|r| owners.contains(&r.observed.owner))
            {
                out.candidates += 1;
                if super::policies::is_done(done.get(&(r.id, "stop".to_owned(), deadline))) {
                    continue;
                }
                out.due.push(PolicyDecision {
                    policy: BUDGET,
                    resource_id: r.id,
                    provider_id: r.observed.provider_id.clone(),
                    name: r.observed.name.clone(),
                    kind: r.observed.kind.as_str().to_owned(),
                    account: r.account.to_string(),
                    region: r.region.clone(),
                    owner: r.observed.owner.clone(),
                    step: "stop".into(),
                    step_key: "stop".into(),
                    due_at: skyhold_core::rfc3339(deadline),
                    due_ms: deadline,
                    expires_at: String::new(),
                    stop_at: Some(skyhold_core::rfc3339(deadline)),
                    final_snapshot: false,
                    mode: "enforce".into(),
                    reason: format!(
                        "budget: {k} spent ${:.2} of ${:.2} this month ({:.0} %), warned at {}",
                        s.spend_usd,
                        s.limit_usd,
                        s.percent,
                        skyhold_core::rfc3339(warned)
                    ),
                    untrusted_keep: None,
                    outcome: String::new(),
                });
            }
        }
        Ok((out, done))
    }

    /// Every user and group with the budget that applies to it (its
    /// override, else the default).
    async fn budget_subjects<'a>(
        &self,
        budgets: &'a [BudgetRow],
    ) -> Result<Vec<(String, &'a BudgetRow)>, AppError> {
        let find = |k: &str| budgets.iter().find(|b| b.subject == k);
        let mut subjects = Vec::new();
        for u in self.store.list_users().await? {
            let k = format!("user:{}", u.username);
            if let Some(b) = find(&k).or_else(|| find("default:user")) {
                subjects.push((k, b));
            }
        }
        for g in self.store.list_groups().await? {
            let k = format!("group:{}", g.name);
            if let Some(b) = find(&k).or_else(|| find("default:group")) {
                subjects.push((k, b));
            }
        }
        Ok(subjects)
    }

    /// Whether any budget stops instances (else the timer skips the
    /// budget policy's pass).
    pub async fn budget_stops_configured(&self) -> bool {
        self.store
            .budgets()
            .await
            .is_ok_and(|b| b.iter().any(|b| b.on_exceed == "stop"))
    }

    /// The projected cost of `count` instances of `itype` for the rest of
    /// the month (None: unpriced).
    pub(crate) fn launch_month_cost(
        &self,
        account: &str,
        region: &str,
        itype: &str,
        count: u32,
        now: Millis,
    ) -> Option<f64> {
        let hours = (super::spend::next_month_start(now) - now).max(0) as f64 / 3_600_000.0;
        let p = self.price(
            skyhold_core::prices::Product::InstanceHour,
            account,
            region,
            itype,
        )?;
        Some(p * hours * f64::from(count))
    }
}
