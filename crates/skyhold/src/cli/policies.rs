//! `skyhold policies`: the expiry policy's preview (with an unsaved change
//! to try), its passes, running one now and confirming a held one.

use super::access::urlencode;
use super::{client, emit, print_table, s};
use anyhow::Result;
use clap::Subcommand;
use reqwest::Method;
use serde_json::Value;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// What the expiry (or idle) policy would warn, stop and delete now
    /// and in the next 24 h; the flags preview a change to the global
    /// rules (--warn, --action, --terminate-after, --snapshot-before-terminate
    /// for expiry; --cpu-below, --for, --warn-before for idle; --mode both).
    Preview {
        /// expiry, or idle (what the idle policy would warn and stop now,
        /// reading the metrics; takes no change).
        #[arg(long, default_value = "expiry", value_parser = ["expiry", "idle"])]
        policy: String,
        /// Warning points, comma-separated (24h,1h).
        #[arg(long)]
        warn: Option<String>,
        /// stop, terminate or none.
        #[arg(long)]
        action: Option<String>,
        /// The grace period before deletion (7d), or never.
        #[arg(long)]
        terminate_after: Option<String>,
        /// true or false.
        #[arg(long)]
        snapshot_before_terminate: Option<bool>,
        /// enforce or dry-run.
        #[arg(long)]
        mode: Option<String>,
        /// Idle: the CPU threshold to try (percent).
        #[arg(long)]
        cpu_below: Option<f64>,
        /// Idle: how long under the threshold (6h).
        #[arg(long = "for")]
        idle_for: Option<String>,
        /// Idle: the warning's lead (1h).
        #[arg(long)]
        warn_before: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The passes, newest first (held ones wait for `confirm`).
    Runs {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Run a pass now (admins).
    Run {
        /// expiry or idle.
        #[arg(long, default_value = "expiry", value_parser = ["expiry", "idle"])]
        policy: String,
        #[arg(long)]
        json: bool,
    },
    /// Confirm a pass held by the mass-action cap and carry out its plan
    /// (admins).
    Confirm {
        /// The held pass's id.
        id: i64,
        #[arg(long)]
        json: bool,
    },
}

fn decision_rows(items: &Value) -> Vec<Vec<String>> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let name = match s(d, "/name") {
                n if n.is_empty() => s(d, "/provider_id"),
                n => n,
            };
            vec![
                s(d, "/step"),
                s(d, "/due_at"),
                s(d, "/kind"),
                name,
                s(d, "/owner"),
                s(d, "/account"),
                s(d, "/outcome"),
                s(d, "/reason"),
            ]
        })
        .collect()
}

const DECISION_HEADER: [&str; 8] = [
    "STEP", "DUE", "KIND", "NAME", "OWNER", "ACCOUNT", "OUTCOME", "REASON",
];

fn print_run(r: &Value) -> Result<()> {
    outln!(
        "{} run {} ({}, {}): {}{}",
        s(r, "/policy"),
        r["id"],
        s(r, "/cause"),
        s(r, "/mode"),
        s(r, "/state"),
        match s(r, "/note") {
            n if n.is_empty() => String::new(),
            n => format!(": {n}"),
        }
    );
    outln!("counts: {}", r["counts"]);
    if r["plan"].as_array().is_some_and(|p| !p.is_empty()) {
        print_table(&DECISION_HEADER, &decision_rows(&r["plan"]))?;
    }
    Ok(())
}

pub async fn run(cmd: PolicyCommand) -> Result<()> {
    let c = client()?;
    match cmd {
        PolicyCommand::Preview {
            policy,
            warn,
            action,
            terminate_after,
            snapshot_before_terminate,
            mode,
            cpu_below,
            idle_for,
            warn_before,
            json,
        } => {
            let mut q = Vec::new();
            if policy != "expiry" {
                q.push(format!("policy={}", urlencode(&policy)));
            }
            for (k, v) in [
                ("warn", warn),
                ("action", action),
                ("terminate_after", terminate_after),
                (
                    "snapshot_before_terminate",
                    snapshot_before_terminate.map(|b| b.to_string()),
                ),
                ("mode", mode),
                ("cpu_below", cpu_below.map(|c| c.to_string())),
                ("for", idle_for),
                ("warn_before", warn_before),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", urlencode(&v)));
                }
            }
            let path = if q.is_empty() {
                "/policies/preview".to_owned()
            } else {
                format!("/policies/preview?{}", q.join("&"))
            };
            let v = c.call(Method::GET, &path, None).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v)?);
            }
            outln!(
                "{} {}; due now: {}, in the next 24 h: {}",
                v["candidates"],
                if policy == "idle" {
                    "running instances under idle rules"
                } else {
                    "resources with an expiry"
                },
                v["now_items"].as_array().map_or(0, Vec::len),
                v["next_24h"].as_array().map_or(0, Vec::len)
            );
            let mut rows = decision_rows(&v["now_items"]);
            let mut later = decision_rows(&v["next_24h"]);
            for r in &mut later {
                r[6] = "next 24h".into();
            }
            rows.extend(later);
            if !rows.is_empty() {
                print_table(&DECISION_HEADER, &rows)?;
            }
            let exempt: Vec<Vec<String>> = v["exempt"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    vec![
                        s(e, "/name"),
                        s(e, "/owner"),
                        s(e, "/account"),
                        s(e, "/why"),
                    ]
                })
                .collect();
            if !exempt.is_empty() {
                outln!("left alone:");
                print_table(&["NAME", "OWNER", "ACCOUNT", "WHY"], &exempt)?;
            }
            Ok(())
        }
        PolicyCommand::Runs { limit, json } => {
            let v = c
                .call(Method::GET, &format!("/policies/runs?limit={limit}"), None)
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    vec![
                        r["id"].to_string(),
                        s(r, "/policy"),
                        s(r, "/cause"),
                        s(r, "/mode"),
                        s(r, "/state"),
                        r["counts"].to_string(),
                        s(r, "/note"),
                    ]
                })
                .collect();
            print_table(
                &["ID", "POLICY", "CAUSE", "MODE", "STATE", "COUNTS", "NOTE"],
                &rows,
            )
        }
        PolicyCommand::Run { policy, json } => {
            let v = c
                .call(
                    Method::POST,
                    &format!("/policies/runs?policy={policy}"),
                    None,
                )
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v)?);
            }
            print_run(&v)
        }
        PolicyCommand::Confirm { id, json } => {
            let v = c
                .call(Method::POST, &format!("/policies/runs/{id}/confirm"), None)
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v)?);
            }
            print_run(&v)
        }
    }
}
