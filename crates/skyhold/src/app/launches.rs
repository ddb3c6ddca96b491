//! Launches: servers from a blueprint, for oneself or on someone's behalf,
//! through the same pipeline as every change: authorize (operate on the
//! blueprint, manage on the owner when it is someone else) → plan (field
//! checks, image, names) → quota check and reservation in one transaction
//! → intent row → one RunInstances per server, tagged on create, with a
//! ClientToken derived from the launch → outcome, the new instances in the
//! inventory, the reservation given back and the audit entry, in one
//! transaction. A launch whose answer was lost is settled from what the
//! provider shows under its `skyhold:launch-id` tag, never by calling
//! again ([`App::settle_launches`]).

use super::access::{Action, Actor, Object};
use super::App;
use crate::auth;
use crate::error::AppError;
use skyhold_core::audit::{self, AuditTarget};
use skyhold_core::blueprint::FieldError;
use skyhold_core::launch::{LaunchInput, Plan, LAUNCH_ID_TAG, LAUNCH_INDEX_TAG};
use skyhold_core::quota::{self, Amount, Applicable, Exceeded, Limits};
use skyhold_core::{
    now_millis, AccountName, ImageInfo, LaunchId, Millis, ObservedResource, Provider, ResourceKind,
    RunSpec, Subject, UserId,
};
use skyhold_store::{
    BlueprintRow, LaunchOutcome, LaunchRow, NewLaunch, QuotaScope, StoreError, WantedRecord,
};
use std::sync::Arc;
use std::time::Duration;

/// What a launch would do, shown before it is submitted (the form's
/// preview, `skyhold launch --dry-run`, `POST /api/v1/launches` with
/// `dry_run`).
#[derive(Debug, Clone)]
pub struct LaunchPreview {
    pub blueprint: String,
    pub blueprint_version: i64,
    pub account: String,
    pub region: String,
    pub image: ImageInfo,
    pub instance_type: String,
    pub servers: Vec<skyhold_core::launch::Server>,
    pub packages: Vec<String>,
    pub owner: String,
    pub creator: String,
    /// RFC 3339, for servers launched now; `None`: never.
    pub expires_at: Option<String>,
    pub root_volume_gib: Option<u32>,
    pub key_name: Option<String>,
    /// What the launch takes from quotas.
    pub request: Amount,
    /// Every quota that applies, with its usage now.
    pub quotas: Vec<Applicable>,
    /// The tightest room left after this launch, per dimension (`None`:
    /// unlimited).
    pub remaining_after: Limits,
    /// The first quota this launch would exceed.
    pub exceeded: Option<Exceeded>,
    /// What the servers would cost from now to the end of the month at
    /// list price (None: unpriced).
    pub month_cost_usd: Option<f64>,
    /// Every money budget that applies, with this month's spend.
    pub budgets: Vec<super::BudgetStatus>,
    /// The budget that refuses the launch, if any.
    pub budget_exceeded: Option<crate::error::BudgetExceeded>,
    pub commands: Commands,
}

/// The equivalent command lines of a launch.
#[derive(Debug, Clone)]
pub struct Commands {
    pub skyhold: String,
    /// One `aws ec2 run-instances` per server.
    pub aws: Vec<String>,
}

/// A launch checked and ready to reserve: what every later step needs.
struct Prepared {
    blueprint: BlueprintRow,
    plan: Plan,
    account: AccountName,
    provider: Arc<dyn Provider>,
    image: ImageInfo,
    /// The key pair to import and name: (name, public key).
    key: Option<(String, String)>,
    request: Amount,
    scopes: Vec<QuotaScope>,
    /// The blueprint's DNS zone, `(id, domain)`.
    zone: Option<(String, String)>,
}

/// Plan errors: a field of the request, or (for what the blueprint's
/// templates render) of the blueprint.
fn plan_error(e: FieldError) -> AppError {
    match e.field.as_str() {
        "user_data" | "dns_name_pattern" => e.into(),
        _ => AppError::bad_parameter(&e.field, e.message),
    }
}

fn launch_target(l: &LaunchRow) -> AuditTarget {
    AuditTarget {
        kind: "launch".into(),
        id: l.id.to_string(),
        account: l.account.clone(),
        region: l.region.clone(),
        name: l.name.clone(),
        ..Default::default()
    }
}

