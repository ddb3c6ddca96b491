//! `skyhold usage`: spend from the usage ledger (the course's usage
//! report), grouped by owner and account unless told otherwise.

use super::access::urlencode;
use super::{client, emit, print_table, s};
use anyhow::Result;
use clap::Args;
use reqwest::Method;

#[derive(Args)]
pub struct UsageArgs {
    /// Only this user's resources.
    #[arg(long)]
    pub user: Option<String>,
    /// Only this group's (its own and its members').
    #[arg(long)]
    pub group: Option<String>,
    /// Only this account's.
    #[arg(long)]
    pub account: Option<String>,
    /// From how long ago (30d), a date or RFC 3339 time (default: the
    /// start of this month).
    #[arg(long)]
    pub since: Option<String>,
    /// Up to (default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// Comma-separated: owner, group, account, region, blueprint, kind,
    /// day or month.
    #[arg(long, default_value = "owner,account")]
    pub group_by: String,
    /// CSV (the API's) instead of a table.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    #[arg(long)]
    pub json: bool,
}

pub async fn usage(a: UsageArgs) -> Result<()> {
    let c = client()?;
    let mut q = vec![format!("group_by={}", urlencode(&a.group_by))];
    for (k, v) in [
        ("user", a.user),
        ("group", a.group),
        ("account", a.account),
        ("from", a.since),
        ("to", a.until),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", urlencode(&v)));
        }
    }
    let path = format!("/reports/spend?{}", q.join("&"));
    if a.csv {
        return emit(c.get_text(&format!("{path}&format=csv")).await?.trim_end());
    }
    let v = c.call(Method::GET, &path, None).await?;
    if a.json {
        return emit(&serde_json::to_string_pretty(&v)?);
    }
    let fields: Vec<String> = v["group_by"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    let mut header: Vec<String> = fields.iter().map(|f| f.to_uppercase()).collect();
    header.push("HOURS".into());
    header.push("USD".into());
    let rows: Vec<Vec<String>> = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mut row: Vec<String> = fields
                .iter()
                .map(|f| match s(r, &format!("/fields/{f}")) {
                    x if x.is_empty() => "-".into(),
                    x => x,
                })
                .collect();
            row.push(format!("{:.1}", r["hours"].as_f64().unwrap_or(0.0)));
            row.push(format!("{:.2}", r["usd"].as_f64().unwrap_or(0.0)));
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    outln!("{} to {}", s(&v, "/from"), s(&v, "/to"));
    print_table(&header, &rows)?;
    outln!(
        "total ${:.2}; this month ${:.2} so far, ${:.2} projected",
        v["total_usd"].as_f64().unwrap_or(0.0),
        v["month_to_date_usd"].as_f64().unwrap_or(0.0),
        v["month_projected_usd"].as_f64().unwrap_or(0.0)
    );
    for u in v["unpriced"].as_array().into_iter().flatten() {
        outln!(
            "unpriced: {} {} in {} ({:.1} unit-hours, not counted)",
            s(u, "/product"),
            match s(u, "/rtype") {
                t if t.is_empty() => "-".into(),
                t => t,
            },
            s(u, "/region"),
            u["hours"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum BudgetCommand {
    /// Every budget with this month's spend (admins, auditors); with
    /// --mine, yours and your groups'.
    Ls {
        #[arg(long)]
        mine: bool,
        #[arg(long)]
        json: bool,
    },
    /// Set a monthly budget: SUBJECT is user:NAME, group:NAME,
    /// default:user or default:group (admins).
    Set {
        subject: String,
        /// USD per month.
        monthly_usd: f64,
        /// block (refuse launches at 100 %, the default), warn, or stop
        /// (also stop the running instances an hour after the 100 % warning).
        #[arg(long, value_parser = ["block", "warn", "stop"])]
        on_exceed: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a budget (admins).
    Rm { subject: String },
}

pub async fn budget(cmd: BudgetCommand) -> Result<()> {
    let c = client()?;
    match cmd {
        BudgetCommand::Ls { mine, json } => {
            let v = c
                .call(
                    Method::GET,
                    if mine { "/me/budgets" } else { "/budgets" },
                    None,
                )
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            let money = |x: &serde_json::Value| match x.as_f64() {
                Some(f) => format!("{f:.2}"),
                None => "-".into(),
            };
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    let st = if mine { b } else { &b["status"] };
                    vec![
                        s(b, "/subject"),
                        money(if mine {
                            &b["limit_usd"]
                        } else {
                            &b["monthly_usd"]
                        }),
                        s(b, "/on_exceed"),
                        money(&st["spend_usd"]),
                        money(&st["projected_usd"]),
                        match st["percent"].as_f64() {
                            Some(p) => format!("{p:.0}%"),
                            None => "-".into(),
                        },
                    ]
                })
                .collect();
            print_table(
                &[
                    "SUBJECT",
                    "USD/MONTH",
                    "ON EXCEED",
                    "SPENT",
                    "PROJECTED",
                    "USED",
                ],
                &rows,
            )
        }
        BudgetCommand::Set {
            subject,
            monthly_usd,
            on_exceed,
            json,
        } => {
            let mut body = serde_json::json!({"subject": subject, "monthly_usd": monthly_usd});
            if let Some(o) = on_exceed {
                body["on_exceed"] = o.into();
            }
            let v = c.call(Method::POST, "/budgets", Some(body)).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v)?);
            }
            emit(&format!(
                "budget {}: ${:.2} a month ({})",
                s(&v, "/subject"),
                v["monthly_usd"].as_f64().unwrap_or(0.0),
                s(&v, "/on_exceed")
            ))
        }
        BudgetCommand::Rm { subject } => {
            c.call(
                Method::DELETE,
                &format!("/budgets/{}", urlencode(&subject)),
                None,
            )
            .await?;
            emit(&format!("removed budget {subject}"))
        }
    }
}
