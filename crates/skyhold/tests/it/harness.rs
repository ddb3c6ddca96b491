//! The one test harness: a moto server (shared by the process, or dedicated
//! for tests that must reset or kill it), skyhold on port 0 with a fresh
//! database (SQLite file or a PostgreSQL schema, chosen by SKYHOLD_TEST_DB),
//! and request helpers for the API, the pages and the CLI.

use reqwest::StatusCode;
use serde_json::{json, Value};
use skyhold::config::Config;
use skyhold::serve::Running;
use skyhold_aws::testkit::Ec2;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A moto server child process. It exits when its stdin closes, so it never
/// outlives the test process.
pub struct Moto {
    pub endpoint: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Moto {
    pub fn start() -> Moto {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "no {}: run ./scripts/test (it creates the venv with moto)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root.join("scripts/moto_child.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read moto port");
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("moto did not print a port: {line:?}"));
        let stdin = child.stdin.take();
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
            stdin,
        }
    }

    /// Forgets every resource in every account (moto's reset).
    pub async fn reset(&self) {
        let r = reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.endpoint))
            .send()
            .await
            .expect("reset moto");
        assert!(r.status().is_success());
    }

    /// Stops the server now (the endpoint becomes unreachable).
    pub fn kill(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real SMTP server on loopback (aiosmtpd, through
/// `scripts/smtp_sink.py`) that keeps every message it accepts as a file.
/// Like [`Moto`], it exits when its stdin closes.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let root = repo_root();
        let dir = tempfile::tempdir().expect("a mail directory");
        let mut child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("scripts/smtp_sink.py"))
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the sink's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the SMTP sink did not print a port: {line:?}"));
        let stdin = child.stdin.take();
        SmtpSink {
            port,
            dir,
            child,
            stdin,
        }
    }

    /// The messages received so far, in order, as text.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir.path())
            .expect("read the mail directory")
            .filter_map(|e| {
                let p = e.ok()?.path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "eml").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| std::fs::read_to_string(p).expect("read a message"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OpenID Connect provider (oidc-provider-mock, through
/// `scripts/oidc_child.py`) on a loopback port. Like [`Moto`], it exits when
/// its stdin closes, so it never outlives the test process.
pub struct OidcProvider {
    /// The issuer, `http://127.0.0.1:PORT` (the provider names itself after
    /// the Host it is asked with).
    pub issuer: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl OidcProvider {
    /// Starts a provider on `port` (0: a free one) and waits until it
    /// answers its discovery document (10 s at most).
    pub fn start(port: u16) -> OidcProvider {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "no {}: run ./scripts/test (it creates the venv)",
            python.display()
        );
        let mut child = Command::new(python)
            .arg(root.join("scripts/oidc_child.py"))
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the OIDC provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the provider's port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            panic!("the OIDC provider did not print a port: {line:?} (is oidc-provider-mock in .venv? run ./scripts/ensure-venv)")
        });
        let provider = OidcProvider {
            issuer: format!("http://127.0.0.1:{port}"),
            stdin: child.stdin.take(),
            child,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let request = format!(
            "GET /.well-known/openid-configuration HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        );
        loop {
            let answered = std::net::TcpStream::connect(("127.0.0.1", port))
                .and_then(|mut s| {
                    s.write_all(request.as_bytes())?;
                    let mut head = String::new();
                    BufReader::new(s).read_line(&mut head)?;
                    Ok(head.contains(" 200 "))
                })
                .unwrap_or(false);
            if answered {
                return provider;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the OIDC provider on port {port} did not answer within 10 s"
            );
            std::thread::yield_now();
        }
    }

    /// Sets the claims the provider puts in `sub`'s ID token (claims such
    /// as `aud`, `exp` or `nonce` replace the provider's own).
    pub async fn set_user(&self, sub: &str, claims: Value) {
        let r = reqwest::Client::new()
            .put(format!("{}/users/{sub}", self.issuer))
            .json(&claims)
            .send()
            .await
            .expect("set the provider's user");
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "PUT /users/{sub}");
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The OIDC provider shared by every test of this process (tests use
/// distinct subjects, so they never see each other's users).
pub fn shared_oidc() -> &'static OidcProvider {
    static OIDC: OnceLock<OidcProvider> = OnceLock::new();
    OIDC.get_or_init(|| OidcProvider::start(0))
}

/// The moto server shared by every test of this process.
pub fn shared_moto() -> &'static str {
    static MOTO: OnceLock<Mutex<Moto>> = OnceLock::new();
    // The Mutex only makes the static Sync; the endpoint is copied out.
    let m = MOTO.get_or_init(|| Mutex::new(Moto::start()));
    let endpoint = m.lock().unwrap_or_else(|p| p.into_inner()).endpoint.clone();
    Box::leak(endpoint.into_boxed_str())
}

/// A fresh 12-digit account id, so tests sharing moto never see each other.
pub fn new_account_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let seed = (std::process::id() as u64 % 100_000) * 10_000 + n % 10_000;
    format!("{:012}", 100_000_000_000u64 + seed * 7 % 800_000_000_000)
}

pub async fn ec2(endpoint: &str, account_id: &str, region: &str) -> Ec2 {
    Ec2::connect(endpoint, account_id, region)
        .await
        .expect("connect to moto")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    match std::env::var("SKYHOLD_TEST_DB").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("SKYHOLD_TEST_DB must be sqlite or postgres, not {other:?}"),
    }
}

pub fn postgres_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh, empty database for one test: a temp SQLite file or a new
/// PostgreSQL schema. Keep it alive for the test's duration.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    schema: Option<String>,
}