/// One server as a launch row records it.
fn instance_json(index: u32, name: &str, o: &ObservedResource) -> serde_json::Value {
    serde_json::json!({
        "index": index,
        "name": name,
        "provider_id": o.provider_id,
        "state": o.state,
        "private_ip": o.private_ip,
        "public_ip": o.public_ip,
    })
}

impl App {
    /// Checks a launch request as far as it can go without holding
    /// anything: the blueprint (operate on it), the owner (manage on them
    /// unless it is the actor), every field, the image, the names, and the
    /// quotas that apply.
    async fn prepare_launch(
        &self,
        actor: &Actor,
        blueprint: &str,
        input: &LaunchInput,
    ) -> Result<Prepared, AppError> {
        let b = self.find_blueprint(blueprint).await?;
        self.authorize(actor, Action::LaunchFrom, Object::Blueprint(b.id))
            .await?;
        let owner = match input
            .owner
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
        {
            None => Subject::User(actor.username.clone()),
            Some(o) => {
                let subject = skyhold_core::access::owner_subject(o)
                    .ok_or_else(|| AppError::bad_parameter("owner", "name a user or group:NAME"))?;
                match &subject {
                    Subject::User(u) if *u == actor.username => {}
                    Subject::User(u) => {
                        let user = self.store.user_by_name(u).await?.ok_or_else(|| {
                            AppError::bad_parameter(
                                "owner",
                                format!("no user named {:?}", skyhold_core::clip(u, 64)),
                            )
                        })?;
                        self.authorize(actor, Action::ActFor, Object::User(user.id))
                            .await?;
                    }
                    Subject::Group(g) => {
                        let group = self.group_by_name(g).await.map_err(|_| {
                            AppError::bad_parameter(
                                "owner",
                                format!("no group named {:?}", skyhold_core::clip(g, 64)),
                            )
                        })?;
                        self.authorize(actor, Action::ActFor, Object::Group(group.id))
                            .await?;
                    }
                }
                subject
            }
        };
        let owner_tag = match &owner {
            Subject::User(u) => u.clone(),
            Subject::Group(g) => format!("group:{g}"),
        };
        let plan = Plan::new(&b.spec, b.version, input, &owner_tag, &actor.username)
            .map_err(plan_error)?;
        let account =
            AccountName::parse(&plan.account).map_err(|m| AppError::bad_parameter("account", m))?;
        let provider = self.sync.provider(&account).ok_or_else(|| {
            AppError::bad_parameter(
                "account",
                format!("account {} is not configured", plan.account),
            )
        })?;
        let names: Vec<String> = plan.servers.iter().map(|s| s.name.clone()).collect();
        // Early, before anything is held (checked again where the launch
        // row is written, where two launches cannot race for a name).
        if let Some(taken) = self.store.launch_name_taken(&names).await? {
            return Err(StoreError::NameTaken(taken).into());
        }
        let image = self
            .find_image(
                provider.as_ref(),
                &plan.account,
                &plan.region,
                &b.spec.image_ref()?,
            )
            .await?;
        let scopes = self.quota_scopes(&owner).await?;
        let request = match plan.amount(image.root_volume_gib) {
            Some(a) => a,
            None => {
                // A type of unknown size counts as an instance and its
                // volume; a quota on vCPUs or memory cannot then be checked.
                let limited = self.store.quota_usage(&scopes, now_millis()).await?;
                if limited
                    .iter()
                    .any(|a| a.limits.vcpus.is_some() || a.limits.memory_gib.is_some())
                {
                    return Err(AppError::bad_parameter(
                        "type",
                        format!(
                            "the size of {} is not known to skyhold, so the vCPU and memory quotas that apply cannot be checked",
                            plan.instance_type
                        ),
                    ));
                }
                let volume = plan
                    .root_volume_gib
                    .or(image.root_volume_gib)
                    .unwrap_or(skyhold_core::launch::DEFAULT_VOLUME_GIB);
                Amount {
                    instances: u64::from(plan.count()),
                    volume_gib: u64::from(plan.count()) * u64::from(volume),
                    ..Default::default()
                }
            }
        };
        let key = self.launch_key(actor, &b, &owner, input).await?;
        let zone = self.blueprint_zone(provider.as_ref(), &b.spec).await?;
        if let Some(z) = &zone {
            let fqdns: Vec<String> = plan.servers.iter().filter_map(|s| s.fqdn.clone()).collect();
            self.check_dns_names(provider.as_ref(), z, &fqdns).await?;
        }
        Ok(Prepared {
            zone,
            key,
            blueprint: b,
            plan,
            account,
            provider,
            image,
            request,
            scopes,
        })
    }

