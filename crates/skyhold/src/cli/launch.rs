//! `skyhold launch`, `skyhold blueprint …` and `skyhold quota …`: through
//! the API, as the web UI does. `launch --dry-run` prints what a launch
//! would take and its command lines; `--wait` follows each server until it
//! runs and has an address.

use super::access::urlencode;
use super::actions::wait_until;
use super::{client, confirm, emit, print_table, s};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::io::Read;

#[derive(clap::Args)]
pub struct LaunchArgs {
    /// The blueprint's name or id.
    blueprint: String,
    /// The server's name (with --count N: NAME-1 … NAME-N).
    #[arg(long)]
    name: String,
    /// An instance type the blueprint allows (default: the blueprint's).
    #[arg(long = "type", short = 't')]
    instance_type: Option<String>,
    /// How many servers (1-20).
    #[arg(long)]
    count: Option<u32>,
    /// A package the blueprint offers (repeat for more).
    #[arg(long = "package")]
    packages: Vec<String>,
    /// Time to live: 8h, 3d, or never (default: the blueprint's).
    #[arg(long)]
    ttl: Option<String>,
    /// Launch on someone's behalf: USER or group:NAME.
    #[arg(long = "for")]
    owner: Option<String>,
    #[arg(long, short)]
    account: Option<String>,
    #[arg(long, short)]
    region: Option<String>,
    /// Root volume size in GiB (up to the blueprint's maximum).
    #[arg(long)]
    root_volume_gib: Option<u32>,
    /// Which of the owner's SSH keys (name or fingerprint; default the newest).
    #[arg(long)]
    key: Option<String>,
    /// Launch nothing: print the quota it would take and the command lines.
    #[arg(long)]
    dry_run: bool,
    /// Follow each server until it runs and has an address.
    #[arg(long)]
    wait: bool,
    #[arg(long)]
    json: bool,
}

impl LaunchArgs {
    fn body(&self) -> Value {
        let mut b = json!({"blueprint": self.blueprint, "name": self.name});
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                b[k] = v;
            }
        };
        set("type", self.instance_type.clone().map(Value::from));
        set("count", self.count.map(Value::from));
        set(
            "packages",
            (!self.packages.is_empty()).then(|| json!(self.packages)),
        );
        set("ttl", self.ttl.clone().map(Value::from));
        set("owner", self.owner.clone().map(Value::from));
        set("account", self.account.clone().map(Value::from));
        set("region", self.region.clone().map(Value::from));
        set("root_volume_gib", self.root_volume_gib.map(Value::from));
        set("key", self.key.clone().map(Value::from));
        b
    }
}

/// `instances 2 (of 10 left)`-style lines for a preview.
fn quota_lines(p: &Value) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for q in p["quotas"].as_array().into_iter().flatten() {
        for dim in ["instances", "vcpus", "memory_gib", "volume_gib"] {
            let limit = &q["limits"][dim];
            if limit.is_null() {
                continue;
            }
            rows.push(vec![
                s(q, "/subject"),
                s(q, "/source"),
                dim.to_owned(),
                q["usage"][dim].to_string(),
                p["request"][dim].to_string(),
                limit.to_string(),
            ]);
        }
    }
    rows
}

