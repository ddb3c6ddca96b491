//! (b) inventory queries and (c) memory: the resources API, the list and
//! search pages, the bounded counts and the dashboard, each asked by an
//! admin and by a member under per-object permissions (1,000 users, 100
//! groups, 10,000 grants, a restricted account). With more than 100,000
//! resources the same rows are measured at 100,000 and at the size asked
//! for, in one run, and a scaling table gives each row's p99 ratio.

use crate::access::{seed_access, MEMBER_PASSWORD};
use crate::{fresh_db, measure_all, rss_kb, seed, spawn_server_with, Probe, Role};
use anyhow::{Context, Result};
use serde_json::{json, Value};

/// The size every larger run is compared with.
const BASE: usize = 100_000;

const QUERIES: [(&str, &str); 12] = [
    ("first page", "kind=instance"),
    (
        "filter account + state",
        "kind=instance&account=acct-03&state=running",
    ),
    ("sort by launch time", "kind=instance&sort=-launch_time"),
    ("free text (tag value)", "kind=instance&q=payments"),
    ("free text (one IP, rare)", "kind=instance&q=10.7.13.9"),
    ("free text, no match", "kind=instance&q=no-such-thing"),
    (
        "search `-tag:owner state:running`",
        "kind=instance&q=-tag%3Aowner%20state%3Arunning",
    ),
    ("search `type:t3.*`", "kind=instance&q=type%3At3.*"),
    (
        "search `tag:env=prod age>30d`",
        "kind=instance&q=tag%3Aenv%3Dprod%20age%3E30d",
    ),
    ("search all kinds, free text", "q=payments"),
    ("search all kinds, `-tag:owner`", "q=-tag%3Aowner"),
    ("search `stopped>30d`", "kind=instance&q=stopped%3E30d"),
];

/// One measured row: (role, "endpoint | query | caller", p50, p99).
type Measured = (Role, String, f64, f64);

pub async fn query_bench(backend: &str, total: usize, requests: usize) -> Result<()> {
    let sizes = if total > BASE {
        vec![BASE, total]
    } else {
        vec![total]
    };
    let mut runs = Vec::new();
    for n in &sizes {
        runs.push(query_at(backend, *n, requests).await?);
    }
    if let [small, large] = &runs[..] {
        println!(
            "## (b) scaling, {} → {} resources — {backend}\n",
            sizes[0], sizes[1]
        );
        println!("Server p99 of every row above at both sizes, measured in this run (the same queries, callers and request counts). Target: no listing or search row above 1.5x.\n");
        println!(
            "| endpoint | query | caller | p99 ms at {} | p99 ms at {} | ratio |",
            sizes[0], sizes[1]
        );
        println!("|---|---|---|---:|---:|---:|");
        let mut worst = (0.0f64, String::new());
        for ((role, label, _, p99_small), (_, _, _, p99_large)) in small.iter().zip(large) {
            let ratio = p99_large / p99_small.max(0.001);
            if *role == Role::Listing && ratio > worst.0 {
                worst = (ratio, label.clone());
            }
            println!("| {label} | {p99_small:.2} | {p99_large:.2} | {ratio:.2} |");
        }
        println!(
            "\nlargest ratio of a listing or search row: {:.2} ({}); target ≤ 1.5\n",
            worst.0, worst.1
        );
    }
    Ok(())
}