    /// The SSH key a launch's servers get (blueprints with `owner_key`):
    /// the owner's (the creator's for a group), the one `input.key` names
    /// (name, fingerprint or id) or else their newest. `None` when they
    /// have none (the servers get no key pair).
    async fn launch_key(
        &self,
        actor: &Actor,
        b: &BlueprintRow,
        owner: &Subject,
        input: &LaunchInput,
    ) -> Result<Option<(String, String)>, AppError> {
        let asked = input
            .key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        if b.spec.key_mode == skyhold_core::blueprint::KeyMode::None {
            if asked.is_some() {
                return Err(AppError::bad_parameter(
                    "key",
                    format!(
                        "blueprint {} launches servers without a key pair",
                        b.spec.name
                    ),
                ));
            }
            return Ok(None);
        }
        let (user_id, username) = match owner {
            Subject::User(u) if *u == actor.username => (actor.user_id, u.clone()),
            Subject::User(u) => match self.store.user_by_name(u).await? {
                Some(user) => (user.id, user.username),
                None => return Ok(None),
            },
            Subject::Group(_) => (actor.user_id, actor.username.clone()),
        };
        let keys = self.store.list_ssh_keys(user_id).await?;
        let key = match asked {
            None => keys.iter().max_by_key(|k| k.id),
            Some(want) => Some(
                keys.iter()
                    .find(|k| k.name == want || k.fingerprint == want || k.id.to_string() == want)
                    .ok_or_else(|| {
                        AppError::bad_parameter(
                            "key",
                            format!(
                                "{username} has no SSH key named {:?} (see their profile's keys)",
                                skyhold_core::clip(want, 64)
                            ),
                        )
                    })?,
            ),
        };
        Ok(key.map(|k| {
            (
                skyhold_core::launch::key_pair_name(&username, &k.fingerprint),
                k.public_key.clone(),
            )
        }))
    }

    fn commands(&self, p: &Prepared) -> Commands {
        Commands {
            skyhold: p.plan.skyhold_command(&p.blueprint.spec),
            aws: p.plan.aws_commands(
                &p.blueprint.spec,
                &p.image.id,
                Some(p.image.root_device_name.as_str()).filter(|d| !d.is_empty()),
                p.key.as_ref().map(|(n, _)| n.as_str()),
            ),
        }
    }

    /// What a launch would do and take, launching nothing.
    pub async fn preview_launch(
        &self,
        actor: &Actor,
        blueprint: &str,
        input: &LaunchInput,
    ) -> Result<LaunchPreview, AppError> {
        let p = self.prepare_launch(actor, blueprint, input).await?;
        let now = now_millis();
        let quotas = self.store.quota_usage(&p.scopes, now).await?;
        let exceeded = quota::check(&quotas, p.request).err();
        let after: Vec<Applicable> = quotas
            .iter()
            .map(|a| Applicable {
                usage: a.usage.plus(p.request),
                ..a.clone()
            })
            .collect();
        let month_cost_usd = self.launch_month_cost(
            &p.plan.account,
            &p.plan.region,
            &p.plan.instance_type,
            p.plan.count(),
            self.now(),
        );
        let budgets = self.budget_statuses(&p.plan.owner).await?;
        let budget_exceeded = match self
            .check_budgets(&p.plan.owner, month_cost_usd.unwrap_or(0.0))
            .await
        {
            Err(AppError::BudgetExceeded(b)) => Some(*b),
            _ => None,
        };
        Ok(LaunchPreview {
            blueprint: p.blueprint.spec.name.clone(),
            blueprint_version: p.blueprint.version,
            account: p.plan.account.clone(),
            region: p.plan.region.clone(),
            image: p.image.clone(),
            instance_type: p.plan.instance_type.clone(),
            servers: p.plan.servers.clone(),
            packages: p.plan.packages.clone(),
            owner: p.plan.owner.clone(),
            creator: p.plan.creator.clone(),
            expires_at: p.plan.expires_at(now).map(skyhold_core::rfc3339),
            root_volume_gib: p.plan.root_volume_gib,
            key_name: p.key.as_ref().map(|(n, _)| n.clone()),
            request: p.request,
            remaining_after: quota::remaining(&after),
            quotas,
            exceeded,
            month_cost_usd,
            budgets,
            budget_exceeded,
            commands: self.commands(&p),
        })
    }

