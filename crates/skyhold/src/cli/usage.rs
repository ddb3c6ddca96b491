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