async fn query_at(backend: &str, total: usize, requests: usize) -> Result<Vec<Measured>> {
    let dir = tempfile::tempdir()?;
    let tag = format!("query{total}");
    let url = fresh_db(backend, dir.path(), &tag).await?;
    let seed_secs = seed(&url, total).await?;
    let access_secs = seed_access(&url, total).await?;
    // acct-04 is restricted: the member sees it only where granted.
    let server = spawn_server_with(&url, dir.path(), &["acct-04"])?;
    let http = reqwest::Client::new();
    let login = |user: &'static str, password: &'static str| {
        let (http, url) = (http.clone(), server.url.clone());
        async move {
            let tok: Value = http
                .post(format!("{url}/api/v1/auth/token"))
                .json(&json!({"username": user, "password": password}))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(tok["token"].as_str().context("token")?.to_owned())
        }
    };
    let admin = login("admin", "bench-password").await?;
    let member = login("member", MEMBER_PASSWORD).await?;
    let (rss_idle, _) = rss_kb(server.child.id());

    let mut probes = Vec::new();
    for (caller, token) in [("admin", &admin), ("member", &member)] {
        for (label, q) in QUERIES {
            probes.push(
                Probe::new(
                    Role::Listing,
                    "API",
                    format!("{label} (`{q}`) | {caller}"),
                    format!("{}/api/v1/resources?{q}", server.url),
                    requests,
                )
                .with_token(token),
            );
            // A query with a kind runs on that kind's list page; one
            // without on the cross-kind search page.
            let (group, page) = if q.contains("kind=") {
                ("Instances page", "/instances")
            } else {
                ("Search page", "/search")
            };
            probes.push(
                Probe::new(
                    Role::Listing,
                    group,
                    format!("{label} | {caller}"),
                    format!("{}{page}?{q}", server.url),
                    requests / 2,
                )
                .with_token(token),
            );
            // The count a list page asks for after its rows.
            probes.push(
                Probe::new(
                    Role::Count,
                    "Count (after the page)",
                    format!("{label} | {caller}"),
                    format!("{}/api/v1/resources/count?{q}", server.url),
                    requests / 2,
                )
                .with_token(token),
            );
        }
        for (group, path) in [("API", "/api/v1/dashboard"), ("Dashboard page", "/")] {
            probes.push(
                Probe::new(
                    Role::Dashboard,
                    group,
                    format!("dashboard (`{path}`) | {caller}"),
                    format!("{}{path}", server.url),
                    requests / 2,
                )
                .with_token(token),
            );
        }
    }
    measure_all(&http, &admin, &mut probes).await?;

    println!("## (b) inventory queries at {total} resources — {backend}\n");
    println!("{total} resources of 19 kinds (50% instances, 15% volumes, 2% each of 13 other kinds) over 20 account/regions, written as a first sync writes them in {seed_secs:.1} s; then 1,000 users, 100 groups (every user in one or two), 10,000 grants (users and groups on resources, accounts and groups) in {access_secs:.1} s; account acct-04 restricted.");
    println!("Callers: an admin (no visibility filter) and a member in three groups (about 100 grants through them, so in the restricted account it sees only what it was granted), interleaved.");
    println!("{requests} requests per API row, {} per page, count and dashboard row, interleaved round by round after 20 warm-up requests each; 100 rows per page. Server time is the `server-timing` header (request in, response out); client time adds HTTP over loopback and body transfer.\n", requests / 2);
    println!("| endpoint | query | caller | rows | server p50 ms | server p99 ms | client p50 ms | client p99 ms |");
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    let mut out = Vec::new();
    let (mut worst, mut count_worst, mut dash_worst) = ([0.0f64; 2], 0.0f64, 0.0f64);
    for p in &mut probes {
        let (s50, s99, c50, c99) = p.percentiles();
        let member_row = p.token == member;
        let rows = if p.role == Role::Listing && p.group == "API" {
            p.rows.to_string()
        } else {
            "-".to_owned()
        };
        match p.role {
            Role::Listing => {
                let w = &mut worst[usize::from(member_row)];
                *w = w.max(s99);
            }
            Role::Count => count_worst = count_worst.max(s99),
            Role::Dashboard => dash_worst = dash_worst.max(s99),
        }
        println!(
            "| {} | {} | {rows} | {s50:.2} | {s99:.2} | {c50:.2} | {c99:.2} |",
            p.group, p.label
        );
        out.push((p.role, format!("{} | {}", p.group, p.label), s50, s99));
    }
    let (rss, hwm) = rss_kb(server.child.id());
    println!("\nworst p99 server time of the listings and searches: admin {:.2} ms, member {:.2} ms (target < 20 ms); dashboard: {dash_worst:.2} ms (target < 50 ms); bounded counts: {count_worst:.2} ms (target < 50 ms)\n", worst[0], worst[1]);
    println!("## (c) memory at {total} resources — {backend}\n");
    println!("server resident set: {} MiB after start, {} MiB after the queries (peak {} MiB); target < 200 MB\n", rss_idle / 1024, rss / 1024, hwm / 1024);
    drop(server);
    crate::drop_schema_unless_kept(backend, &tag, &url, dir).await?;
    Ok(out)
}
