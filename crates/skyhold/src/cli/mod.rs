//! The command line: `serve` runs the server; the other commands are a client
//! of the JSON API (the same domain functions, the same authorization), except
//! `user add`, an operator's command that opens the database directly.

use crate::config::Config;
use anyhow::{anyhow, bail, Context, Result};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "skyhold",
    version,
    about = "Inventory and control panel for shared cloud accounts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (web UI, JSON API, background sync).
    Serve {
        /// Configuration file (TOML). Environment: SKYHOLD_CONFIG.
        #[arg(long, env = "SKYHOLD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and exit.
    CheckConfig {
        #[arg(long, env = "SKYHOLD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Log in to a skyhold server and store an API token for the other commands.
    Login {
        /// The server's URL, e.g. http://127.0.0.1:8080
        url: String,
        /// User name (asked for when omitted).
        #[arg(long, short)]
        username: Option<String>,
    },
    /// Revoke the stored token and forget it.
    Logout,
    /// List resources (instances by default).
    Ls {
        /// Free-text search: every word must match name, id, IP or a tag value.
        words: Vec<String>,
        /// instance (the default without --view), volume, image, bucket, …
        #[arg(long, short)]
        kind: Option<String>,
        /// Start from one of your saved views (see `skyhold views`).
        #[arg(long)]
        view: Option<String>,
        #[arg(long, short)]
        account: Option<String>,
        #[arg(long, short)]
        region: Option<String>,
        #[arg(long, short)]
        state: Option<String>,
        #[arg(long = "type", short = 't')]
        rtype: Option<String>,
        /// Sort column (prefix '-' for descending), e.g. -launch_time.
        #[arg(long, allow_hyphen_values = true)]
        sort: Option<String>,
        /// Rows per page (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Follow every page instead of stopping after the first.
        #[arg(long)]
        all: bool,
        /// Include resources that are gone (tombstoned).
        #[arg(long)]
        include_deleted: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a sync now.
    Sync {
        /// Only this account.
        #[arg(long, short)]
        account: Option<String>,
        /// Wait until it is done and print what it found.
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Saved views (named searches): list them, or save or remove one.
    Views {
        #[command(subcommand)]
        command: Option<ViewsCommand>,
        #[arg(long)]
        json: bool,
    },
    /// Read one resource again from its provider now (targeted refresh).
    Refresh {
        /// The resource id (as shown by `ls --json` or in the web UI).
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Show the sync status of every account, region and kind.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Manage users: through the API when logged in, or on the database
    /// with --config.
    User {
        #[command(subcommand)]
        command: access::UserCommand,
    },
    /// Manage groups and their members.
    Group {
        #[command(subcommand)]
        command: access::GroupCommand,
    },
    /// Manage permission grants.
    Grant {
        #[command(subcommand)]
        command: access::GrantCommand,
    },
    /// Set a resource's owner (writes the skyhold:owner tag in the cloud).
    Owner {
        #[command(subcommand)]
        command: OwnerCommand,
    },
    /// Set when a resource expires (writes skyhold:expires-at): --in 3d,
    /// --at 2026-12-24T18:00:00Z or --never.
    Expire(ExpireArgs),
    /// Push a resource's expiry later, e.g. `skyhold extend web1 2d`.
    Extend {
        /// A name, provider id or skyhold id.
        target: String,
        /// How much later: 2d, 8h (units s, m, h, d, w).
        by: String,
        /// The resource's kind when resolving a name (default instance).
        #[arg(long, default_value = "instance")]
        kind: String,
        #[arg(long)]
        json: bool,
    },
    /// Keep a resource from expiring (the skyhold:keep tag, with a reason;
    /// admins or a manage grant), show whether it is kept, or --off.
    Keep {
        /// A name, provider id or skyhold id.
        target: String,
        /// Why it must stay (without it, and without --off: show).
        reason: Option<String>,
        /// Remove the keep tag.
        #[arg(long, conflicts_with = "reason")]
        off: bool,
        /// The resource's kind when resolving a name (default instance).
        #[arg(long, default_value = "instance")]
        kind: String,
        #[arg(long)]
        json: bool,
    },
    /// Start instances (names, i-… ids or skyhold ids).
    Start(PowerArgs),
    /// Stop instances.
    Stop(PowerArgs),
    /// Reboot instances.
    Reboot(PowerArgs),
    /// Terminate instances (asks for each name on a terminal; --yes otherwise).
    Terminate(PowerArgs),
    /// Launch servers from a blueprint (--dry-run: show what it would take).
    Launch(launch::LaunchArgs),
    /// Blueprints: list, show, add, edit, remove.
    Blueprint {
        #[command(subcommand)]
        command: launch::BlueprintCommand,
    },
    /// Quotas: your own, every quota, set and remove (admins).
    Quota {
        #[command(subcommand)]
        command: launch::QuotaCommand,
    },
    /// Connect to an instance by name with the system ssh
    /// (`skyhold ssh web1 -- uptime`; --print shows the command).
    Ssh(reach::SshArgs),
    /// Copy files with the system scp; NAME:path names a path on an instance.
    Scp(reach::ScpArgs),
    /// Images: make one of an instance, or deregister one.
    Image {
        #[command(subcommand)]
        command: actions::ImageCommand,
    },
    /// Your SSH public keys (imported at launch, served by the key hook).
    Key {
        #[command(subcommand)]
        command: launch::KeyCommand,
    },
    /// The expiry policy: preview (what it would do now and in 24 h),
    /// runs, run now, confirm a held run.
    Policies {
        #[command(subcommand)]
        command: policies::PolicyCommand,
    },
    /// Monthly money budgets: list, set, remove.
    Budget {
        #[command(subcommand)]
        command: usage::BudgetCommand,
    },
    /// Prices: load an AWS price list offer file into the database.
    Prices {
        #[command(subcommand)]
        command: prices::PricesCommand,
    },
    /// Spend from the usage ledger, by owner and account (or --group-by),
    /// this month unless --since; --csv for a spreadsheet.
    Usage(usage::UsageArgs),
    /// The audit log: list, export, verify.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct PowerArgs {
    /// Instance names, provider ids (i-…) or skyhold ids.
    targets: Vec<String>,
    /// Follow each instance until it reaches its new state.
    #[arg(long)]
    wait: bool,
    /// Do not ask (required for terminate when not on a terminal).
    #[arg(long)]
    yes: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("when").required(true).args(["in", "at", "never"])))]
struct ExpireArgs {
    /// A name, provider id or skyhold id.
    target: String,
    /// Expire this long from now: 3d, 8h (units s, m, h, d, w).
    #[arg(long = "in", value_name = "DURATION")]
    r#in: Option<String>,
    /// Expire at this time (RFC 3339, e.g. 2026-12-24T18:00:00Z).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Never expire (admins, or a manage grant on it or its account).
    #[arg(long)]
    never: bool,
    /// The resource's kind when resolving a name (default instance).
    #[arg(long, default_value = "instance")]
    kind: String,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum OwnerCommand {
    /// Set the owner: a user name or group:NAME.
    Set {
        /// A name, provider id or skyhold id.
        target: String,
        owner: String,
        /// The resource's kind when resolving a name (default instance).
        #[arg(long, default_value = "instance")]
        kind: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ViewsCommand {
    /// Save a search under a name, e.g. `views save unowned 'state:running -tag:owner'`.
    Save { name: String, query: String },
    /// Remove a saved view.
    Rm { name: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Member,
    Viewer,
    Auditor,
}

impl RoleArg {
    fn role(self) -> skyhold_core::Role {
        match self {
            RoleArg::Admin => skyhold_core::Role::Admin,
            RoleArg::Member => skyhold_core::Role::Member,
            RoleArg::Viewer => skyhold_core::Role::Viewer,
            RoleArg::Auditor => skyhold_core::Role::Auditor,
        }
    }
}

/// Writes a line to standard output. A closed pipe (`skyhold ls | head -1`)
/// ends the command quietly with success, as other Unix tools do, instead
/// of the panic `println!` gives.
macro_rules! outln {
    ($($arg:tt)*) => {
        emit(&format!($($arg)*))?
    };
}

fn emit(line: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Silent(0).into()),
        Err(e) => Err(e.into()),
    }
}

mod access;
mod actions;
mod audit;
mod launch;
mod policies;
mod prices;
mod reach;
mod usage;

/// Asks "PROMPT [y/N]" on a terminal; without one, `yes` must be given.
fn confirm(yes: bool, prompt: &str, _expected: Option<&str>) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("this needs --yes when standard input is not a terminal");
    }
    let answer = read_line(&format!("{prompt} [y/N] "))?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("not confirmed; nothing was changed")
    }
}

/// An outcome already reported on standard output: exit with this code
/// without printing an error.
#[derive(Debug)]
struct Silent(u8);

impl std::fmt::Display for Silent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Silent {}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Silent>().is_some() => {
            ExitCode::from(e.downcast_ref::<Silent>().map_or(1, |s| s.0))
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config> {
    Config::load(path, &env_lookup).map_err(|e| anyhow!("invalid configuration: {e}"))
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::CheckConfig { config } => {
            let c = load_config(config.as_deref())?;
            outln!(
                "configuration ok: {} account(s), listen {}",
                c.accounts.len(),
                c.listen
            );
            Ok(())
        }
        Command::Login { url, username } => login(&url, username).await,
        Command::Logout => logout().await,
        Command::Ls {
            words,
            kind,
            view,
            account,
            region,
            state,
            rtype,
            sort,
            limit,
            all,
            include_deleted,
            json,
        } => {
            let c = client()?;
            let mut words = words;
            if let Some(name) = &view {
                words.insert(0, view_query(&c, name).await?);
            }
            // Without a view the default is instances, as on the web UI.
            let kind = kind.or_else(|| view.is_none().then(|| "instance".to_owned()));
            let mut pairs: Vec<(&str, String)> = vec![("limit", limit.to_string())];
            for (k, v) in [
                ("kind", kind),
                ("account", account),
                ("region", region),
                ("state", state),
                ("type", rtype),
                ("sort", sort),
            ] {
                if let Some(v) = v {
                    pairs.push((k, v));
                }
            }
            if !words.is_empty() {
                pairs.push(("q", words.join(" ")));
            }
            if include_deleted {
                pairs.push(("include_deleted", "true".into()));
            }
            ls(&c, pairs, all, json).await
        }
        Command::Views { command, json } => views(command, json).await,
        Command::Sync {
            account,
            wait,
            json,
        } => sync(account, wait, json).await,
        Command::Status { json } => status(json).await,
        Command::Refresh { id, json } => refresh(id, json).await,
        Command::User { command } => access::user(command).await,
        Command::Group { command } => access::group(command).await,
        Command::Grant { command } => access::grant(command).await,
        Command::Owner {
            command:
                OwnerCommand::Set {
                    target,
                    owner,
                    kind,
                    json,
                },
        } => actions::set_owner(&target, &owner, &kind, json).await,
        Command::Expire(a) => {
            let body = match (a.r#in, a.at) {
                (Some(d), _) => serde_json::json!({"in": d}),
                (_, Some(t)) => serde_json::json!({"at": t}),
                _ => serde_json::json!({"never": a.never}),
            };
            actions::set_expiry(&a.target, body, &a.kind, a.json).await
        }
        Command::Extend {
            target,
            by,
            kind,
            json,
        } => actions::set_expiry(&target, serde_json::json!({"extend": by}), &kind, json).await,
        Command::Keep {
            target,
            reason,
            off,
            kind,
            json,
        } => actions::keep(&target, reason.as_deref(), off, &kind, json).await,
        Command::Start(a) => actions::power("start", a.targets, a.wait, a.yes, a.json).await,
        Command::Stop(a) => actions::power("stop", a.targets, a.wait, a.yes, a.json).await,
        Command::Reboot(a) => actions::power("reboot", a.targets, a.wait, a.yes, a.json).await,
        Command::Terminate(a) => {
            actions::power("terminate", a.targets, a.wait, a.yes, a.json).await
        }
        Command::Audit { command } => audit::run(command).await,
        Command::Policies { command } => policies::run(command).await,
        Command::Usage(a) => usage::usage(a).await,
        Command::Budget { command } => usage::budget(command).await,
        Command::Prices { command } => prices::run(command).await,
        Command::Launch(a) => launch::launch(a).await,
        Command::Blueprint { command } => launch::blueprint(command).await,
        Command::Quota { command } => launch::quota(command).await,
        Command::Key { command } => launch::key(command).await,
        Command::Image { command } => actions::image(command).await,
        Command::Ssh(a) => reach::ssh(a).await,
        Command::Scp(a) => reach::scp(a).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "skyhold",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

async fn serve(config_path: Option<PathBuf>) -> Result<()> {
    let config = load_config(config_path.as_deref())?;
    init_tracing();
    let admin_pw = env_lookup("SKYHOLD_ADMIN_PASSWORD");
    let running = crate::serve::start(config, admin_pw.as_deref(), shutdown_signal()).await?;
    outln!("skyhold listening on {}", running.url());
    if let Some(pw) = &running.generated_admin_password {
        outln!("created user 'admin' with password: {pw}");
        outln!("(shown once; set SKYHOLD_ADMIN_PASSWORD before the first start to choose it)");
    }
    std::io::stdout().flush().ok();
    running.wait().await
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKYHOLD_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,sqlx=warn")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

// ------------------------------------------------------------ client side

#[derive(Serialize, Deserialize)]
struct Saved {
    url: String,
    token: String,
}

fn saved_path() -> Result<PathBuf> {
    let dir = dirs::config_dir()
        .ok_or_else(|| anyhow!("cannot find a configuration directory (set HOME)"))?;
    Ok(dir.join("skyhold").join("cli.json"))
}

fn save(saved: &Saved) -> Result<PathBuf> {
    let path = saved_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let data = serde_json::to_vec_pretty(saved)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("writing {}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(&data)?;
    }
    #[cfg(not(unix))]
    std::fs::write(&path, data)?;
    Ok(path)
}

/// The server and token to use: `SKYHOLD_URL`/`SKYHOLD_TOKEN`, else the saved login.
fn client() -> Result<Client> {
    if let (Some(url), Some(token)) = (env_lookup("SKYHOLD_URL"), env_lookup("SKYHOLD_TOKEN")) {
        return Ok(Client::new(url, token));
    }
    let path = saved_path()?;
    let data = std::fs::read(&path)
        .map_err(|_| anyhow!("not logged in: run `skyhold login URL` first"))?;
    let s: Saved = serde_json::from_slice(&data)
        .with_context(|| format!("{} is damaged; log in again", path.display()))?;
    Ok(Client::new(s.url, s.token))
}

struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    fn new(base: String, token: String) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        decode(res).await
    }

    /// A GET whose answer is text (exports), with the API's errors decoded.
    async fn get_text(&self, path: &str) -> Result<String> {
        let res = self
            .http
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        if res.status().is_success() {
            return Ok(res.text().await?);
        }
        decode(res).await.map(|v| v.to_string())
    }
}

async fn decode(res: reqwest::Response) -> Result<Value> {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    let v: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if status.is_success() {
        return Ok(v);
    }
    let msg = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string());
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!("{msg} (HTTP 401): log in again with `skyhold login URL`");
    }
    bail!("{msg} (HTTP {})", status.as_u16())
}

