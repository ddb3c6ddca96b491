//! Planning a launch: what a launch request against one blueprint version
//! turns into (servers and their names, type, tags, user data, what it
//! takes from quotas) and the command lines that do the same by hand. Pure:
//! the provider's answers (the image, its root device) are passed in.

use crate::blueprint::{BlueprintSpec, FieldError, Vars, VOLUME_GIB};
use crate::quota::Amount;
use crate::Millis;

/// The most servers one launch may ask for.
pub const MAX_COUNT: u32 = 20;
/// A resource's creator (the user who asked for it), beside its owner.
pub const CREATOR_TAG: &str = "skyhold:creator";
/// `name@version` of the blueprint an instance was launched from.
pub const BLUEPRINT_TAG: &str = "skyhold:blueprint";
/// The launch an instance belongs to: found by this tag after a crash.
pub const LAUNCH_ID_TAG: &str = "skyhold:launch-id";
/// Which of the launch's servers (1-based) an instance is.
pub const LAUNCH_INDEX_TAG: &str = "skyhold:launch-index";
/// The server's DNS name, from the blueprint's pattern.
pub const FQDN_TAG: &str = "skyhold:fqdn";
/// When the resource expires (RFC 3339 UTC).
pub const EXPIRES_TAG: &str = "skyhold:expires-at";
/// The volume size assumed for quotas when neither the request, the
/// blueprint nor the image says.
pub const DEFAULT_VOLUME_GIB: u32 = 8;

/// What a user asks for (the form, the API body, the CLI flags), before
/// it is checked against the blueprint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchInput {
    pub name: String,
    pub instance_type: Option<String>,
    pub count: Option<u32>,
    pub packages: Vec<String>,
    /// A duration (`8h`, `3d`) or `never`.
    pub ttl: Option<String>,
    /// `None`: the requester. A user name or `group:NAME`.
    pub owner: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub root_volume_gib: Option<u32>,
    /// Which of the key owner's SSH keys (name, fingerprint or id); `None`:
    /// their newest.
    pub key: Option<String>,
}

/// The key pair name an SSH key is imported as:
/// `skyhold-USERNAME-FINGERPRINT8`, the first 8 characters of its SHA256
/// fingerprint (`+` and `/` written `-` and `_`).
pub fn key_pair_name(username: &str, fingerprint: &str) -> String {
    let fp: String = fingerprint
        .strip_prefix("SHA256:")
        .unwrap_or(fingerprint)
        .chars()
        .take(8)
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    format!("skyhold-{username}-{fp}")
}

/// One server of a launch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Server {
    /// 1-based.
    pub index: u32,
    pub name: String,
    /// The DNS name from the blueprint's pattern, if it names a zone.
    pub fqdn: Option<String>,
}

/// A checked launch request: everything but the provider's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub blueprint: String,
    pub version: i64,
    pub account: String,
    pub region: String,
    pub instance_type: String,
    pub servers: Vec<Server>,
    pub packages: Vec<String>,
    /// As given (`8h`), for the command line; empty for the default.
    pub ttl_input: String,
    /// `None`: never expires.
    pub ttl_ms: Option<i64>,
    pub root_volume_gib: Option<u32>,
    /// The owner tag's value: `ann` or `group:dev`.
    pub owner: String,
    pub creator: String,
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    /// Rendered user data, one per server.
    pub user_data: Vec<String>,
    /// The SSH key asked for (as given), for the command line.
    pub key: Option<String>,
}

/// Server names: a letter or digit, then letters, digits, `.`, `_`, `-`.
fn check_name(name: &str, count: u32) -> Result<(), FieldError> {
    let suffix = if count > 1 {
        format!("-{count}").len()
    } else {
        0
    };
    let ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.len() + suffix <= 63;
    if ok {
        Ok(())
    } else if name.is_empty() {
        Err(FieldError::new("name", "a name is required"))
    } else {
        Err(FieldError::new(
            "name",
            format!(
                "{:?}: use 1-{} letters, digits, '.', '_' or '-', starting with a letter or digit",
                crate::clip(name, 80),
                63 - suffix
            ),
        ))
    }
}

