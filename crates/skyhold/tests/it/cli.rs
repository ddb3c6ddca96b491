//! The CLI as a user runs it: the real binary against a real server.

use crate::harness::*;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_ls_sync_and_completions() {
    let moto = shared_moto();
    let spec = AccountSpec::new("cli", moto, &["us-east-1"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(2, 1, "api-server", &[("owner", "dave")])
        .await
        .unwrap();
    ec2.launch(1, 1, "worker", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;

    let out = server.cli(
        &["login", &server.url, "--username", "admin"],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(out.status.success(), "login failed: {}", text(&out.stderr));
    let saved = server.db.dir.path().join("cli-config/skyhold/cli.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&saved)
            .expect("token file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "token file must be private");
    }

    let out = server.cli(&["sync", "--wait"], "");
    assert!(out.status.success(), "sync: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("instance"),
        "{}",
        text(&out.stdout)
    );

    let out = server.cli(&["ls"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "header + 3 instances:\n{table}");
    assert!(lines[0].starts_with("ACCOUNT") && lines[0].contains("PRIVATE IP"));
    let col = lines[0].find("NAME").unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.get(col..).is_some_and(|c| !c.starts_with(' '))),
        "columns aligned:\n{table}"
    );

    let out = server.cli(&["ls", "api-server", "--json"], "");
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["owner"] == "dave"));

    let out = server.cli(
        &[
            "ls",
            "--state",
            "running",
            "--account",
            "cli",
            "--kind",
            "instance",
            "--json",
        ],
        "",
    );
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json output");
    assert_eq!(items.len(), 3);

    // A bad flag value gets the server's message naming the parameter.
    let out = server.cli(&["ls", "--sort", "colour"], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("'sort'"),
        "{}",
        text(&out.stderr)
    );

    let out = server.cli(&["completions", "bash"], "");
    assert!(out.status.success() && text(&out.stdout).contains("skyhold"));

    let out = server.cli(&["logout"], "");
    assert!(out.status.success());
    let out = server.cli(&["ls"], "");
    assert!(!out.status.success() && text(&out.stderr).contains("not logged in"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_on_the_cli_fails_clearly() {
    let server = TestServer::start(&[]).await;
    let out = server.cli(&["login", &server.url, "--username", "admin"], "wrong\n");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("wrong user name or password"),
        "{}",
        text(&out.stderr)
    );
    let out = server.cli(&["login", "not a url"], "");
    assert!(!out.status.success() && text(&out.stderr).contains("invalid URL"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_config_file_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n\n[[accounts]]\nname = \"ok\"\nregions = [\"us-east-1\"]\nsync_every = \"5m\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skyhold"))
        .args(["serve", "--config"])
        .arg(&path)
        .env(
            "SKYHOLD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("x.db").display()),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("line 6") && err.contains("sync_every"),
        "{err}"
    );

    std::fs::write(&path, "sync_interval = 300\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skyhold"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 1") && err.contains("sync_interval"),
        "{err}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skyhold"))
        .args(["check-config", "--config"])
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success() && text(&out.stderr).contains("missing.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_add_creates_a_user_who_can_log_in() {
    let server = TestServer::start(&[]).await;
    let config = server.db.dir.path().join("skyhold.toml");
    let config = config.to_str().unwrap();
    let out = server.cli(
        &["user", "add", "vic", "--role", "viewer", "--config", config],
        "vic-password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli(
        &["user", "add", "vic", "--config", config],
        "vic-password\n",
    );
    assert!(
        !out.status.success() && text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );
    let out = server.cli(&["user", "add", "tiny", "--config", config], "short\n");
    assert!(
        !out.status.success() && text(&out.stderr).contains("at least 8"),
        "{}",
        text(&out.stderr)
    );

    let (status, v) = server.login_token("vic", "vic-password").await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{v}");
    assert_eq!(v["role"], "viewer");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_groups_and_grants_from_the_cli() {
    let server = TestServer::start(&[]).await;
    let config = server.db.dir.path().join("skyhold.toml");
    let config = config.to_str().unwrap();
    let tok = server.token.clone();
    // On the database directly, and through the API.
    let out = server.cli(
        &["user", "add", "ann", "--role", "member", "--config", config],
        "ann-password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli_as(
        &tok,
        &["user", "add", "bob", "--role", "auditor"],
        "bob-password\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli_as(&tok, &["user", "ls"], "");
    let listing = text(&out.stdout);
    assert!(
        listing.contains("ann") && listing.contains("member") && listing.contains("auditor"),
        "{listing}"
    );
    let out = server.cli(
        &["user", "set", "bob", "--role", "viewer", "--config", config],
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli_as(&tok, &["user", "ls", "--json"], "");
    let users: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let bob = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert_eq!(bob["role"], "viewer");
    let out = server.cli_as(&tok, &["user", "set", "bob"], "");
    assert!(!out.status.success() && text(&out.stderr).contains("nothing to change"));
    // Disabling works at once.
    let (status, _) = server.login_token("ann", "ann-password").await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let out = server.cli_as(&tok, &["user", "disable", "ann"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (status, _) = server.login_token("ann", "ann-password").await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let out = server.cli(&["user", "set", "ann", "--enable", "--config", config], "");
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Groups and grants.
    for args in [
        &["group", "add", "dev"][..],
        &["group", "member", "add", "dev", "ann"],
        &["grant", "add", "group:dev", "user:bob", "manage"],
    ] {
        let out = server.cli_as(&tok, args, "");
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let out = server.cli_as(&tok, &["group", "ls"], "");
    assert!(text(&out.stdout).contains("ann"), "{}", text(&out.stdout));
    let out = server.cli_as(&tok, &["grant", "ls", "--json"], "");
    let grants: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(grants[0]["subject"], "group:dev", "{grants}");
    // Deleting without a terminal needs --yes.
    let out = server.cli_as(&tok, &["group", "rm", "dev"], "");
    assert!(!out.status.success() && text(&out.stderr).contains("--yes"));
    let out = server.cli_as(&tok, &["group", "rm", "dev", "--yes"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The audit log from the CLI.
    let out = server.cli_as(&tok, &["audit", "ls", "--action", "group.", "--json"], "");
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "group.delete"),
        "{entries}"
    );
    let out = server.cli_as(&tok, &["audit", "export", "--format", "csv"], "");
    assert!(
        text(&out.stdout).starts_with("seq,time"),
        "{}",
        text(&out.stderr)
    );
    let out = server.cli_as(&tok, &["audit", "verify"], "");
    assert!(
        out.status.success() && text(&out.stdout).contains("intact"),
        "{}",
        text(&out.stdout)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_actions_by_name_from_the_cli() {
    let moto = shared_moto();
    let spec = AccountSpec::new("clipower", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    // Named "web-0" (one reservation), and two instances both named "twin-0".
    let web = ec2.launch(1, 1, "web", &[]).await.unwrap();
    ec2.launch(2, 2, "twin", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let tok = server.token.clone();

    let out = server.cli_as(&tok, &["stop", "web-0", "--wait"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("succeeded"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("stopped"),
        "progress: {}",
        text(&out.stderr)
    );
    let out = server.cli_as(&tok, &["start", &web[0], "--json"], "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["action"]["state"], "succeeded", "{v}");
    // An ambiguous name is refused with its candidates; nothing is done.
    let out = server.cli_as(&tok, &["stop", "twin-0"], "");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("names 2") && err.matches("i-").count() >= 2,
        "{err}"
    );
    let out = server.cli_as(&tok, &["stop", "nosuch"], "");
    assert!(!out.status.success() && text(&out.stderr).contains("no instance named"));
    // Terminate in a pipe needs --yes.
    let out = server.cli_as(&tok, &["terminate", "web-0"], "");
    assert!(
        !out.status.success() && text(&out.stderr).contains("--yes"),
        "{}",
        text(&out.stderr)
    );
    let out = server.cli_as(&tok, &["terminate", "web-0", "--yes"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A viewer is refused, and says so.
    let vic = server.user_token("vic", skyhold_core::Role::Viewer).await;
    let out = server.cli_as(&vic, &["stop", &web[0]], "");
    assert!(!out.status.success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_and_extend_by_name_from_the_cli() {
    let moto = shared_moto();
    let spec = AccountSpec::new("cliexp", moto, &["us-east-1"])
        .with_kinds(&["instance"])
        .with_line("[accounts.policies.expiry]\nmax_ttl = \"3d\"");
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    let web = ec2.launch(1, 1, "web", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    let tok = server.token.clone();
    let tag = || async {
        ec2.instance_tags(&web[0])
            .await
            .unwrap()
            .get("skyhold:expires-at")
            .cloned()
    };

    let out = server.cli_as(&tok, &["expire", "web-0", "--in", "1d"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = tag().await.expect("the tag is written");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("web-0 ({}) expires at {first}", web[0])
    );
    let out = server.cli_as(&tok, &["ls"], "");
    let listing = text(&out.stdout);
    assert!(
        listing.contains("EXPIRES") && listing.contains(&first),
        "{listing}"
    );
    let out = server.cli_as(&tok, &["extend", "web-0", "1d", "--json"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let second = tag().await.unwrap();
    assert_eq!(v["params"]["expires_at"], second, "{v}");
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    assert_eq!(ms(&second) - ms(&first), 86_400_000);
    // Beyond the cap: refused with the cap named, the tag unchanged.
    let out = server.cli_as(&tok, &["extend", "web-0", "2d"], "");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("maximum TTL is 3d (from account cliexp)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tag().await.as_deref(), Some(second.as_str()));
    // Exactly one of --in, --at, --never; a bad duration is the server's
    // field error.
    for args in [
        &["expire", "web-0"][..],
        &["expire", "web-0", "--in", "1d", "--never"][..],
    ] {
        let out = server.cli_as(&tok, args, "");
        assert!(!out.status.success(), "{args:?}");
    }
    let out = server.cli_as(&tok, &["expire", "web-0", "--in", "1 day"], "");
    assert!(
        !out.status.success() && text(&out.stderr).contains("in"),
        "{}",
        text(&out.stderr)
    );
    let out = server.cli_as(&tok, &["expire", "web-0", "--never"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("never expires"));
    assert_eq!(tag().await.as_deref(), Some("never"));
    // Keep: write, show, remove; a reason with --off is refused.
    let out = server.cli_as(&tok, &["keep", "web-0", "demo day"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli_as(&tok, &["keep", "web-0"], "");
    assert_eq!(
        text(&out.stdout).trim(),
        format!("web-0 ({}) is kept: demo day", web[0])
    );
    let out = server.cli_as(&tok, &["keep", "web-0", "why", "--off"], "");
    assert!(!out.status.success());
    let out = server.cli_as(&tok, &["keep", "web-0", "--off"], "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = server.cli_as(&tok, &["keep", "web-0", "--json"], "");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["state"], "none", "{v}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pipe_ends_the_cli_quietly() {
    let moto = shared_moto();
    let spec = AccountSpec::new("clipipe", moto, &["us-east-1"]).with_kinds(&["instance"]);
    let ec2 = ec2(moto, &spec.account_id, "us-east-1").await;
    ec2.launch(30, 30, "many", &[]).await.unwrap();
    let server = TestServer::start(&[spec]).await;
    server.sync().await;
    for args in [
        &["ls"][..],
        &["ls", "--json"],
        &["status"],
        &["audit", "ls"],
    ] {
        // The reader goes away before the CLI writes: like `skyhold ls | head -0`.
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_skyhold"))
            .args(args)
            .env("SKYHOLD_URL", &server.url)
            .env("SKYHOLD_TOKEN", &server.token)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
    server.stop().await;
}