fn read_line(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
    }
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s)?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

fn read_password(prompt: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        Ok(rpassword::prompt_password(prompt)?)
    } else {
        read_line(prompt)
    }
}

async fn login(url: &str, username: Option<String>) -> Result<()> {
    let parsed = url::Url::parse(url).map_err(|e| anyhow!("invalid URL {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("invalid URL {url:?}: expected http:// or https://");
    }
    let username = match username {
        Some(u) => u,
        None => read_line("User name: ")?,
    };
    let password = read_password("Password: ")?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "cli".to_owned());
    let base = url.trim_end_matches('/').to_owned();
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"username": username, "password": password, "name": format!("cli@{host}")}))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let v = decode(res).await?;
    let token = v["token"]
        .as_str()
        .ok_or_else(|| anyhow!("the server returned no token"))?
        .to_owned();
    let path = save(&Saved {
        url: base.clone(),
        token,
    })?;
    outln!(
        "logged in to {base} as {username} (token saved in {})",
        path.display()
    );
    Ok(())
}

async fn logout() -> Result<()> {
    let c = client()?;
    let r = c.call(reqwest::Method::DELETE, "/auth/token", None).await;
    let path = saved_path()?;
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    match r {
        Ok(_) => outln!("logged out"),
        Err(e) => outln!("forgot the saved token (the server said: {e})"),
    }
    Ok(())
}