    /// Launches servers from a blueprint and returns the settled launch.
    /// Under the same Idempotency-Key the first launch is returned and
    /// nothing is repeated.
    pub async fn launch(
        self: &Arc<Self>,
        actor: &Actor,
        blueprint: &str,
        input: &LaunchInput,
    ) -> Result<LaunchRow, AppError> {
        let key = if actor.ctx.idempotency_key.is_empty() {
            auth::random_token("lch-", 16)
        } else {
            let key = format!(
                "u{}:{}:launch",
                actor.user_id,
                auth::sha256_hex(&actor.ctx.idempotency_key)
            );
            if let Some(prior) = self.store.launch_by_key(&key).await? {
                return Ok(prior);
            }
            key
        };
        let p = match self.prepare_launch(actor, blueprint, input).await {
            Ok(p) => p,
            Err(e) => {
                // Authorization recorded its own denials; the rest are
                // refusals of the request, recorded here.
                if !matches!(e, AppError::Forbidden(_) | AppError::NotFound(_)) {
                    let mut d = actor.audit(
                        "launch.create",
                        AuditTarget {
                            kind: "blueprint".into(),
                            name: skyhold_core::clip(blueprint, 80),
                            ..Default::default()
                        },
                    );
                    d.outcome = audit::outcome::DENIED.into();
                    d.reason = format!("{}: {e}", e.code());
                    self.record(&d).await;
                }
                return Err(e);
            }
        };
        let now = now_millis();
        // Money budgets: a spent blocking budget of the owner or one of
        // their groups refuses the launch, naming it.
        let launch_usd = self
            .launch_month_cost(
                &p.plan.account,
                &p.plan.region,
                &p.plan.instance_type,
                p.plan.count(),
                self.now(),
            )
            .unwrap_or(0.0);
        if let Err(e) = self.check_budgets(&p.plan.owner, launch_usd).await {
            self.record_launch_refusal(actor, &p.blueprint, &e).await;
            return Err(e);
        }
        let timeout = self.config.action_timeout.as_millis() as Millis;
        // Held until the launch settles; if the process dies first, it
        // expires after as long as the calls could take and the recovery
        // that follows.
        let hold = timeout * (i64::from(p.plan.count()) + 2) + 60_000;
        let reserved = self
            .store
            .reserve_quota(&p.scopes, p.request, &p.plan.owner, now, now + hold)
            .await?;
        let reservation = match reserved {
            Ok((id, _)) => id,
            Err(exceeded) => {
                let e = AppError::QuotaExceeded(Box::new(exceeded));
                self.record_launch_refusal(actor, &p.blueprint, &e).await;
                return Err(e);
            }
        };
        let token = auth::random_token("lch-", 12);
        // One key-hook secret per server, only where instances can reach
        // skyhold back (public_url); only their hashes are stored.
        let secrets: Vec<String> = match &self.config.public_url {
            Some(_) => p
                .plan
                .servers
                .iter()
                .map(|_| auth::random_token("shi_", 24))
                .collect(),
            None => Vec::new(),
        };
        let hashes: Vec<String> = secrets.iter().map(|s| auth::sha256_hex(s)).collect();
        let server_names: Vec<String> = p.plan.servers.iter().map(|s| s.name.clone()).collect();
        let params = serde_json::json!({
            "servers": p.plan.servers,
            "image": p.image.id,
            "image_ref": p.blueprint.spec.image,
            "packages": p.plan.packages,
            "ttl": p.plan.ttl_input,
            "expires_at": p.plan.expires_at(now).map(skyhold_core::rfc3339),
            "root_volume_gib": p.plan.root_volume_gib,
            "key_name": p.key.as_ref().map(|(n, _)| n),
            "dns_zone_id": p.zone.as_ref().map(|(id, _)| id),
            "request": p.request,
        });
        let row = self
            .store
            .create_launch(
                &NewLaunch {
                    token: &token,
                    idempotency_key: &key,
                    blueprint_id: p.blueprint.id,
                    blueprint_name: &p.blueprint.spec.name,
                    blueprint_version: p.blueprint.version,
                    account: &p.plan.account,
                    region: &p.plan.region,
                    name: input.name.trim(),
                    instance_type: &p.plan.instance_type,
                    count: i64::from(p.plan.count()),
                    owner: &p.plan.owner,
                    requested_by: (!actor.is_system()).then_some(actor.user_id),
                    requested_by_name: &actor.username,
                    params: &params,
                    reservation_id: Some(reservation),
                    secret_hashes: &hashes,
                    server_names: &server_names,
                },
                now,
            )
            .await;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                // Nothing was launched: give the quota back at once.
                let _ = self.store.release_reservation(reservation).await;
                if let StoreError::Conflict(_) = e {
                    return self
                        .store
                        .launch_by_key(&key)
                        .await?
                        .ok_or_else(|| AppError::Conflict("launch vanished".into()));
                }
                let e = AppError::from(e);
                if let AppError::NameTaken(_) = e {
                    // Another launch took the name since the early check.
                    self.record_launch_refusal(actor, &p.blueprint, &e).await;
                }
                return Err(e);
            }
        };
        // From here the launch runs in a task of its own: a client that
        // hangs up must not cut it between a call and its outcome.
        let (app, actor) = (Arc::clone(self), actor.clone());
        tokio::spawn(async move { app.run_launch(&actor, p, row, now, secrets).await })
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("the launch's task failed: {e}")))?
    }

    /// Audits a launch from blueprint `b` refused with `e` (nothing held).
    async fn record_launch_refusal(&self, actor: &Actor, b: &BlueprintRow, e: &AppError) {
        let mut d = actor.audit(
            "launch.create",
            AuditTarget {
                kind: "blueprint".into(),
                id: b.id.to_string(),
                name: b.spec.name.clone(),
                ..Default::default()
            },
        );
        d.outcome = audit::outcome::DENIED.into();
        d.reason = format!("{}: {e}", e.code());
        self.record(&d).await;
    }

    /// One RunInstances per server, in order; the first failure stops the
    /// rest. A call whose answer does not come in time is looked up by the
    /// launch tag instead of being repeated.
    async fn run_launch(
        &self,
        actor: &Actor,
        p: Prepared,
        row: LaunchRow,
        now: Millis,
        secrets: Vec<String>,
    ) -> Result<LaunchRow, AppError> {
        let timeout = self.config.action_timeout;
        let expires = p.plan.expires_at(now);
        let mut made: Vec<(u32, String, ObservedResource)> = Vec::new();
        let mut failure: Option<AppError> = None;
        if let Some((name, public_key)) = &p.key {
            let imported = tokio::time::timeout(
                timeout,
                p.provider.ensure_key_pair(&p.plan.region, name, public_key),
            )
            .await;
            match imported {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => failure = Some(e.into()),
                Err(_) => {
                    failure = Some(AppError::Provider(format!(
                        "the provider did not answer ImportKeyPair within {} s",
                        timeout.as_secs()
                    )))
                }
            }
        }
        for s in p.plan.servers.iter().filter(|_| failure.is_none()) {
            let spec = RunSpec {
                image_id: p.image.id.clone(),
                instance_type: p.plan.instance_type.clone(),
                subnet_id: p.plan.subnet_id.clone(),
                security_group_ids: p.plan.security_group_ids.clone(),
                key_name: p.key.as_ref().map(|(n, _)| n.clone()),
                user_data: {
                    let ud = &p.plan.user_data[(s.index - 1) as usize];
                    match (&self.config.public_url, secrets.get((s.index - 1) as usize)) {
                        (Some(url), Some(secret)) => {
                            skyhold_core::launch::with_key_hook(ud, url, secret)
                        }
                        _ => ud.clone(),
                    }
                },
                root_volume: p
                    .plan
                    .root_volume_gib
                    .filter(|_| !p.image.root_device_name.is_empty())
                    .map(|g| (p.image.root_device_name.clone(), g)),
                tags: p
                    .plan
                    .tags(&p.blueprint.spec, s.index, Some((&row.token, expires))),
                client_token: format!("{}-{}", row.token, s.index),
            };
            match tokio::time::timeout(timeout, p.provider.run_instance(&p.plan.region, &spec))
                .await
            {
                Ok(Ok(o)) => made.push((s.index, s.name.clone(), o)),
                Ok(Err(e)) => {
                    failure = Some(e.into());
                    break;
                }
                Err(_) => {
                    failure = Some(AppError::Provider(format!(
                        "the provider did not answer RunInstances for {} within {} s",
                        s.name,
                        timeout.as_secs()
                    )));
                    break;
                }
            }
        }
        if failure.is_some() {
            // What a lost answer may have started is found by its tag.
            if let Ok(Ok(found)) = tokio::time::timeout(
                timeout,
                p.provider
                    .instances_tagged(&p.plan.region, LAUNCH_ID_TAG, &row.token),
            )
            .await
            {
                for o in found {
                    if made.iter().any(|(_, _, m)| m.provider_id == o.provider_id) {
                        continue;
                    }
                    let index = o
                        .tags
                        .get(LAUNCH_INDEX_TAG)
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(0);
                    made.push((index, o.name.clone(), o));
                }
            }
        }
        let note = failure.as_ref().map(|e| (e.code(), e.to_string()));
        let settled = self
            .settle_launch(actor, &row, &p.account, made, note)
            .await?;
        match failure {
            Some(e) if settled.state == "failed" => Err(e),
            _ => Ok(settled),
        }
    }

    /// Records what a launch made: the row's outcome, the instances into
    /// the inventory, the reservation given back, and the audit entry.
    async fn settle_launch(
        &self,
        actor: &Actor,
        row: &LaunchRow,
        account: &AccountName,
        mut made: Vec<(u32, String, ObservedResource)>,
        failure: Option<(&str, String)>,
    ) -> Result<LaunchRow, AppError> {
        made.sort_by_key(|(i, _, _)| *i);
        for (_, _, o) in made.iter_mut() {
            o.owner = skyhold_core::access::owner_from_tags(&o.tags, &self.config.owner_tag_keys);
        }
        let count = row.count as usize;
        let state = match made.len() {
            0 => "failed",
            n if n >= count => "succeeded",
            _ => "partial",
        };
        let (code, error) = match (&failure, state) {
            (Some((code, e)), "partial") => (
                code.to_string(),
                format!(
                    "{} of {count} servers started; the rest were not: {e} (their quota is given back)",
                    made.len()
                ),
            ),
            (Some((code, e)), _) => (code.to_string(), e.clone()),
            (None, _) => (String::new(), String::new()),
        };
        let instances: Vec<serde_json::Value> = made
            .iter()
            .map(|(i, n, o)| instance_json(*i, n, o))
            .collect();
        let instances = serde_json::Value::Array(instances);
        let mut d = actor.audit("launch.create", launch_target(row));
        d.idempotency_key = actor.ctx.idempotency_key.clone();
        d.new = Some(serde_json::json!({
            "launch_id": row.id.0,
            "blueprint": format!("{}@{}", row.blueprint_name, row.blueprint_version),
            "owner": row.owner,
            "creator": row.requested_by_name,
            "type": row.instance_type,
            "instances": made.iter().map(|(_, _, o)| o.provider_id.clone()).collect::<Vec<_>>(),
            "state": state,
        }));
        if state != "succeeded" {
            d.outcome = audit::outcome::FAILED.into();
            d.reason = format!("{code}: {error}");
        }
        let observed: Vec<(u32, ObservedResource)> =
            made.into_iter().map(|(i, _, o)| (i, o)).collect();
        // The DNS names its servers get (the reconciler writes them).
        let dns: Vec<WantedRecord> = match row.params["dns_zone_id"].as_str() {
            Some(zone) => row.params["servers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| {
                    Some(WantedRecord {
                        zone_id: zone.to_owned(),
                        name: s["fqdn"].as_str()?.to_owned(),
                        index: s["index"].as_u64()? as u32,
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        let (settled, _) = self
            .store
            .finish_launch(
                row.id,
                &LaunchOutcome {
                    state,
                    instances: &instances,
                    error_code: &code,
                    error: &error,
                    servers: &observed,
                    dns: &dns,
                },
                account,
                now_millis(),
                &d,
            )
            .await?;
        if !dns.is_empty() {
            for (_, o) in &observed {
                if let Err(e) = self.reconcile_dns(Some(&o.provider_id)).await {
                    tracing::warn!(error = %e, "writing a new server's DNS record");
                }
            }
        }
        Ok(settled)
    }

    /// Settles launches left `running` by a process that died: adopts what
    /// the provider shows under each one's launch tag, never calling
    /// RunInstances again. A launch younger than its calls could take
    /// (one action timeout per server, one for the tag lookup, one to
    /// spare, and 5 s) may still be running here or in another replica and
    /// is left alone. Returns how many were settled.
    pub async fn settle_launches(&self) -> Result<usize, AppError> {
        let now = now_millis();
        let timeout = self.config.action_timeout.as_millis() as Millis;
        let system = Actor::system("recovery");
        let mut n = 0;
        for l in self.store.unsettled_launches().await? {
            if now - l.created_at < timeout * (l.count + 2) + 5_000 {
                continue;
            }
            let Ok(account) = AccountName::parse(&l.account) else {
                continue;
            };
            let Some(provider) = self.sync.provider(&account) else {
                continue;
            };
            let found = tokio::time::timeout(
                self.config.action_timeout,
                provider.instances_tagged(&l.region, LAUNCH_ID_TAG, &l.token),
            )
            .await;
            let found = match found {
                Ok(Ok(found)) => found,
                // The provider cannot tell now: leave it for the next pass.
                Ok(Err(e)) => {
                    tracing::warn!(launch = %l.id, error = %e, "settling a launch: the lookup failed");
                    continue;
                }
                Err(_) => continue,
            };
            let made: Vec<(u32, String, ObservedResource)> = found
                .into_iter()
                .map(|o| {
                    let index = o
                        .tags
                        .get(LAUNCH_INDEX_TAG)
                        .and_then(|i| i.parse().ok())
                        .unwrap_or(0);
                    (index, o.name.clone(), o)
                })
                .collect();
            let complete = made.len() >= l.count as usize;
            let note = (!complete).then(|| {
                (
                    "interrupted",
                    format!(
                        "interrupted: settled after a restart with the {} server(s) found under its tag; not retried",
                        made.len()
                    ),
                )
            });
            match self.settle_launch(&system, &l, &account, made, note).await {
                Ok(_) => n += 1,
                Err(AppError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Whether the actor may see a launch: who asked for it, its owner
    /// (or a member of the owning group), admins and auditors.
    fn may_see_launch(&self, actor: &Actor, l: &LaunchRow) -> bool {
        l.requested_by == Some(actor.user_id)
            || l.owner == actor.username
            || l.owner
                .strip_prefix("group:")
                .is_some_and(|g| actor.groups.iter().any(|(_, n)| n == g))
            || matches!(
                actor.role,
                skyhold_core::Role::Admin | skyhold_core::Role::Auditor
            )
    }

    pub async fn launch_row(&self, actor: &Actor, id: LaunchId) -> Result<LaunchRow, AppError> {
        self.authorize(actor, Action::ViewActions, Object::None)
            .await?;
        let l = self.store.launch(id).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound(format!("launch {id}")),
            o => o.into(),
        })?;
        if self.may_see_launch(actor, &l) {
            Ok(l)
        } else {
            Err(AppError::NotFound(format!("launch {id}")))
        }
    }

    /// Launches the actor may see, newest first (of one owner and/or by one
    /// requester), and the next page's cursor.
    pub async fn launches(
        &self,
        actor: &Actor,
        owner: Option<&str>,
        requested_by: Option<UserId>,
        cursor: Option<LaunchId>,
        limit: i64,
    ) -> Result<(Vec<LaunchRow>, Option<LaunchId>), AppError> {
        self.authorize(actor, Action::ViewActions, Object::None)
            .await?;
        // The rule of `may_see_launch`, as a filter in the query.
        let sees_all = matches!(
            actor.role,
            skyhold_core::Role::Admin | skyhold_core::Role::Auditor
        );
        let mine: Vec<String> = std::iter::once(actor.username.clone())
            .chain(actor.groups.iter().map(|(_, g)| format!("group:{g}")))
            .collect();
        let visible = (!sees_all).then_some((actor.user_id, mine.as_slice()));
        let mut rows = self
            .store
            .list_launches(owner, requested_by, visible, cursor, limit)
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|l| l.id)
        } else {
            None
        };
        debug_assert!(rows.iter().all(|l| self.may_see_launch(actor, l)));
        Ok((rows, next))
    }

    /// Waits (up to five minutes) until every server of a settled launch
    /// runs and has an address, re-reading them every second.
    pub async fn wait_for_launch(
        &self,
        actor: &Actor,
        l: &LaunchRow,
    ) -> Result<LaunchRow, AppError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        let account = AccountName::parse(&l.account).map_err(AppError::Conflict)?;
        let ids: Vec<String> = l
            .instances
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["provider_id"].as_str().map(str::to_owned))
            .collect();
        loop {
            let rows = self
                .store
                .resources_by_provider_ids(
                    &account,
                    Some(&l.region),
                    Some(ResourceKind::Instance),
                    &ids,
                )
                .await?;
            let ready = rows.iter().all(|r| {
                r.deleted_at.is_some()
                    || (r.observed.state == "running"
                        && !(r.observed.private_ip.is_empty() && r.observed.public_ip.is_empty()))
            });
            if ready || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            for r in rows {
                if r.deleted_at.is_none() && r.observed.state != "running" {
                    self.reread(&r).await?;
                }
            }
        }
        self.launch_row(actor, l.id).await
    }
}

impl App {
    /// The key hook: the SSH keys of every user who may operate instance
    /// `provider_id` (its owner, the grantees and their groups' members,
    /// admins), in authorized_keys format. `secret` is the per-instance
    /// secret from its user data; a wrong or missing one is refused alike.
    pub async fn authorized_keys(
        &self,
        provider_id: &str,
        secret: &str,
    ) -> Result<String, AppError> {
        let stored = self.store.instance_secret(provider_id).await?;
        let Some((hash, account, region)) = stored else {
            return Err(AppError::Unauthenticated);
        };
        if !auth::ct_eq(&auth::sha256_hex(secret), &hash) {
            return Err(AppError::Unauthenticated);
        }
        let account =
            AccountName::parse(&account).map_err(|_| AppError::NotFound("instance".into()))?;
        let r = self
            .store
            .resources_by_provider_ids(
                &account,
                Some(&region),
                Some(ResourceKind::Instance),
                &[provider_id.to_owned()],
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::NotFound(format!("instance {provider_id}")))?;
        let mut out = String::new();
        for (user_id, keys) in self.store.users_with_ssh_keys().await? {
            let Some(u) = self.store.user_by_id(user_id).await? else {
                continue;
            };
            let username = u.username.clone();
            let actor = self
                .actor_for(
                    u,
                    super::access::AuthVia::System("key-hook".into()),
                    Default::default(),
                )
                .await?;
            if !self.allows(&actor, Action::StartResource, Object::Resource(&r)) {
                continue;
            }
            for k in keys {
                let mut words = k.public_key.split_whitespace();
                let (Some(kind), Some(b64)) = (words.next(), words.next()) else {
                    continue;
                };
                out.push_str(&format!(
                    "{kind} {b64} skyhold:{username}:{}\n",
                    k.name.replace(char::is_whitespace, "_")
                ));
            }
        }
        Ok(out)
    }
}

/// How to reach an instance over SSH.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub provider_id: String,
    pub name: String,
    pub state: String,
    pub public_ip: String,
    pub private_ip: String,
    pub fqdn: Option<String>,
    /// From the blueprint it was launched from; `None` when unknown.
    pub login_user: Option<String>,
}