/// The chosen value, which must be one of `allowed` (the first is the
/// default).
fn pick(field: &str, given: Option<&str>, allowed: &[String]) -> Result<String, FieldError> {
    match given.map(str::trim).filter(|s| !s.is_empty()) {
        None => allowed
            .first()
            .cloned()
            .ok_or_else(|| FieldError::new(field, "the blueprint allows none")),
        Some(v) if allowed.iter().any(|a| a == v) => Ok(v.to_owned()),
        Some(v) => Err(FieldError::new(
            field,
            format!(
                "{:?} is not allowed by this blueprint (allowed: {})",
                crate::clip(v, 64),
                allowed.join(", ")
            ),
        )),
    }
}

impl Plan {
    /// Checks `input` against blueprint `spec` (version `version`) for a
    /// launch owned by `owner` and asked for by `creator`. Every refusal
    /// names the field at fault.
    pub fn new(
        spec: &BlueprintSpec,
        version: i64,
        input: &LaunchInput,
        owner: &str,
        creator: &str,
    ) -> Result<Plan, FieldError> {
        let count = input.count.unwrap_or(1);
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(FieldError::new(
                "count",
                format!("{count}: launch 1 to {MAX_COUNT} servers at a time"),
            ));
        }
        let name = input.name.trim();
        check_name(name, count)?;
        let account = pick("account", input.account.as_deref(), &spec.accounts)?;
        let region = pick("region", input.region.as_deref(), &spec.regions)?;
        let instance_type = match input.instance_type.as_deref().map(str::trim) {
            None | Some("") => spec.default_type.clone(),
            Some(t) if spec.allows_type(t) => t.to_owned(),
            Some(t) => {
                return Err(FieldError::new(
                    "type",
                    format!(
                        "{:?} is not allowed by this blueprint (allowed: {})",
                        crate::clip(t, 64),
                        spec.instance_types.join(", ")
                    ),
                ))
            }
        };
        let ttl_input = input.ttl.as_deref().unwrap_or("").trim().to_owned();
        let ttl_ms = match ttl_input.as_str() {
            "" => spec.default_ttl_ms,
            "never" => match spec.max_ttl_ms {
                None => None,
                Some(max) => {
                    return Err(FieldError::new(
                        "ttl",
                        format!(
                            "this blueprint's servers expire within {}: 'never' is not allowed",
                            crate::search::format_duration(max)
                        ),
                    ))
                }
            },
            t => {
                let ms = crate::search::parse_duration(t)
                    .map_err(|m| FieldError::new("ttl", format!("{t:?}: {m}")))?;
                if ms <= 0 {
                    return Err(FieldError::new("ttl", "a TTL must be longer than zero"));
                }
                if let Some(max) = spec.max_ttl_ms.filter(|max| ms > *max) {
                    return Err(FieldError::new(
                        "ttl",
                        format!(
                            "{t} is longer than this blueprint's maximum of {}",
                            crate::search::format_duration(max)
                        ),
                    ));
                }
                Some(ms)
            }
        };
        let root_volume_gib = match input.root_volume_gib {
            None => spec.root_volume_gib,
            Some(g) => {
                let max = spec.max_root_volume_gib.unwrap_or(*VOLUME_GIB.end());
                if !VOLUME_GIB.contains(&g) || g > max {
                    return Err(FieldError::new(
                        "root_volume_gib",
                        format!("{g} GiB: choose 1 to {max} GiB"),
                    ));
                }
                Some(g)
            }
        };
        let mut packages = input.packages.clone();
        packages.retain(|p| !p.trim().is_empty());
        packages.sort();
        packages.dedup();
        let mut servers = Vec::with_capacity(count as usize);
        let mut user_data = Vec::with_capacity(count as usize);
        for index in 1..=count {
            let name = if count == 1 {
                name.to_owned()
            } else {
                format!("{name}-{index}")
            };
            let mut vars = Vars {
                name: name.clone(),
                owner: owner.to_owned(),
                fqdn: String::new(),
            };
            let fqdn = spec.fqdn(&vars)?;
            vars.fqdn = fqdn.clone().unwrap_or_default();
            user_data.push(spec.user_data_for(&vars, &packages)?);
            servers.push(Server { index, name, fqdn });
        }
        Ok(Plan {
            blueprint: spec.name.clone(),
            version,
            account,
            region,
            instance_type,
            servers,
            packages,
            ttl_input,
            ttl_ms,
            root_volume_gib,
            owner: owner.to_owned(),
            creator: creator.to_owned(),
            subnet_id: spec.subnet_ids.first().cloned(),
            security_group_ids: spec.security_group_ids.clone(),
            user_data,
            key: input.key.clone().filter(|k| !k.trim().is_empty()),
        })
    }

    pub fn count(&self) -> u32 {
        self.servers.len() as u32
    }

    /// What the launch takes from quotas; `image_volume_gib` is the
    /// image's own root volume size, used when neither the request nor the
    /// blueprint sets one. `None` for a type whose size is unknown.
    pub fn amount(&self, image_volume_gib: Option<u32>) -> Option<Amount> {
        let volume = self
            .root_volume_gib
            .or(image_volume_gib)
            .unwrap_or(DEFAULT_VOLUME_GIB);
        Amount::of_instances(
            &self.instance_type,
            u64::from(self.count()),
            u64::from(volume),
        )
    }

    /// When servers launched at `now` expire.
    pub fn expires_at(&self, now: Millis) -> Option<Millis> {
        self.ttl_ms.map(|t| now.saturating_add(t))
    }

    /// The tags of server `index` (1-based), set on the instance and its
    /// volumes when they are created: the blueprint's own tags, then
    /// skyhold's (which win). `launch` carries the launch tag's value and
    /// the expiry; without it (the equivalent command line) those two are
    /// left out, so the same form always gives the same command.
    pub fn tags(
        &self,
        spec: &BlueprintSpec,
        index: u32,
        launch: Option<(&str, Option<Millis>)>,
    ) -> Vec<(String, String)> {
        let server = &self.servers[(index as usize)
            .saturating_sub(1)
            .min(self.servers.len() - 1)];
        let mut tags: Vec<(String, String)> = spec
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tags.push(("Name".into(), server.name.clone()));
        tags.push((crate::access::OWNER_TAG.into(), self.owner.clone()));
        tags.push((CREATOR_TAG.into(), self.creator.clone()));
        tags.push((
            BLUEPRINT_TAG.into(),
            format!("{}@{}", self.blueprint, self.version),
        ));
        if let Some(f) = &server.fqdn {
            tags.push((FQDN_TAG.into(), f.clone()));
        }
        if let Some((launch_id, expires)) = launch {
            tags.push((LAUNCH_ID_TAG.into(), launch_id.to_owned()));
            tags.push((LAUNCH_INDEX_TAG.into(), index.to_string()));
            if let Some(at) = expires {
                tags.push((EXPIRES_TAG.into(), crate::rfc3339(at)));
            }
        }
        tags
    }

    /// `skyhold launch …` with every value this plan was made from.
    pub fn skyhold_command(&self, spec: &BlueprintSpec) -> String {
        let base = self.servers.first().map(|s| {
            if self.servers.len() > 1 {
                s.name.strip_suffix("-1").unwrap_or(&s.name).to_owned()
            } else {
                s.name.clone()
            }
        });
        let mut w = vec![
            "skyhold".to_owned(),
            "launch".to_owned(),
            shell_quote(&self.blueprint),
            "--name".to_owned(),
            shell_quote(&base.unwrap_or_default()),
        ];
        let mut flag = |f: &str, v: &str| {
            w.push(f.to_owned());
            w.push(shell_quote(v));
        };
        if spec.accounts.first() != Some(&self.account) {
            flag("--account", &self.account);
        }
        if spec.regions.first() != Some(&self.region) {
            flag("--region", &self.region);
        }
        flag("--type", &self.instance_type);
        if self.count() > 1 {
            flag("--count", &self.count().to_string());
        }
        for p in &self.packages {
            flag("--package", p);
        }
        if !self.ttl_input.is_empty() {
            flag("--ttl", &self.ttl_input);
        }
        if let Some(g) = self
            .root_volume_gib
            .filter(|g| Some(*g) != spec.root_volume_gib)
        {
            flag("--root-volume-gib", &g.to_string());
        }
        if self.owner != self.creator {
            flag("--for", &self.owner);
        }
        w.join(" ")
    }

    /// The plain AWS CLI calls that make the same servers (one per server,
    /// as skyhold makes them): `image_id` as resolved, the root device
    /// name of the image where the root volume is sized, and the key pair
    /// name if any. User data is read from a file named after the server.
    pub fn aws_commands(
        &self,
        spec: &BlueprintSpec,
        image_id: &str,
        root_device: Option<&str>,
        key_name: Option<&str>,
    ) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| {
                let mut w: Vec<String> = [
                    "aws",
                    "ec2",
                    "run-instances",
                    "--profile",
                    &shell_quote(&self.account),
                    "--region",
                    &shell_quote(&self.region),
                    "--image-id",
                    &shell_quote(image_id),
                    "--instance-type",
                    &shell_quote(&self.instance_type),
                    "--count",
                    "1",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                if let Some(sn) = &self.subnet_id {
                    w.push("--subnet-id".into());
                    w.push(shell_quote(sn));
                }
                if !self.security_group_ids.is_empty() {
                    w.push("--security-group-ids".into());
                    w.extend(self.security_group_ids.iter().map(|g| shell_quote(g)));
                }
                if let Some(k) = key_name {
                    w.push("--key-name".into());
                    w.push(shell_quote(k));
                }
                if let (Some(gib), Some(dev)) = (self.root_volume_gib, root_device) {
                    let bdm = serde_json::json!([{"DeviceName": dev, "Ebs": {"VolumeSize": gib}}]);
                    w.push("--block-device-mappings".into());
                    w.push(shell_quote(&bdm.to_string()));
                }
                if !self.user_data[(s.index - 1) as usize].is_empty() {
                    w.push("--user-data".into());
                    w.push(shell_quote(&format!("file://{}.user-data", s.name)));
                }
                let tags: Vec<serde_json::Value> = self
                    .tags(spec, s.index, None)
                    .into_iter()
                    .map(|(k, v)| serde_json::json!({"Key": k, "Value": v}))
                    .collect();
                let specs = serde_json::json!([
                    {"ResourceType": "instance", "Tags": tags},
                    {"ResourceType": "volume", "Tags": tags},
                ]);
                w.push("--tag-specifications".into());
                w.push(shell_quote(&specs.to_string()));
                w.join(" ")
            })
            .collect()
    }
}