/// Prints rows as an aligned table.
fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        emit(s.trim_end())
    };
    line(header.to_vec())?;
    for r in rows {
        line(r.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

fn s(v: &Value, ptr: &str) -> String {
    match v.pointer(ptr) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "-".to_owned(),
    }
}

/// The caller's saved view named `name` (its JSON: id, name, q).
async fn find_view(c: &Client, name: &str) -> Result<Value> {
    let v = c.call(reqwest::Method::GET, "/views", None).await?;
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["name"].as_str() == Some(name))
        .cloned()
        .ok_or_else(|| anyhow!("no saved view named {name:?} (see `skyhold views`)"))
}

/// The query of the saved view `name`.
async fn view_query(c: &Client, name: &str) -> Result<String> {
    Ok(s(&find_view(c, name).await?, "/q"))
}

async fn views(command: Option<ViewsCommand>, as_json: bool) -> Result<()> {
    let c = client()?;
    match command {
        Some(ViewsCommand::Save { name, query }) => {
            let v = c
                .call(
                    reqwest::Method::POST,
                    "/views",
                    Some(json!({"name": name, "q": query})),
                )
                .await?;
            if as_json {
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("saved view {name:?}: {}", s(&v, "/q"));
            }
        }
        Some(ViewsCommand::Rm { name }) => {
            let id = s(&find_view(&c, &name).await?, "/id");
            c.call(reqwest::Method::DELETE, &format!("/views/{id}"), None)
                .await?;
            if !as_json {
                outln!("removed view {name:?}");
            }
        }
        None => {
            let v = c.call(reqwest::Method::GET, "/views", None).await?;
            if as_json {
                outln!("{}", serde_json::to_string_pretty(&v["items"])?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| vec![s(x, "/name"), s(x, "/q")])
                .collect();
            print_table(&["NAME", "QUERY"], &rows)?;
        }
    }
    Ok(())
}

async fn ls(c: &Client, pairs: Vec<(&str, String)>, all: bool, as_json: bool) -> Result<()> {
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(cur) = &cursor {
            q.append_pair("cursor", cur);
        }
        let page = c
            .call(
                reqwest::Method::GET,
                &format!("/resources?{}", q.finish()),
                None,
            )
            .await?;
        if let Some(a) = page["items"].as_array() {
            items.extend(a.iter().cloned());
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if !all || cursor.is_none() {
            break;
        }
    }
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&Value::Array(items))?);
        return Ok(());
    }
    // Servers launched with a DNS name show it in a column of its own.
    let dns = items
        .iter()
        .any(|i| i["tags"][skyhold_core::launch::FQDN_TAG].is_string());
    // And resources with an expiry, theirs.
    let expiry = items.iter().any(|i| i["expires_at"].is_string());
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            let mut state = s(i, "/state");
            if !i["deleted_at"].is_null() {
                state.push_str(" (gone)");
            }
            let mut row = vec![
                s(i, "/account"),
                s(i, "/region"),
                s(i, "/name"),
                s(i, "/provider_id"),
                state,
                s(i, "/type"),
                s(i, "/attributes/private_ip"),
                s(i, "/attributes/public_ip"),
                s(i, "/owner"),
            ];
            if dns {
                row.push(s(i, &format!("/tags/{}", skyhold_core::launch::FQDN_TAG)));
            }
            if expiry {
                row.push(s(i, "/expires_at"));
            }
            row
        })
        .collect();
    let mut header = vec![
        "ACCOUNT",
        "REGION",
        "NAME",
        "ID",
        "STATE",
        "TYPE",
        "PRIVATE IP",
        "PUBLIC IP",
        "OWNER",
    ];
    if dns {
        header.push("DNS NAME");
    }
    if expiry {
        header.push("EXPIRES");
    }
    print_table(&header, &rows)?;
    if cursor.is_some() {
        eprintln!("(more rows: use --all or a larger --limit)");
    }
    Ok(())
}