impl App {
    /// What `skyhold ssh` needs about an instance (view on it): its
    /// addresses, DNS name, state, and the login user of the blueprint
    /// version it was launched from (read here, so no grant on the
    /// blueprint is needed to reach one's own server).
    pub async fn ssh_target(
        &self,
        actor: &Actor,
        id: skyhold_core::ResourceId,
    ) -> Result<SshTarget, AppError> {
        let r = self.store.get_resource(id).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound(format!("resource {id}")),
            o => o.into(),
        })?;
        self.authorize(actor, Action::ViewResource, Object::Resource(&r))
            .await?;
        if r.observed.kind != ResourceKind::Instance {
            return Err(AppError::BadRequest(format!(
                "resource {id} is a {}, not an instance",
                r.observed.kind
            )));
        }
        let tags = &r.observed.tags;
        let login_user = match tags
            .get(skyhold_core::launch::BLUEPRINT_TAG)
            .and_then(|b| b.rsplit_once('@'))
        {
            Some((name, version)) => match version.parse::<i64>() {
                Ok(v) => self
                    .store
                    .blueprint(name, Some(v))
                    .await
                    .ok()
                    .map(|b| b.spec.login_user)
                    .filter(|u| !u.is_empty()),
                Err(_) => None,
            },
            None => None,
        };
        Ok(SshTarget {
            provider_id: r.observed.provider_id.clone(),
            name: r.observed.name.clone(),
            state: if r.deleted_at.is_some() {
                "terminated".into()
            } else {
                r.observed.state.clone()
            },
            public_ip: r.observed.public_ip.clone(),
            private_ip: r.observed.private_ip.clone(),
            fqdn: tags.get(skyhold_core::launch::FQDN_TAG).cloned(),
            login_user,
        })
    }
}