/// Where the key hook's settings are written on the instance.
pub const KEY_HOOK_ENV: &str = "/etc/skyhold/key-hook.env";

const BOUNDARY: &str = "==SKYHOLD-BOUNDARY==";

/// The first-boot script that leaves the key hook's settings (skyhold's
/// URL and the instance's secret) in [`KEY_HOOK_ENV`], readable by root
/// only.
fn key_hook_script(url: &str, secret: &str) -> String {
    format!(
        "#!/bin/sh\n# skyhold key hook settings: see the README's key hook section.\n\
         install -d -m 700 /etc/skyhold\n\
         umask 077\n\
         printf 'SKYHOLD_URL=%s\\nSKYHOLD_INSTANCE_SECRET=%s\\n' {} {} > {KEY_HOOK_ENV}\n",
        shell_quote(url),
        shell_quote(secret)
    )
}

/// The MIME type cloud-init reads a user data part as.
fn part_type(body: &str) -> &'static str {
    if body.trim_start().starts_with("#cloud-config") {
        "text/cloud-config"
    } else {
        "text/x-shellscript"
    }
}

/// User data with the key hook's first-boot script added as one more
/// part: a multipart document gains a part, anything else becomes one
/// beside it; empty user data is just the script.
pub fn with_key_hook(user_data: &str, url: &str, secret: &str) -> String {
    let hook = key_hook_script(url, secret);
    if user_data.trim().is_empty() {
        return hook;
    }
    let part = |body: &str| {
        format!(
            "--{BOUNDARY}\nContent-Type: {}; charset=\"us-ascii\"\n\n{body}\n",
            part_type(body)
        )
    };
    let closing = format!("--{BOUNDARY}--\n");
    if user_data.starts_with("Content-Type: multipart/mixed") {
        if let Some(head) = user_data.strip_suffix(&closing) {
            return format!("{head}{}{closing}", part(&hook));
        }
    }
    format!(
        "Content-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\nMIME-Version: 1.0\n\n{}{}{closing}",
        part(user_data),
        part(&hook)
    )
}

