//! `skyhold start|stop|reboot|terminate NAME_OR_ID...` and `skyhold owner
//! set`: actions through the API, with names resolved as `ls` finds them,
//! ambiguous names refused with their candidates, and `--wait` following
//! each instance until it reaches its state.

use super::access::urlencode;
use super::{client, emit, print_table, s, Client};
use anyhow::{anyhow, bail, Result};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Quotes a value for the search language when it needs it.
fn quoted(v: &str) -> String {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    {
        v.to_owned()
    } else {
        format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Finds the one resource `name_or_id` names: a skyhold id, a provider id
/// (`i-0abc…`), or a name (of an instance unless `kind` says otherwise).
pub async fn resolve(c: &Client, name_or_id: &str, kind: &str) -> Result<Value> {
    let v = name_or_id.trim();
    if v.is_empty() {
        bail!("empty name");
    }
    if v.chars().all(|ch| ch.is_ascii_digit()) {
        return c.call(Method::GET, &format!("/resources/{v}"), None).await;
    }
    for term in ["id", "name"] {
        let q = format!("kind:{kind} {term}:{}", quoted(v));
        let page = c
            .call(
                Method::GET,
                &format!("/resources?limit=20&q={}", urlencode(&q)),
                None,
            )
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        match items.len() {
            0 => continue,
            1 => return Ok(items[0].clone()),
            n => {
                let list: Vec<String> = items
                    .iter()
                    .map(|i| {
                        format!(
                            "  {}  {}  {}/{}  {}",
                            s(i, "/id"),
                            s(i, "/provider_id"),
                            s(i, "/account"),
                            s(i, "/region"),
                            s(i, "/state")
                        )
                    })
                    .collect();
                bail!(
                    "{v:?} names {n}{} {kind}s; use one of their ids:\n{}",
                    if page["next_cursor"].is_null() {
                        ""
                    } else {
                        "+"
                    },
                    list.join("\n")
                );
            }
        }
    }
    bail!("no {kind} named {v:?} (try `skyhold ls {v}`)")
}

fn target_state(action: &str) -> &'static str {
    match action {
        "stop" => "stopped",
        "terminate" => "terminated",
        _ => "running",
    }
}

/// Follows one resource until `done` holds for it (or 5 minutes pass),
/// printing each state it passes through on standard error; returns it as
/// last read.
pub(super) async fn wait_until(
    c: &Client,
    id: &str,
    label: &str,
    wanted: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = String::new();
    loop {
        let r = c
            .call(Method::POST, &format!("/resources/{id}/refresh"), None)
            .await?;
        let state = if r["deleted_at"].is_null() {
            s(&r, "/state")
        } else {
            "terminated".to_owned()
        };
        if state != last {
            eprintln!("{label}: {state}");
            last = state.clone();
        }
        if done(&r) {
            return Ok(r);
        }
        if Instant::now() >= deadline {
            bail!("{label}: still {state} after 5 minutes (wanted {wanted})");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Follows one resource until it reaches state `want`.
async fn wait_for(c: &Client, id: &str, label: &str, want: &str) -> Result<String> {
    wait_until(c, id, label, want, |r| {
        let state = if r["deleted_at"].is_null() {
            s(r, "/state")
        } else {
            "terminated".to_owned()
        };
        state == want
    })
    .await?;
    Ok(want.to_owned())
}

pub async fn power(
    action: &str,
    targets: Vec<String>,
    wait: bool,
    yes: bool,
    as_json: bool,
) -> Result<()> {
    if targets.is_empty() {
        bail!("name at least one instance (a name, an i-… id or a skyhold id)");
    }
    let c = client()?;
    // Resolve everything first: an ambiguous or unknown name stops the
    // command before anything is done.
    let mut resolved = Vec::new();
    for t in &targets {
        resolved.push(resolve(&c, t, "instance").await?);
    }
    let mut results = Vec::new();
    let mut failed = 0;
    for r in &resolved {
        let id = s(r, "/id");
        let name = s(r, "/name");
        let pid = s(r, "/provider_id");
        let label = if name.is_empty() {
            pid.clone()
        } else {
            format!("{name} ({pid})")
        };
        let mut body = json!({"action": action});
        if action == "terminate" {
            let confirm = if yes {
                pid.clone()
            } else if std::io::stdin().is_terminal() {
                let typed = super::read_line(&format!(
                    "Terminating {label} cannot be undone. Type its name or id to confirm: "
                ))?;
                if typed.trim().is_empty() {
                    bail!("not confirmed; nothing was terminated");
                }
                typed
            } else {
                bail!("terminate needs --yes when standard input is not a terminal");
            };
            body["confirm"] = json!(confirm);
        }
        match c
            .call(
                Method::POST,
                &format!("/resources/{id}/actions"),
                Some(body),
            )
            .await
        {
            Ok(a) => {
                let end = if wait && a["state"] == "succeeded" {
                    match wait_for(&c, &id, &label, target_state(action)).await {
                        Ok(state) => state,
                        Err(e) => {
                            failed += 1;
                            format!("wait failed: {e}")
                        }
                    }
                } else {
                    String::new()
                };
                results.push(json!({"target": label, "action": a, "reached": end}));
            }
            Err(e) => {
                failed += 1;
                results.push(json!({"target": label, "error": e.to_string()}));
            }
        }
    }
    if as_json {
        emit(&serde_json::to_string_pretty(&Value::Array(results))?)?;
    } else {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|r| {
                vec![
                    s(r, "/target"),
                    action.to_owned(),
                    r["action"]["state"]
                        .as_str()
                        .unwrap_or("refused")
                        .to_owned(),
                    r["reached"].as_str().unwrap_or("").to_owned(),
                    r["error"].as_str().unwrap_or("").to_owned(),
                ]
            })
            .collect();
        print_table(&["INSTANCE", "ACTION", "RESULT", "NOW", "ERROR"], &rows)?;
    }
    if failed > 0 {
        return Err(anyhow!("{failed} of {} failed", resolved.len()));
    }
    Ok(())
}

pub async fn set_owner(target: &str, owner: &str, kind: &str, as_json: bool) -> Result<()> {
    let c = client()?;
    let r = resolve(&c, target, kind).await?;
    let v = c
        .call(
            Method::POST,
            &format!("/resources/{}/owner", s(&r, "/id")),
            Some(json!({"owner": owner})),
        )
        .await?;
    if as_json {
        return emit(&serde_json::to_string_pretty(&v)?);
    }
    emit(&format!(
        "{} ({}) is now owned by {}",
        s(&r, "/name"),
        s(&r, "/provider_id"),
        s(&v, "/resource/owner")
    ))
}

/// Sets, extends or clears a resource's expiry (`body`: one of `in`,
/// `at`, `extend`, `never`, as the API takes it).
pub async fn set_expiry(target: &str, body: Value, kind: &str, as_json: bool) -> Result<()> {
    let c = client()?;
    let r = resolve(&c, target, kind).await?;
    let v = c
        .call(
            Method::POST,
            &format!("/resources/{}/expiry", s(&r, "/id")),
            Some(body),
        )
        .await?;
    if as_json {
        return emit(&serde_json::to_string_pretty(&v)?);
    }
    let set = v["params"]["expires_at"].as_str().unwrap_or_default();
    emit(&format!(
        "{} ({}) {}",
        s(&r, "/name"),
        s(&r, "/provider_id"),
        if set == skyhold_core::expiry::NEVER {
            "never expires".to_owned()
        } else {
            format!("expires at {set}")
        }
    ))
}

/// Writes (`reason`), removes (`off`) or shows a resource's keep opt-out.
pub async fn keep(
    target: &str,
    reason: Option<&str>,
    off: bool,
    kind: &str,
    as_json: bool,
) -> Result<()> {
    let c = client()?;
    let r = resolve(&c, target, kind).await?;
    let path = format!("/resources/{}/keep", s(&r, "/id"));
    let label = format!("{} ({})", s(&r, "/name"), s(&r, "/provider_id"));
    if !off && reason.is_none() {
        let v = c.call(Method::GET, &path, None).await?;
        if as_json {
            return emit(&serde_json::to_string_pretty(&v)?);
        }
        return emit(&match s(&v, "/state").as_str() {
            "trusted" => format!("{label} is kept: {}", s(&v, "/reason")),
            "untrusted" => format!(
                "{label} has a keep tag set outside skyhold ({}): not honoured",
                s(&v, "/reason")
            ),
            _ => format!("{label} is not kept"),
        });
    }
    let v = match reason {
        Some(why) => {
            c.call(Method::POST, &path, Some(json!({"reason": why})))
                .await?
        }
        None => c.call(Method::DELETE, &path, None).await?,
    };
    if as_json {
        return emit(&serde_json::to_string_pretty(&v)?);
    }
    emit(&match reason {
        Some(why) => format!("{label} is kept: {why}"),
        None => format!("{label} is no longer kept"),
    })
}

#[derive(clap::Subcommand)]
pub enum ImageCommand {
    /// Make an own image of an instance. Without --no-reboot the instance
    /// reboots so its file systems are consistent in the image.
    Create {
        /// The instance: a name, i-… id or skyhold id.
        instance: String,
        /// The image's name (default: the instance's name and the time).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Do not reboot: no downtime, but the image may catch files mid-write.
        #[arg(long)]
        no_reboot: bool,
        /// Follow the image until it is available.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Deregister an own image (asks for its name on a terminal; --yes otherwise).
    Rm {
        /// The image: a name, ami-… id or skyhold id.
        image: String,
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn image(cmd: ImageCommand) -> Result<()> {
    let c = client()?;
    match cmd {
        ImageCommand::Create {
            instance,
            name,
            description,
            no_reboot,
            wait,
            json,
        } => {
            let r = resolve(&c, &instance, "instance").await?;
            let mut body = json!({"no_reboot": no_reboot});
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let a = c
                .call(
                    Method::POST,
                    &format!("/resources/{}/image", s(&r, "/id")),
                    Some(body),
                )
                .await?;
            let image_id = a["result"]["image_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut state = String::new();
            if wait && !image_id.is_empty() {
                let img = resolve(&c, &image_id, "image").await?;
                let done = wait_until(&c, &s(&img, "/id"), &image_id, "available", |i| {
                    matches!(s(i, "/state").as_str(), "available" | "failed")
                })
                .await?;
                state = s(&done, "/state");
            }
            if json {
                return emit(&serde_json::to_string_pretty(&a)?);
            }
            emit(&format!(
                "image {image_id} ({}) of {}{}",
                s(&a, "/params/name"),
                s(&r, "/provider_id"),
                if state.is_empty() {
                    String::new()
                } else {
                    format!(": {state}")
                }
            ))
        }
        ImageCommand::Rm { image, yes, json } => {
            let r = resolve(&c, &image, "image").await?;
            let pid = s(&r, "/provider_id");
            let confirm = if yes {
                pid.clone()
            } else if std::io::stdin().is_terminal() {
                super::read_line(&format!(
                    "Deregistering {pid} cannot be undone. Type its name or id to confirm: "
                ))?
            } else {
                bail!("rm needs --yes when standard input is not a terminal");
            };
            let a = c
                .call(
                    Method::POST,
                    &format!("/resources/{}/deregister", s(&r, "/id")),
                    Some(json!({"confirm": confirm.trim()})),
                )
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&a)?);
            }
            emit(&format!("deregistered {pid}"))
        }
    }
}