impl TestDb {
    /// Runs one raw statement on the test database, bypassing skyhold: for
    /// tests that tamper with stored rows (the audit chain) the way an
    /// attacker with database access would.
    pub async fn tamper(&self, sql: &str) {
        match backend() {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url)
                    .await
                    .expect("open sqlite");
                sqlx::query(sql).execute(&pool).await.expect("tamper");
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url)
                    .await
                    .expect("open postgres");
                sqlx::query(sql).execute(&pool).await.expect("tamper");
                pool.close().await;
            }
        }
    }

    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend() {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("skyhold.db").display());
                TestDb {
                    url,
                    dir,
                    schema: None,
                }
            }
            Backend::Postgres => {
                static N: AtomicU64 = AtomicU64::new(0);
                let schema = format!(
                    "skyhold_t_{}_{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                );
                let base = postgres_url();
                let admin = sqlx::PgPool::connect(&base)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                clean_old_schemas(&admin).await;
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                admin.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                TestDb {
                    url,
                    dir,
                    schema: Some(schema),
                }
            }
        }
    }
}

/// Drops schemas that earlier test runs left (once per process; the suites
/// on one database never run concurrently).
async fn clean_old_schemas(admin: &sqlx::PgPool) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let me = format!("skyhold_t_{}_%", std::process::id());
        let old: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'skyhold\\_t\\_%' AND nspname NOT LIKE $1",
        )
        .bind(me)
        .fetch_all(admin)
        .await
        .unwrap_or_default();
        for s in old {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {s} CASCADE")).execute(admin).await;
        }
    })
    .await;
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            // Best effort, off the test's runtime; leftovers are dropped by the next run.
            let base = postgres_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let p = sqlx::PgPool::connect(&base).await.ok()?;
                    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&p)
                        .await
                        .ok()?;
                    p.close().await;
                    Some(())
                })
            })
            .join();
        }
    }
}

/// One account as the test wants it configured.
pub struct AccountSpec {
    pub name: String,
    pub account_id: String,
    pub regions: Vec<String>,
    pub endpoint: String,
    pub page_size: Option<u32>,
    pub kinds: Option<Vec<String>>,
    /// More TOML lines for this account's table.
    pub extra: String,
}

impl AccountSpec {
    pub fn new(name: &str, endpoint: &str, regions: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            account_id: new_account_id(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
            endpoint: endpoint.to_owned(),
            page_size: None,
            kinds: None,
            extra: String::new(),
        }
    }

    /// Adds a line to the account's TOML table (e.g. `browse_buckets = ["x"]`).
    pub fn with_line(mut self, line: &str) -> Self {
        self.extra.push_str(line);
        self.extra.push('\n');
        self
    }

    pub fn with_kinds(mut self, kinds: &[&str]) -> Self {
        self.kinds = Some(kinds.iter().map(|k| k.to_string()).collect());
        self
    }