async fn sync(account: Option<String>, wait: bool, as_json: bool) -> Result<()> {
    let c = client()?;
    if wait && !as_json {
        eprintln!(
            "syncing{}… (waiting until done)",
            account
                .as_ref()
                .map(|a| format!(" {a}"))
                .unwrap_or_default()
        );
    }
    let v = c
        .call(
            reqwest::Method::POST,
            "/sync",
            Some(json!({"account": account, "wait": wait})),
        )
        .await?;
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if !wait {
        outln!("sync started; `skyhold status` shows its progress");
        return Ok(());
    }
    let reports = v["reports"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                s(r, "/account"),
                s(r, "/region"),
                s(r, "/kind"),
                if r["ok"].as_bool() == Some(true) {
                    "ok".into()
                } else {
                    "FAILED".into()
                },
                s(r, "/count"),
                format!(
                    "+{} ~{} -{}",
                    s(r, "/inserted"),
                    s(r, "/updated"),
                    s(r, "/tombstoned")
                ),
                format!("{} ms", s(r, "/duration_ms")),
                r["error"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    print_table(
        &[
            "ACCOUNT", "REGION", "KIND", "RESULT", "COUNT", "CHANGES", "TIME", "ERROR",
        ],
        &rows,
    )?;
    let failed = v["failed"].as_u64().unwrap_or(0);
    if failed > 0 {
        bail!("{failed} listing(s) failed");
    }
    Ok(())
}

async fn refresh(id: i64, as_json: bool) -> Result<()> {
    let c = client()?;
    let v = c
        .call(
            reqwest::Method::POST,
            &format!("/resources/{id}/refresh"),
            None,
        )
        .await?;
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let gone = if v["deleted_at"].is_null() {
        String::new()
    } else {
        format!(" (gone since {})", s(&v, "/deleted_at"))
    };
    outln!(
        "{} {} {} {}: {}{gone}",
        s(&v, "/account"),
        s(&v, "/region"),
        s(&v, "/kind"),
        s(&v, "/provider_id"),
        s(&v, "/state"),
    );
    Ok(())
}

async fn status(as_json: bool) -> Result<()> {
    let c = client()?;
    let v = c.call(reqwest::Method::GET, "/sync/status", None).await?;
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&v["items"])?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            vec![
                s(r, "/account"),
                s(r, "/region"),
                s(r, "/kind"),
                s(r, "/last_success"),
                s(r, "/next_due"),
                s(r, "/count"),
                format!("{} ms", s(r, "/duration_ms")),
                match r["running_on"].as_str() {
                    Some(h) => format!("running on {h}"),
                    None => s(r, "/holder"),
                },
                r["last_error"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    print_table(
        &[
            "ACCOUNT",
            "REGION",
            "KIND",
            "LAST SUCCESS",
            "NEXT DUE",
            "COUNT",
            "DURATION",
            "REPLICA",
            "LAST ERROR",
        ],
        &rows,
    )?;
    Ok(())
}