pub async fn launch(a: LaunchArgs) -> Result<()> {
    let c = client()?;
    if a.dry_run {
        let mut body = a.body();
        body["dry_run"] = json!(true);
        let p = c.call(Method::POST, "/launches", Some(body)).await?;
        if a.json {
            return emit(&serde_json::to_string_pretty(&p)?);
        }
        let names: Vec<String> = p["servers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        emit(&format!(
            "Would launch {} × {} from {}@{} in {}/{} (image {}), owned by {}{}.",
            names.len(),
            s(&p, "/type"),
            s(&p, "/blueprint"),
            p["blueprint_version"],
            s(&p, "/account"),
            s(&p, "/region"),
            s(&p, "/image/id"),
            s(&p, "/owner"),
            match p["expires_at"].as_str() {
                Some(t) => format!(", expiring {t}"),
                None => ", never expiring".to_owned(),
            }
        ))?;
        emit(&format!("Servers: {}", names.join(", ")))?;
        let rows = quota_lines(&p);
        if rows.is_empty() {
            emit("Quotas: none limit this launch.")?;
        } else {
            print_table(
                &["QUOTA", "FROM", "DIMENSION", "IN USE", "REQUEST", "LIMIT"],
                &rows,
            )?;
        }
        if let Some(e) = p["exceeded"].as_object() {
            emit(&format!(
                "This launch would be refused: {} {} would exceed its limit of {}.",
                s(&p, "/exceeded/subject"),
                e.get("dimension").and_then(Value::as_str).unwrap_or(""),
                p["exceeded"]["limit"]
            ))?;
        }
        emit("")?;
        emit("Equivalent commands:")?;
        emit(&format!("  {}", s(&p, "/commands/skyhold")))?;
        for cmd in p["commands"]["aws"].as_array().into_iter().flatten() {
            emit(&format!("  {}", cmd.as_str().unwrap_or_default()))?;
        }
        return Ok(());
    }
    let l = c.call(Method::POST, "/launches", Some(a.body())).await?;
    let mut servers: Vec<Value> = l["instances"].as_array().cloned().unwrap_or_default();
    if a.wait {
        for srv in servers.iter_mut() {
            let pid = s(srv, "/provider_id");
            let label = format!("{} ({pid})", s(srv, "/name"));
            let found = c
                .call(
                    Method::GET,
                    &format!(
                        "/resources?limit=1&q={}",
                        urlencode(&format!("kind:instance id:{pid}"))
                    ),
                    None,
                )
                .await?;
            let Some(id) = found["items"][0]["id"].as_i64() else {
                continue;
            };
            let has =
                |r: &Value, k: &str| r["attributes"][k].as_str().is_some_and(|v| !v.is_empty());
            let r = wait_until(
                &c,
                &id.to_string(),
                &label,
                "running with an address",
                |r| r["state"] == "running" && (has(r, "private_ip") || has(r, "public_ip")),
            )
            .await?;
            srv["state"] = r["state"].clone();
            srv["private_ip"] = r["attributes"]["private_ip"].clone();
            srv["public_ip"] = r["attributes"]["public_ip"].clone();
        }
    }
    if a.json {
        let mut out = l.clone();
        out["instances"] = Value::Array(servers);
        return emit(&serde_json::to_string_pretty(&out)?);
    }
    let rows: Vec<Vec<String>> = servers
        .iter()
        .map(|i| {
            vec![
                s(i, "/name"),
                s(i, "/provider_id"),
                s(i, "/state"),
                s(i, "/private_ip"),
                s(i, "/public_ip"),
                s(i, "/fqdn"),
            ]
        })
        .collect();
    print_table(
        &["NAME", "ID", "STATE", "PRIVATE IP", "PUBLIC IP", "DNS NAME"],
        &rows,
    )?;
    emit(&format!(
        "launch {}: {}{}",
        l["id"],
        s(&l, "/state"),
        match l["error"]["message"].as_str() {
            Some(m) => format!(" ({m})"),
            None => String::new(),
        }
    ))?;
    if l["state"] == "partial" {
        bail!("only {} of {} servers started", servers.len(), l["count"]);
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum BlueprintCommand {
    /// List the blueprints you may see.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Show one blueprint (its current version, or --version N).
    Show {
        name: String,
        #[arg(long)]
        version: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Create a blueprint from a JSON file ('-': standard input), with the
    /// fields of POST /api/v1/blueprints.
    Add {
        file: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a blueprint: FIELD=VALUE pairs (VALUE as JSON where it parses,
    /// e.g. instance_types='["t3.*"]'), or --file with a JSON object.
    Edit {
        name: String,
        changes: Vec<String>,
        #[arg(long)]
        file: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a blueprint (running servers keep what they were launched with).
    Rm {
        name: String,
        #[arg(long)]
        yes: bool,
    },
}

fn read_json(file: &str) -> Result<Value> {
    let text = if file == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t)?;
        t
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
    };
    serde_json::from_str(&text).with_context(|| format!("{file} is not valid JSON"))
}

fn print_blueprint(b: &Value) -> Result<()> {
    let list = |k: &str| {
        b[k].as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    for (k, v) in [
        ("name", s(b, "/name")),
        ("version", b["version"].to_string()),
        ("description", s(b, "/description")),
        ("accounts", list("accounts")),
        ("regions", list("regions")),
        ("image", s(b, "/image")),
        ("instance types", list("instance_types")),
        ("default type", s(b, "/default_type")),
        ("login user", s(b, "/login_user")),
        ("packages", list("packages")),
        ("default ttl", s(b, "/default_ttl")),
        ("max ttl", s(b, "/max_ttl")),
        (
            "dns",
            format!("{} {}", s(b, "/dns_name_pattern"), s(b, "/dns_zone")),
        ),
    ] {
        emit(&format!("{k:>15}: {v}"))?;
    }
    Ok(())
}

pub async fn blueprint(cmd: BlueprintCommand) -> Result<()> {
    let c = client()?;
    match cmd {
        BlueprintCommand::Ls { json } => {
            let v = c.call(Method::GET, "/blueprints", None).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    vec![
                        s(b, "/name"),
                        b["version"].to_string(),
                        s(b, "/image"),
                        s(b, "/default_type"),
                        s(b, "/default_ttl"),
                        s(b, "/description"),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "VERSION", "IMAGE", "TYPE", "TTL", "DESCRIPTION"],
                &rows,
            )
        }
        BlueprintCommand::Show {
            name,
            version,
            json,
        } => {
            let mut path = format!("/blueprints/{}", urlencode(&name));
            if let Some(v) = version {
                path.push_str(&format!("?version={v}"));
            }
            let b = c.call(Method::GET, &path, None).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&b)?);
            }
            print_blueprint(&b)
        }
        BlueprintCommand::Add { file, json } => {
            let body = read_json(&file)?;
            let b = c.call(Method::POST, "/blueprints", Some(body)).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&b)?);
            }
            emit(&format!("created blueprint {} (version 1)", s(&b, "/name")))
        }
        BlueprintCommand::Edit {
            name,
            changes,
            file,
            json,
        } => {
            let mut body = match file {
                Some(f) => read_json(&f)?,
                None => Value::Object(Map::new()),
            };
            for ch in &changes {
                let Some((k, v)) = ch.split_once('=') else {
                    bail!("{ch:?}: write FIELD=VALUE");
                };
                body[k.trim()] = serde_json::from_str(v).unwrap_or_else(|_| json!(v));
            }
            if body.as_object().is_none_or(Map::is_empty) {
                bail!("nothing to change: give FIELD=VALUE pairs or --file");
            }
            let b = c
                .call(
                    Method::PATCH,
                    &format!("/blueprints/{}", urlencode(&name)),
                    Some(body),
                )
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&b)?);
            }
            emit(&format!(
                "{} is now at version {}",
                s(&b, "/name"),
                b["version"]
            ))
        }
        BlueprintCommand::Rm { name, yes } => {
            confirm(yes, &format!("Remove blueprint {name}?"), None)?;
            c.call(
                Method::DELETE,
                &format!("/blueprints/{}", urlencode(&name)),
                None,
            )
            .await?;
            emit(&format!("removed blueprint {name}"))
        }
    }
}

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// Your own quotas: limits, where they come from, usage, what is left.
    Me {
        #[arg(long)]
        json: bool,
    },
    /// Every stored quota (admins and auditors), or one subject's as a
    /// launch would see it.
    Ls {
        /// user:NAME or group:NAME.
        subject: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Set a quota (admins): SUBJECT is user:NAME, group:NAME,
    /// default:user or default:group. A limit left out is unlimited.
    Set {
        subject: String,
        #[arg(long)]
        instances: Option<u64>,
        #[arg(long)]
        vcpus: Option<u64>,
        #[arg(long)]
        memory_gib: Option<u64>,
        #[arg(long)]
        volume_gib: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a quota (its subject falls back to the default).
    Rm { subject: String },
}

fn limit(v: &Value) -> String {
    if v.is_null() {
        "-".into()
    } else {
        v.to_string()
    }
}

fn print_usage(items: &Value) -> Result<()> {
    let mut rows = Vec::new();
    for q in items.as_array().into_iter().flatten() {
        for dim in ["instances", "vcpus", "memory_gib", "volume_gib"] {
            rows.push(vec![
                s(q, "/subject"),
                s(q, "/source"),
                dim.to_owned(),
                q["usage"][dim].to_string(),
                limit(&q["limits"][dim]),
                limit(&q["remaining"][dim]),
            ]);
        }
    }
    print_table(
        &["QUOTA", "FROM", "DIMENSION", "IN USE", "LIMIT", "LEFT"],
        &rows,
    )
}

pub async fn quota(cmd: QuotaCommand) -> Result<()> {
    let c = client()?;
    match cmd {
        QuotaCommand::Me { json } => {
            let v = c.call(Method::GET, "/me/quota", None).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            print_usage(&v["items"])
        }
        QuotaCommand::Ls { subject, json } => {
            let path = match &subject {
                Some(s) => format!("/quotas?subject={}", urlencode(s)),
                None => "/quotas".to_owned(),
            };
            let v = c.call(Method::GET, &path, None).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            if subject.is_some() {
                return print_usage(&v["items"]);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|q| {
                    vec![
                        s(q, "/subject"),
                        limit(&q["instances"]),
                        limit(&q["vcpus"]),
                        limit(&q["memory_gib"]),
                        limit(&q["volume_gib"]),
                    ]
                })
                .collect();
            print_table(
                &["SUBJECT", "INSTANCES", "VCPUS", "MEMORY GIB", "VOLUME GIB"],
                &rows,
            )
        }
        QuotaCommand::Set {
            subject,
            instances,
            vcpus,
            memory_gib,
            volume_gib,
            json,
        } => {
            let q = c
                .call(
                    Method::POST,
                    "/quotas",
                    Some(
                        json!({"subject": subject, "instances": instances, "vcpus": vcpus,
                                "memory_gib": memory_gib, "volume_gib": volume_gib}),
                    ),
                )
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&q)?);
            }
            emit(&format!(
                "{}: instances {}, vcpus {}, memory {} GiB, volumes {} GiB",
                s(&q, "/subject"),
                limit(&q["instances"]),
                limit(&q["vcpus"]),
                limit(&q["memory_gib"]),
                limit(&q["volume_gib"])
            ))
        }
        QuotaCommand::Rm { subject } => {
            c.call(
                Method::DELETE,
                &format!("/quotas/{}", urlencode(&subject)),
                None,
            )
            .await?;
            emit(&format!("removed the quota of {subject}"))
        }
    }
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Add an SSH public key from a file (default ~/.ssh/id_ed25519.pub;
    /// '-': standard input).
    Add {
        file: Option<String>,
        /// A label (default: the key's comment).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List your keys by fingerprint.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Remove one of your keys (its id, name or fingerprint).
    Rm { key: String },
}

pub async fn key(cmd: KeyCommand) -> Result<()> {
    let c = client()?;
    match cmd {
        KeyCommand::Add { file, name, json } => {
            let line = match file.as_deref() {
                Some("-") => {
                    let mut t = String::new();
                    std::io::stdin().read_to_string(&mut t)?;
                    t
                }
                Some(f) => {
                    std::fs::read_to_string(f).with_context(|| format!("cannot read {f}"))?
                }
                None => {
                    let home = dirs::home_dir().context("no home directory: name the key file")?;
                    let f = home.join(".ssh").join("id_ed25519.pub");
                    std::fs::read_to_string(&f).with_context(|| {
                        format!("cannot read {}: name the key file", f.display())
                    })?
                }
            };
            let k = c
                .call(
                    Method::POST,
                    "/me/keys",
                    Some(json!({"public_key": line.trim(), "name": name.unwrap_or_default()})),
                )
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&k)?);
            }
            emit(&format!(
                "added {} ({})",
                s(&k, "/name"),
                s(&k, "/fingerprint")
            ))
        }
        KeyCommand::Ls { json } => {
            let v = c.call(Method::GET, "/me/keys", None).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    vec![
                        k["id"].to_string(),
                        s(k, "/name"),
                        s(k, "/fingerprint"),
                        s(k, "/public_key")
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_owned(),
                        s(k, "/created_at"),
                    ]
                })
                .collect();
            print_table(&["ID", "NAME", "FINGERPRINT", "TYPE", "ADDED"], &rows)
        }
        KeyCommand::Rm { key } => {
            let v = c.call(Method::GET, "/me/keys", None).await?;
            let found: Vec<&Value> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|k| {
                    k["id"].as_i64().is_some_and(|i| i.to_string() == key)
                        || s(k, "/name") == key
                        || s(k, "/fingerprint") == key
                })
                .collect();
            let k = match found.as_slice() {
                [k] => *k,
                [] => bail!("you have no key {key:?} (see `skyhold key ls`)"),
                _ => bail!("{key:?} names several of your keys; use its id (see `skyhold key ls`)"),
            };
            c.call(Method::DELETE, &format!("/me/keys/{}", k["id"]), None)
                .await?;
            emit(&format!(
                "removed {} ({})",
                s(k, "/name"),
                s(k, "/fingerprint")
            ))
        }
    }
}
