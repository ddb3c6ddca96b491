//! `skyhold user|group|grant|owner`: identity and permissions from the
//! command line. `user` works through the API when logged in, or directly on
//! the database with `--config` (as actor `system:cli`, through the same
//! domain functions, check and audit log as the server).

use super::{client, emit, load_config, print_table, read_password, s, Client, RoleArg};
use crate::app::{Actor, App, UserChange, UserView};
use anyhow::{anyhow, bail, Result};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from the terminal or standard input.
    Add {
        username: String,
        #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
        role: RoleArg,
        #[arg(long, default_value = "")]
        email: String,
        /// Work on the database this configuration names instead of the API.
        #[arg(long, env = "SKYHOLD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List users.
    Ls {
        #[arg(long)]
        json: bool,
        #[arg(long, env = "SKYHOLD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Change a user's role or email, reset their password (read from the
    /// terminal or standard input), or enable them again.
    Set {
        username: String,
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        #[arg(long)]
        email: Option<String>,
        /// Set a new password (prompted for).
        #[arg(long)]
        password: bool,
        /// Enable a disabled user.
        #[arg(long)]
        enable: bool,
        #[arg(long, env = "SKYHOLD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Disable a user: their sessions and tokens stop working at once.
    Disable {
        username: String,
        #[arg(long, env = "SKYHOLD_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group (admins).
    Add { name: String },
    /// List groups and their members.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Delete a group, its memberships and its grants (admins).
    Rm {
        name: String,
        /// Needed when standard input is not a terminal.
        #[arg(long)]
        yes: bool,
    },
    /// Add or remove members.
    Member {
        #[command(subcommand)]
        command: MemberCommand,
    },
}

#[derive(Subcommand)]
pub enum MemberCommand {
    Add { group: String, username: String },
    Rm { group: String, username: String },
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// Give SUBJECT (user:NAME, group:NAME) LEVEL (view, operate, manage) on
    /// OBJECT (account:NAME, resource:ID, group:NAME, user:NAME).
    Add {
        subject: String,
        object: String,
        level: String,
    },
    /// List grants, optionally on one object or held by one subject.
    Ls {
        #[arg(long)]
        object: Option<String>,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a grant by id (see `grant ls`).
    Rm { id: i64 },
}

/// Where user commands run: the API, or the database directly.
enum Target {
    Api(Client),
    Db(Arc<App>, Box<Actor>),
}

async fn target(config: Option<PathBuf>) -> Result<Target> {
    match config {
        None => Ok(Target::Api(client()?)),
        Some(path) => {
            let config = load_config(Some(&path))?;
            let app = crate::serve::open_app(config).await?;
            Ok(Target::Db(app, Box::new(Actor::system("cli"))))
        }
    }
}

impl Target {
    async fn close(self) {
        if let Target::Db(app, _) = self {
            app.store.close().await;
        }
    }
}

fn view_json(u: &UserView) -> Value {
    json!({
        "id": u.id, "username": u.username, "role": u.role, "email": u.email,
        "disabled": u.disabled, "source": u.source,
        "created_at": skyhold_core::rfc3339(u.created_at),
    })
}

fn app_err(e: crate::error::AppError) -> anyhow::Error {
    anyhow!("{e}")
}

pub async fn user(command: UserCommand) -> Result<()> {
    match command {
        UserCommand::Add {
            username,
            role,
            email,
            config,
        } => {
            let password = read_password(&format!("Password for {username}: "))?;
            let t = target(config).await?;
            let r = match &t {
                Target::Api(c) => c
                    .call(
                        Method::POST,
                        "/users",
                        Some(json!({"username": username, "password": password,
                                    "role": role.role().as_str(), "email": email})),
                    )
                    .await
                    .map(|_| ()),
                Target::Db(app, actor) => app
                    .create_user(actor, &username, &password, role.role(), &email)
                    .await
                    .map(|_| ())
                    .map_err(app_err),
            };
            t.close().await;
            r?;
            emit(&format!(
                "created user {username} ({})",
                role.role().as_str()
            ))
        }
        UserCommand::Ls { json, config } => {
            let t = target(config).await?;
            let items = match &t {
                Target::Api(c) => c
                    .call(Method::GET, "/users", None)
                    .await
                    .map(|v| v["items"].clone()),
                Target::Db(app, actor) => app
                    .users(actor)
                    .await
                    .map(|us| Value::Array(us.iter().map(view_json).collect()))
                    .map_err(app_err),
            };
            t.close().await;
            let items = items?;
            if json {
                return emit(&serde_json::to_string_pretty(&items)?);
            }
            let rows: Vec<Vec<String>> = items
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|u| {
                    vec![
                        s(u, "/username"),
                        s(u, "/role"),
                        s(u, "/email"),
                        if u["disabled"] == true {
                            "disabled".into()
                        } else {
                            "active".into()
                        },
                        s(u, "/source"),
                    ]
                })
                .collect();
            print_table(&["USER", "ROLE", "EMAIL", "STATUS", "SOURCE"], &rows)
        }
        UserCommand::Set {
            username,
            role,
            email,
            password,
            enable,
            config,
        } => {
            if role.is_none() && email.is_none() && !password && !enable {
                bail!("nothing to change: give --role, --email, --password or --enable");
            }
            let password = if password {
                Some(read_password(&format!("New password for {username}: "))?)
            } else {
                None
            };
            let change = UserChange {
                role: role.map(RoleArg::role),
                disabled: enable.then_some(false),
                password,
                email,
            };
            update(config, &username, change).await?;
            emit(&format!("updated user {username}"))
        }
        UserCommand::Disable { username, config } => {
            let change = UserChange {
                disabled: Some(true),
                ..Default::default()
            };
            update(config, &username, change).await?;
            emit(&format!(
                "disabled user {username}: their sessions and tokens no longer work"
            ))
        }
    }
}

async fn update(config: Option<PathBuf>, username: &str, change: UserChange) -> Result<()> {
    let t = target(config).await?;
    let r = match &t {
        Target::Api(c) => {
            let mut body = serde_json::Map::new();
            if let Some(r) = change.role {
                body.insert("role".into(), r.as_str().into());
            }
            if let Some(d) = change.disabled {
                body.insert("disabled".into(), d.into());
            }
            if let Some(p) = &change.password {
                body.insert("password".into(), p.clone().into());
            }
            if let Some(e) = &change.email {
                body.insert("email".into(), e.clone().into());
            }
            let path = format!("/users/{}", urlencode(username));
            c.call(Method::PATCH, &path, Some(Value::Object(body)))
                .await
                .map(|_| ())
        }
        Target::Db(app, actor) => async {
            let u = app.find_user(username).await?;
            app.update_user(actor, u.id, &change).await.map(|_| ())
        }
        .await
        .map_err(app_err),
    };
    t.close().await;
    r
}

pub(super) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn group(command: GroupCommand) -> Result<()> {
    let c = client()?;
    match command {
        GroupCommand::Add { name } => {
            c.call(Method::POST, "/groups", Some(json!({"name": name})))
                .await?;
            emit(&format!("created group {name}"))
        }
        GroupCommand::Ls { json } => {
            let v = c.call(Method::GET, "/groups", None).await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|g| {
                    let members: Vec<String> = g["members"]
                        .as_array()
                        .map(|m| {
                            m.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    vec![s(g, "/name"), members.len().to_string(), members.join(", ")]
                })
                .collect();
            print_table(&["GROUP", "MEMBERS", "WHO"], &rows)
        }
        GroupCommand::Rm { name, yes } => {
            super::confirm(
                yes,
                &format!("Delete group {name} with its memberships and grants?"),
                None,
            )?;
            c.call(
                Method::DELETE,
                &format!("/groups/{}", urlencode(&name)),
                None,
            )
            .await?;
            emit(&format!("deleted group {name}"))
        }
        GroupCommand::Member { command } => match command {
            MemberCommand::Add { group, username } => {
                c.call(
                    Method::POST,
                    &format!("/groups/{}/members", urlencode(&group)),
                    Some(json!({"username": username})),
                )
                .await?;
                emit(&format!("added {username} to {group}"))
            }
            MemberCommand::Rm { group, username } => {
                c.call(
                    Method::DELETE,
                    &format!(
                        "/groups/{}/members/{}",
                        urlencode(&group),
                        urlencode(&username)
                    ),
                    None,
                )
                .await?;
                emit(&format!("removed {username} from {group}"))
            }
        },
    }
}

pub async fn grant(command: GrantCommand) -> Result<()> {
    let c = client()?;
    match command {
        GrantCommand::Add {
            subject,
            object,
            level,
        } => {
            let v = c
                .call(
                    Method::POST,
                    "/grants",
                    Some(json!({"subject": subject, "object": object, "level": level})),
                )
                .await?;
            emit(&format!(
                "grant {}: {} has {} on {}",
                s(&v, "/id"),
                s(&v, "/subject"),
                s(&v, "/level"),
                s(&v, "/object")
            ))
        }
        GrantCommand::Ls {
            object,
            subject,
            json,
        } => {
            let mut q = Vec::new();
            if let Some(o) = object {
                q.push(format!("object={}", urlencode(&o)));
            }
            if let Some(sj) = subject {
                q.push(format!("subject={}", urlencode(&sj)));
            }
            let v = c
                .call(Method::GET, &format!("/grants?{}", q.join("&")), None)
                .await?;
            if json {
                return emit(&serde_json::to_string_pretty(&v["items"])?);
            }
            let rows: Vec<Vec<String>> = v["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|g| {
                    vec![
                        s(g, "/id"),
                        s(g, "/subject"),
                        s(g, "/level"),
                        s(g, "/object"),
                    ]
                })
                .collect();
            print_table(&["ID", "SUBJECT", "LEVEL", "OBJECT"], &rows)
        }
        GrantCommand::Rm { id } => {
            c.call(Method::DELETE, &format!("/grants/{id}"), None)
                .await?;
            emit(&format!("removed grant {id}"))
        }
    }
}