    fn toml(&self) -> String {
        let regions: Vec<String> = self.regions.iter().map(|r| format!("{r:?}")).collect();
        let mut s = format!(
            "[[accounts]]\nname = {:?}\nprovider = \"aws\"\nregions = [{}]\nendpoint_url = {:?}\n\
             access_key_id = \"testing\"\nsecret_access_key = \"testing\"\n\
             role_arn = \"arn:aws:iam::{}:role/skyhold\"\nmax_attempts = 1\n",
            self.name,
            regions.join(", "),
            self.endpoint,
            self.account_id
        );
        if let Some(k) = &self.kinds {
            let list: Vec<String> = k.iter().map(|k| format!("{k:?}")).collect();
            s.push_str(&format!("kinds = [{}]\n", list.join(", ")));
        }
        if let Some(p) = self.page_size {
            s.push_str(&format!("page_size = {p}\n"));
        }
        s.push_str(&self.extra);
        s
    }
}

pub struct TestServer {
    pub url: String,
    pub token: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    running: Option<Running>,
}

impl TestServer {
    pub async fn start(accounts: &[AccountSpec]) -> TestServer {
        TestServer::start_edited(accounts, |toml| toml).await
    }

    /// Creates a user directly (as `skyhold user add` does).
    pub async fn create_user(&self, name: &str, password: &str, role: skyhold_core::Role) {
        self.app()
            .create_user(
                &skyhold::app::Actor::system("test"),
                name,
                password,
                role,
                "",
            )
            .await
            .expect("creating a user");
    }

    /// Creates a user and returns an API token for them.
    pub async fn user_token(&self, name: &str, role: skyhold_core::Role) -> String {
        let pw = format!("{name}-password");
        self.create_user(name, &pw, role).await;
        let (status, v) = self.login_token(name, &pw).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["token"].as_str().expect("token").to_owned()
    }

