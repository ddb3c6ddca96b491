//! `skyhold ssh` and `skyhold scp`: a name, DNS name or id resolved through
//! the API to an address and login user, then the system `ssh`/`scp` run
//! with those arguments (skyhold does not speak SSH itself). `--print`
//! prints the command instead.

use super::access::urlencode;
use super::actions::resolve;
use super::{client, emit, s, Client};
use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde_json::Value;
use skyhold_core::launch::shell_quote;

#[derive(clap::Args)]
pub struct SshArgs {
    /// The instance: a name, DNS name, i-… id or skyhold id.
    target: String,
    /// The login user (default: the one its blueprint names).
    #[arg(short = 'l', long = "login")]
    login: Option<String>,
    /// Use the private address even when there is a public one.
    #[arg(long)]
    private: bool,
    /// Print the ssh command instead of running it.
    #[arg(long)]
    print: bool,
    /// An ssh option, e.g. -o StrictHostKeyChecking=accept-new (repeat).
    #[arg(short = 'o')]
    options: Vec<String>,
    /// The command to run there (after --).
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(clap::Args)]
pub struct ScpArgs {
    /// Sources then the destination; NAME:path names a path on an
    /// instance (a name, DNS name or id).
    #[arg(required = true, num_args = 2..)]
    paths: Vec<String>,
    /// The login user (default: the one its blueprint names).
    #[arg(short = 'l', long = "login")]
    login: Option<String>,
    /// Copy directories recursively.
    #[arg(short = 'r')]
    recursive: bool,
    #[arg(long)]
    private: bool,
    /// Print the scp command instead of running it.
    #[arg(long)]
    print: bool,
    #[arg(short = 'o')]
    options: Vec<String>,
}

/// A string field, '' when missing or empty (`s` shows those as "-").
fn field(v: &Value, ptr: &str) -> String {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The one instance `target` names: its DNS name (`skyhold:fqdn`), else
/// as `resolve` finds names and ids.
async fn find(c: &Client, target: &str) -> Result<Value> {
    if target.contains('.') && !target.starts_with("i-") {
        let page = c
            .call(
                Method::GET,
                &format!(
                    "/resources?limit=20&q={}",
                    urlencode(&format!("kind:instance \"{}\"", target.replace('"', "")))
                ),
                None,
            )
            .await?;
        let hits: Vec<Value> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["tags"][skyhold_core::launch::FQDN_TAG] == target)
            .cloned()
            .collect();
        if hits.len() == 1 {
            return Ok(hits[0].clone());
        }
    }
    resolve(c, target, "instance").await
}

/// `user@address` (or the address) of a running instance.
async fn destination(
    c: &Client,
    target: &str,
    login: Option<&str>,
    private: bool,
) -> Result<String> {
    let r = find(c, target).await?;
    let id = s(&r, "/id");
    // The inventory may still show a new server as pending: read it again
    // once (operate allows it; without, the cached state answers).
    if field(&r, "/state") == "pending" {
        let _ = c
            .call(Method::POST, &format!("/resources/{id}/refresh"), None)
            .await;
    }
    let t = c
        .call(Method::GET, &format!("/resources/{id}/ssh"), None)
        .await?;
    let label = if field(&t, "/name").is_empty() {
        field(&t, "/provider_id")
    } else {
        field(&t, "/name")
    };
    match field(&t, "/state").as_str() {
        "running" => {}
        "stopped" | "stopping" => bail!(
            "{label} is {}: start it with `skyhold start {}`",
            field(&t, "/state"),
            shell_quote(target)
        ),
        "pending" => bail!("{label} is still starting; try again in a moment"),
        other => bail!("{label} is {other}: there is nothing to connect to"),
    }
    let public = field(&t, "/public_ip");
    let address = if !private && !public.is_empty() {
        public
    } else {
        field(&t, "/private_ip")
    };
    if address.is_empty() {
        bail!("{label} has no address yet");
    }
    let user = login
        .map(str::to_owned)
        .or_else(|| t["login_user"].as_str().map(str::to_owned));
    Ok(match user {
        Some(u) => format!("{u}@{address}"),
        None => address,
    })
}

/// Runs `argv` in place of this process, or prints it.
fn run(argv: Vec<String>, print: bool) -> Result<()> {
    if print {
        return emit(
            &argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&argv[0]).args(&argv[1..]).exec();
    Err(err).with_context(|| format!("cannot run {}", argv[0]))
}

pub async fn ssh(a: SshArgs) -> Result<()> {
    let c = client()?;
    let dest = destination(&c, &a.target, a.login.as_deref(), a.private).await?;
    let mut argv = vec!["ssh".to_owned()];
    for o in &a.options {
        argv.push("-o".into());
        argv.push(o.clone());
    }
    argv.push(dest);
    argv.extend(a.command.iter().cloned());
    run(argv, a.print)
}

/// Whether an scp argument names a remote path (`HOST:path`, where HOST
/// has no `/`), as scp itself decides.
fn remote(arg: &str) -> Option<(&str, &str)> {
    let (host, path) = arg.split_once(':')?;
    (!host.is_empty() && !host.contains('/')).then_some((host, path))
}

pub async fn scp(a: ScpArgs) -> Result<()> {
    let c = client()?;
    let mut argv = vec!["scp".to_owned()];
    if a.recursive {
        argv.push("-r".into());
    }
    for o in &a.options {
        argv.push("-o".into());
        argv.push(o.clone());
    }
    if !a.paths.iter().any(|p| remote(p).is_some()) {
        bail!("name an instance on one side: NAME:path");
    }
    let mut resolved: Vec<(String, String)> = Vec::new();
    for p in &a.paths {
        match remote(p) {
            Some((host, path)) => {
                let dest = match resolved.iter().find(|(h, _)| h == host) {
                    Some((_, d)) => d.clone(),
                    None => {
                        let d = destination(&c, host, a.login.as_deref(), a.private).await?;
                        resolved.push((host.to_owned(), d.clone()));
                        d
                    }
                };
                argv.push(format!("{dest}:{path}"));
            }
            None => argv.push(p.clone()),
        }
    }
    run(argv, a.print)
}
