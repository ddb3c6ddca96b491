//! `skyhold audit ls|export|verify`.

use super::access::urlencode;
use super::{client, emit, load_config, print_table, s, Silent};
use anyhow::{anyhow, Context, Result};
use clap::Subcommand;
use serde_json::Value;
use std::path::PathBuf;

macro_rules! emit_fmt {
    ($($arg:tt)*) => {
        emit(&format!($($arg)*))?
    };
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// List entries, newest first.
    Ls {
        #[arg(long)]
        actor: Option<String>,
        /// An action, or a family ending in '.' (resource.)
        #[arg(long)]
        action: Option<String>,
        /// ok, denied or failed.
        #[arg(long)]
        outcome: Option<String>,
        /// kind or kind:id (resource:42, user:3).
        #[arg(long)]
        target: Option<String>,
        /// RFC 3339, a date, or a duration back from now (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Export the log (admins and auditors) as JSON lines or CSV.
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Check the hash chain: of an exported JSONL file (`--file`), of the
    /// database the configuration names (`--config`), or through the API
    /// when logged in. Exits 1 when the chain is broken.
    Verify {
        #[arg(long, conflicts_with = "config")]
        file: Option<PathBuf>,
        #[arg(long, env = "SKYHOLD_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", urlencode(v))))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn run(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Ls {
            actor,
            action,
            outcome,
            target,
            since,
            until,
            limit,
            json,
        } => {
            let q = query(&[
                ("actor", actor),
                ("action", action),
                ("outcome", outcome),
                ("target", target),
                ("since", since),
                ("until", until),
                ("limit", Some(limit.to_string())),
            ]);
            let v = client()?
                .call(reqwest::Method::GET, &format!("/audit?{q}"), None)
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    let t = &e["target"];
                    let target = match (t["kind"].as_str(), t["name"].as_str(), t["id"].as_str()) {
                        (Some(k), Some(n), _) if !n.is_empty() => format!("{k}:{n}"),
                        (Some(k), _, Some(i)) if !i.is_empty() => format!("{k}:{i}"),
                        _ => String::new(),
                    };
                    vec![
                        s(e, "/seq"),
                        e["time"]
                            .as_i64()
                            .map(skyhold_core::rfc3339)
                            .unwrap_or_default(),
                        s(e, "/actor"),
                        s(e, "/action"),
                        target,
                        s(e, "/outcome"),
                        s(e, "/reason"),
                    ]
                })
                .collect();
            print_table(
                &[
                    "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "REASON",
                ],
                &rows,
            )
        }
        AuditCommand::Export {
            format,
            since,
            until,
            output,
        } => {
            let q = query(&[("format", Some(format)), ("since", since), ("until", until)]);
            let text = client()?.get_text(&format!("/audit/export?{q}")).await?;
            match output {
                Some(path) => {
                    std::fs::write(&path, &text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {} lines to {}", text.lines().count(), path.display());
                    Ok(())
                }
                None => {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            Err(Silent(0).into())
                        }
                        r => Ok(r?),
                    }
                }
            }
        }
        AuditCommand::Verify { file, config, json } => verify(file, config, json).await,
    }
}

async fn verify(file: Option<PathBuf>, config: Option<PathBuf>, as_json: bool) -> Result<()> {
    let report: Value = if let Some(path) = file {
        let f =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let r = crate::app::verify_lines(std::io::BufRead::lines(std::io::BufReader::new(f)))
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        serde_json::to_value(&r)?
    } else if let Some(config) = config {
        let config = load_config(Some(&config))?;
        let store = skyhold_store::Store::connect(&config.database_url).await?;
        let r = crate::app::verify_store(&store).await;
        store.close().await;
        serde_json::to_value(r.map_err(|e| anyhow!("{e}"))?)?
    } else {
        client()?
            .call(reqwest::Method::GET, "/audit/verify", None)
            .await?
    };
    let ok = report["ok"].as_bool().unwrap_or(false);
    if as_json {
        emit_fmt!("{report}");
    } else if ok {
        emit_fmt!(
            "ok: {} entries checked, the chain is intact",
            report["checked"]
        );
    } else {
        emit_fmt!(
            "BROKEN at entry {}: {} ({} entries checked before it)",
            report["first_bad_seq"],
            report["problem"].as_str().unwrap_or("?"),
            report["checked"]
        );
    }
    if ok {
        Ok(())
    } else {
        Err(Silent(1).into())
    }
}