    /// A request with a JSON body and an optional Idempotency-Key.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token)
            .json(&body);
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn app(&self) -> &skyhold::app::App {
        &self.running.as_ref().expect("running").app
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Asks for an API token with a user name and password.
    pub async fn login_token(&self, username: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({"username": username, "password": password});
        self.request(
            reqwest::Method::POST,
            "/api/v1/auth/token",
            None,
            Some(body),
        )
        .await
    }

    /// GET with the admin token; panics unless 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self
            .request(reqwest::Method::GET, path, Some(&self.token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {v}");
        v
    }

    /// GET a page with the admin token: its status and text.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = res.status();
        (status, res.text().await.expect("body"))
    }

    /// Runs a sync of everything and waits for it.
    pub async fn sync(&self) -> Value {
        let (status, v) = self
            .request(
                reqwest::Method::POST,
                "/api/v1/sync",
                Some(&self.token),
                Some(json!({"wait": true})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// Every item of a listing, following next_cursor.
    pub async fn all(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/resources?{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = self.get(&path).await;
            out.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        out
    }

    /// Runs the skyhold binary with its own config directory.
    /// Runs the CLI as `token`'s user (through SKYHOLD_URL/SKYHOLD_TOKEN).
    pub fn cli_as(&self, token: &str, args: &[&str], stdin: &str) -> std::process::Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skyhold"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.db.dir.path().join("cli-config"))
            .env("HOME", self.db.dir.path())
            .env("SKYHOLD_URL", &self.url)
            .env("SKYHOLD_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run skyhold");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait skyhold")
    }

    /// [`TestServer::cli_as`] with more environment (e.g. a `PATH` with a
    /// stand-in program first).
    pub fn cli_env(
        &self,
        token: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_skyhold"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.db.dir.path().join("cli-config"))
            .env("HOME", self.db.dir.path())
            .env("SKYHOLD_URL", &self.url)
            .env("SKYHOLD_TOKEN", token)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
            .expect("run skyhold")
    }

    pub fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skyhold"))
            .args(args)
            .env("XDG_CONFIG_HOME", self.db.dir.path().join("cli-config"))
            .env("HOME", self.db.dir.path())
            .env_remove("SKYHOLD_URL")
            .env_remove("SKYHOLD_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run skyhold");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait skyhold")
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

/// The `[[accounts]]` TOML of a spec, for the configuration of a spawned
/// `skyhold serve` process.
pub fn account_toml(spec: &AccountSpec) -> String {
    spec.toml()
}

impl TestServer {
    /// Like [`TestServer::start`], with the accounts' TOML passed through
    /// `edit` first (for settings `AccountSpec` does not model, such as
    /// `regions = "all-enabled"`).
    pub async fn start_edited(
        accounts: &[AccountSpec],
        edit: impl Fn(String) -> String,
    ) -> TestServer {
        TestServer::boot(accounts, edit, "", true).await
    }

    /// Starts with `tables` (TOML such as `[auth.proxy]`) written after the
    /// top-level keys and before the accounts.
    pub async fn start_with(accounts: &[AccountSpec], tables: &str) -> TestServer {
        TestServer::boot(accounts, |t| t, tables, true).await
    }

    /// Like [`TestServer::start`], with `extra` TOML after the top-level
    /// keys (more keys, then tables such as `[auth.oidc]`). Without
    /// `admin_token` (password logins off) `token` is empty.
    pub async fn start_with_toml(
        accounts: &[AccountSpec],
        extra: &str,
        admin_token: bool,
    ) -> TestServer {
        TestServer::boot(accounts, |t| t, extra, admin_token).await
    }

    async fn boot(
        accounts: &[AccountSpec],
        edit: impl Fn(String) -> String,
        extra: &str,
        admin_token: bool,
    ) -> TestServer {
        let db = TestDb::new().await;
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = {:?}\nsync_interval = \"1h\"\nsync_on_start = false\n\n{extra}\n",
            db.url
        );
        for a in accounts {
            toml.push_str(&edit(a.toml()));
            toml.push('\n');
        }
        // Policy passes run when a test asks (on demand, with the clock
        // it moves), unless it sets [policies] itself.
        if !toml.contains("[policies]") {
            toml.push_str("\n[policies]\ninterval = \"off\"\n");
        }
        let config_path = db.dir.path().join("skyhold.toml");
        std::fs::write(&config_path, &toml).expect("write config");
        let config = Config::load(Some(&config_path), &|_| None).expect("test config is valid");
        let running = skyhold::serve::start(config, Some(ADMIN_PASSWORD), std::future::pending())
            .await
            .expect("server starts");
        let url = running.url();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let token = if admin_token {
            let r = http
                .post(format!("{url}/api/v1/auth/token"))
                .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
                .send()
                .await
                .expect("token request");
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.expect("json")["token"]
                .as_str()
                .expect("token")
                .to_owned()
        } else {
            String::new()
        };
        TestServer {
            url,
            token,
            http,
            db,
            running: Some(running),
        }
    }
}

/// A syntactically valid ed25519 public key line; its key bytes come from
/// the comment, so different comments give different keys.
pub fn ssh_key(comment: &str) -> String {
    use base64::Engine;
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    let mut key = [9u8; 32];
    for (i, b) in comment.bytes().enumerate() {
        key[i % 32] ^= b.wrapping_add(i as u8);
    }
    blob.extend_from_slice(&key);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    format!("ssh-ed25519 {b64} {comment}")
}

/// An `ssh-rsa` public key line with a modulus of `bits` bits (not a
/// usable key: only its format and size matter to skyhold).
pub fn rsa_key(bits: usize, comment: &str) -> String {
    use base64::Engine;
    let mut blob = Vec::new();
    let mut put = |b: &[u8]| {
        blob.extend_from_slice(&(b.len() as u32).to_be_bytes());
        blob.extend_from_slice(b);
    };
    put(b"ssh-rsa");
    put(&[1, 0, 1]);
    let mut n = vec![0u8]; // mpint: a leading zero keeps it positive
    n.push(0x80 | 0x5a);
    n.extend(std::iter::repeat_n(0x5a, bits / 8 - 1));
    put(&n);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    format!("ssh-rsa {b64} {comment}")
}

/// The configuration of a spawned `skyhold serve` (for crash and replica
/// tests): `extra` top-level TOML, then the account. Returns its path.
pub fn replica_config(db: &TestDb, file: &str, extra: &str, spec: &AccountSpec) -> PathBuf {
    let path = db.dir.path().join(file);
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = {:?}\nsync_interval = \"1h\"\n{extra}\n\n{}",
            db.url,
            account_toml(spec)
        ),
    )
    .expect("write config");
    path
}

/// An admin API token from a server at `url`.
pub async fn admin_token(http: &reqwest::Client, url: &str) -> String {
    let v: Value = http
        .post(format!("{url}/api/v1/auth/token"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    v["token"].as_str().expect("token").to_owned()
}