/// `s` as one word for a POSIX shell: as it is when that is safe, else in
/// single quotes.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '.' | '/' | ':' | '=' | '@' | '%' | '+' | ',' | '-')
        });
    if safe {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blueprint::KeyMode;

    fn spec() -> BlueprintSpec {
        BlueprintSpec {
            name: "dev-box".into(),
            description: String::new(),
            accounts: vec!["main".into(), "lab".into()],
            regions: vec!["us-east-1".into()],
            image: "ami-12c6146b".into(),
            instance_types: vec!["t3.*".into(), "m5.large".into()],
            default_type: "t3.small".into(),
            subnet_ids: vec![],
            security_group_ids: vec!["sg-1".into()],
            root_volume_gib: Some(20),
            max_root_volume_gib: Some(100),
            key_mode: KeyMode::OwnerKey,
            login_user: "ubuntu".into(),
            user_data: "#cloud-config\nhostname: {{name}}\n".into(),
            packages: vec!["r-base".into(), "python3-pylab".into()],
            default_ttl_ms: Some(8 * 3_600_000),
            max_ttl_ms: Some(24 * 3_600_000),
            expiry_policy: Default::default(),
            idle_policy: Default::default(),
            dns_zone: "Z1".into(),
            dns_name_pattern: "{{name}}.dev.example.com".into(),
            tags: [("team".to_owned(), "it's".to_owned())]
                .into_iter()
                .collect(),
        }
    }

    fn input(name: &str) -> LaunchInput {
        LaunchInput {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_come_from_the_blueprint() {
        let p = Plan::new(&spec(), 3, &input("web1"), "ann", "ann").unwrap();
        assert_eq!(p.account, "main");
        assert_eq!(p.instance_type, "t3.small");
        assert_eq!(p.ttl_ms, Some(8 * 3_600_000));
        assert_eq!(p.root_volume_gib, Some(20));
        assert_eq!(p.servers.len(), 1);
        assert_eq!(p.servers[0].name, "web1");
        assert_eq!(p.servers[0].fqdn.as_deref(), Some("web1.dev.example.com"));
        assert!(p.user_data[0].contains("hostname: web1"));
        let a = p.amount(None).unwrap();
        assert_eq!((a.instances, a.vcpus, a.volume_gib), (1, 2, 20));
        assert_eq!(p.expires_at(1_000), Some(1_000 + 8 * 3_600_000));
    }

    #[test]
    fn several_servers_are_numbered() {
        let mut i = input("lab");
        i.count = Some(3);
        i.packages = vec!["r-base".into(), "r-base".into()];
        let p = Plan::new(&spec(), 1, &i, "group:dev", "staff").unwrap();
        let names: Vec<_> = p.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["lab-1", "lab-2", "lab-3"]);
        assert_eq!(p.packages, ["r-base"]);
        assert!(p.user_data[2].contains("hostname: lab-3") && p.user_data[2].contains("- r-base"));
        let tags = p.tags(&spec(), 2, Some(("lch-x", Some(0))));
        let get = |k: &str| tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Name"), Some("lab-2"));
        assert_eq!(get("skyhold:owner"), Some("group:dev"));
        assert_eq!(get("skyhold:creator"), Some("staff"));
        assert_eq!(get("skyhold:blueprint"), Some("dev-box@1"));
        assert_eq!(get("skyhold:launch-id"), Some("lch-x"));
        assert_eq!(get("skyhold:launch-index"), Some("2"));
        assert_eq!(get("skyhold:expires-at"), Some("1970-01-01T00:00:00Z"));
        assert_eq!(get("team"), Some("it's"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let s = spec();
        let bad = |f: &dyn Fn(&mut LaunchInput)| {
            let mut i = input("web1");
            f(&mut i);
            Plan::new(&s, 1, &i, "ann", "ann").unwrap_err().field
        };
        assert_eq!(bad(&|i| i.name = String::new()), "name");
        assert_eq!(bad(&|i| i.name = "-x".into()), "name");
        assert_eq!(bad(&|i| i.name = "a b".into()), "name");
        assert_eq!(bad(&|i| i.name = "x".repeat(64)), "name");
        assert_eq!(bad(&|i| i.count = Some(0)), "count");
        assert_eq!(bad(&|i| i.count = Some(21)), "count");
        assert_eq!(bad(&|i| i.instance_type = Some("c5.xlarge".into())), "type");
        assert_eq!(bad(&|i| i.ttl = Some("2d".into())), "ttl");
        assert_eq!(bad(&|i| i.ttl = Some("never".into())), "ttl");
        assert_eq!(bad(&|i| i.ttl = Some("soon".into())), "ttl");
        assert_eq!(bad(&|i| i.account = Some("other".into())), "account");
        assert_eq!(bad(&|i| i.region = Some("eu-west-1".into())), "region");
        assert_eq!(bad(&|i| i.root_volume_gib = Some(101)), "root_volume_gib");
        assert_eq!(bad(&|i| i.root_volume_gib = Some(0)), "root_volume_gib");
        assert_eq!(bad(&|i| i.packages = vec!["emacs".into()]), "packages");
        // A name with a dot is a fine Name tag but not one DNS label.
        assert_eq!(bad(&|i| i.name = "a_b".into()), "name");
    }

    #[test]
    fn the_same_form_gives_the_same_command_lines() {
        let s = spec();
        let mut i = input("web1");
        i.ttl = Some("12h".into());
        i.packages = vec!["r-base".into()];
        i.owner = Some("bob".into());
        let a = Plan::new(&s, 2, &i, "bob", "ann").unwrap();
        let b = Plan::new(&s, 2, &i, "bob", "ann").unwrap();
        assert_eq!(a.skyhold_command(&s), b.skyhold_command(&s));
        assert_eq!(
            a.skyhold_command(&s),
            "skyhold launch dev-box --name web1 --type t3.small --package r-base --ttl 12h --for bob"
        );
        let aws = a.aws_commands(&s, "ami-1", Some("/dev/sda1"), Some("skyhold-bob-12345678"));
        assert_eq!(
            aws,
            b.aws_commands(&s, "ami-1", Some("/dev/sda1"), Some("skyhold-bob-12345678"))
        );
        assert_eq!(aws.len(), 1);
        assert!(aws[0].starts_with(
            "aws ec2 run-instances --profile main --region us-east-1 --image-id ami-1 --instance-type t3.small --count 1 --security-group-ids sg-1 --key-name skyhold-bob-12345678"
        ), "{}", aws[0]);
        assert!(aws[0].contains(
            r#"--block-device-mappings '[{"DeviceName":"/dev/sda1","Ebs":{"VolumeSize":20}}]'"#
        ));
        assert!(aws[0].contains("--user-data file://web1.user-data"));
        // The blueprint's tag value with a quote survives shell quoting.
        assert!(
            aws[0].contains(r#"{"Key":"team","Value":"it'\''s"}"#),
            "{}",
            aws[0]
        );
        assert!(!aws[0].contains("launch-id"));
        let mut many = i.clone();
        many.count = Some(2);
        let m = Plan::new(&s, 2, &many, "bob", "ann").unwrap();
        assert!(m
            .skyhold_command(&s)
            .contains("--name web1 --type t3.small --count 2"));
        assert_eq!(m.aws_commands(&s, "ami-1", None, None).len(), 2);
    }

    #[test]
    fn key_pair_names_carry_the_fingerprint() {
        assert_eq!(
            key_pair_name("ann", "SHA256:ab+/cdefghij"),
            "skyhold-ann-ab-_cdef"
        );
    }

    #[test]
    fn the_key_hook_joins_any_user_data() {
        let alone = with_key_hook("", "https://sky.example", "shi_x");
        assert!(alone.starts_with("#!/bin/sh"), "{alone}");
        assert!(alone.contains("SKYHOLD_INSTANCE_SECRET=%s") && alone.contains(" shi_x "));
        let cc = with_key_hook(
            "#cloud-config\nhostname: a\n",
            "https://sky.example",
            "shi_x",
        );
        assert!(cc.starts_with("Content-Type: multipart/mixed"), "{cc}");
        assert!(cc.contains("Content-Type: text/cloud-config"), "{cc}");
        assert!(cc.contains("Content-Type: text/x-shellscript"), "{cc}");
        assert!(cc.ends_with("--==SKYHOLD-BOUNDARY==--\n"), "{cc}");
        // A multipart document (a script with packages) gains one part.
        let mut spec = spec();
        spec.user_data = "#!/bin/sh\necho hi\n".into();
        let ud = spec
            .user_data_for(&Vars::default(), &["r-base".to_owned()])
            .unwrap();
        let both = with_key_hook(&ud, "https://sky.example", "shi_x");
        assert_eq!(
            both.matches("--==SKYHOLD-BOUNDARY==\n").count(),
            3,
            "{both}"
        );
        assert_eq!(
            both.matches("--==SKYHOLD-BOUNDARY==--").count(),
            1,
            "{both}"
        );
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("abc-1.2"), "abc-1.2");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$(rm)"), "'$(rm)'");
    }
}
