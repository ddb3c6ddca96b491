//! Blueprints: operator-defined launch presets. This module holds what can
//! be decided without the provider: the spec's shape and its field-level
//! validation, instance-type patterns, and the user-data template (three
//! variables, plus the packages a user ticks, turned into cloud-init).
//! Whether an AMI or a subnet exists is asked of the provider by the app.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A refusal naming the field it is about (API: 400 `invalid_blueprint`
/// with `field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Which image a launch uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// One AMI (`ami-0123…`).
    Ami(String),
    /// The newest own image whose name matches this pattern (`*` matches
    /// any run of characters), written `newest:PATTERN`.
    NewestMatching(String),
}

impl ImageRef {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("newest:") {
            if p.is_empty() || p.len() > 128 || p.chars().any(char::is_control) {
                return Err("newest: needs a name pattern of 1-128 characters".into());
            }
            return Ok(ImageRef::NewestMatching(p.to_owned()));
        }
        let hex = s.strip_prefix("ami-").unwrap_or("");
        if (8..=17).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(ImageRef::Ami(s.to_owned()))
        } else {
            Err(format!(
                "{:?} is neither an AMI id (ami-…) nor newest:PATTERN",
                crate::clip(s, 80)
            ))
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::Ami(a) => f.write_str(a),
            ImageRef::NewestMatching(p) => write!(f, "newest:{p}"),
        }
    }
}

/// Which key pair an instance gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyMode {
    /// The owner's chosen SSH key, imported as
    /// `skyhold-USERNAME-FINGERPRINT8`.
    #[default]
    OwnerKey,
    /// No key pair (access through the key hook or the console).
    None,
}

/// A blueprint's content (one version of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlueprintSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Allowed accounts; the first is the default.
    pub accounts: Vec<String>,
    /// Allowed regions; the first is the default.
    pub regions: Vec<String>,
    /// `ami-…` or `newest:PATTERN`.
    pub image: String,
    /// Allowed types: names or patterns with `*` (`t3.*`).
    pub instance_types: Vec<String>,
    pub default_type: String,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    #[serde(default)]
    pub root_volume_gib: Option<u32>,
    #[serde(default)]
    pub max_root_volume_gib: Option<u32>,
    #[serde(default)]
    pub key_mode: KeyMode,
    pub login_user: String,
    /// A cloud-init document or a script, with `{{name}}`, `{{owner}}` and
    /// `{{fqdn}}`.
    #[serde(default)]
    pub user_data: String,
    /// Packages a user may tick at launch (cloud-init `packages:`).
    #[serde(default)]
    pub packages: Vec<String>,
    /// Milliseconds; `None`: no expiry by default.
    #[serde(default)]
    pub default_ttl_ms: Option<i64>,
    #[serde(default)]
    pub max_ttl_ms: Option<i64>,
    /// The expiry ladder's rules for what is launched from it, over its
    /// account's and the global ones.
    #[serde(default, skip_serializing_if = "crate::policy::ExpiryRules::is_empty")]
    pub expiry_policy: crate::policy::ExpiryRules,
    /// The idle policy's rules for what is launched from it, over its
    /// account's and the global ones.
    #[serde(default, skip_serializing_if = "crate::idle::IdleRules::is_empty")]
    pub idle_policy: crate::idle::IdleRules,
    /// A Route 53 hosted zone (id or name), '' for none.
    #[serde(default)]
    pub dns_zone: String,
    /// `{{name}}.dev.example.com`; required with a zone.
    #[serde(default)]
    pub dns_name_pattern: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// Root volume sizes skyhold accepts (EBS's range).
pub const VOLUME_GIB: std::ops::RangeInclusive<u32> = 1..=16_384;
/// Tags skyhold writes itself on every launch.
pub const RESERVED_TAG_PREFIXES: [&str; 2] = ["aws:", "skyhold:"];
/// Blueprint tags allowed (AWS allows 50 per resource; skyhold writes up
/// to 7 of its own).
pub const MAX_TAGS: usize = 40;

fn valid_type_pattern(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '*'))
}

/// Whether `name` matches `pattern`, where `*` matches any run of
/// characters (including none) and everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl BlueprintSpec {
    /// Whether `instance_type` is one of the allowed types.
    pub fn allows_type(&self, instance_type: &str) -> bool {
        self.instance_types
            .iter()
            .any(|p| glob_match(p, instance_type))
    }

    pub fn image_ref(&self) -> Result<ImageRef, FieldError> {
        ImageRef::parse(&self.image).map_err(|m| FieldError::new("image", m))
    }

    /// Checks everything that needs no provider; the first bad field.
    pub fn validate(&self) -> Result<(), FieldError> {
        crate::access::validate_principal_name("blueprint", &self.name)
            .map_err(|m| FieldError::new("name", m))?;
        if self.name.chars().all(|c| c.is_ascii_digit()) {
            return Err(FieldError::new(
                "name",
                "a blueprint name cannot be all digits (it would read as an id)",
            ));
        }
        if self.description.chars().count() > 500 {
            return Err(FieldError::new("description", "at most 500 characters"));
        }
        if self.accounts.is_empty() {
            return Err(FieldError::new("account", "name at least one account"));
        }
        for a in &self.accounts {
            crate::AccountName::parse(a).map_err(|m| FieldError::new("account", m))?;
        }
        if self.regions.is_empty() {
            return Err(FieldError::new("region", "name at least one region"));
        }
        for r in &self.regions {
            let ok = r.len() <= 32
                && r.split('-').count() >= 3
                && r.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(FieldError::new(
                    "region",
                    format!(
                        "{:?} is not a region name (like eu-west-1)",
                        crate::clip(r, 40)
                    ),
                ));
            }
        }
        self.image_ref()?;
        if self.instance_types.is_empty() {
            return Err(FieldError::new(
                "instance_types",
                "allow at least one type (a name, or a pattern like t3.*)",
            ));
        }
        for t in &self.instance_types {
            if !valid_type_pattern(t) {
                return Err(FieldError::new(
                    "instance_types",
                    format!("{:?} is not a type name or pattern", crate::clip(t, 64)),
                ));
            }
        }
        if self.default_type.contains('*') || !valid_type_pattern(&self.default_type) {
            return Err(FieldError::new(
                "default_type",
                "name one instance type (no pattern)",
            ));
        }
        if !self.allows_type(&self.default_type) {
            return Err(FieldError::new(
                "default_type",
                format!(
                    "{} is not among the allowed types ({})",
                    self.default_type,
                    self.instance_types.join(", ")
                ),
            ));
        }
        for (field, ids, prefix) in [
            ("subnet_ids", &self.subnet_ids, "subnet-"),
            ("security_group_ids", &self.security_group_ids, "sg-"),
        ] {
            for id in ids {
                let hex = id.strip_prefix(prefix).unwrap_or("");
                if !(8..=17).contains(&hex.len()) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(FieldError::new(
                        field,
                        format!("{:?} is not a {prefix}… id", crate::clip(id, 40)),
                    ));
                }
            }
        }
        for (field, v) in [
            ("root_volume_gib", self.root_volume_gib),
            ("max_root_volume_gib", self.max_root_volume_gib),
        ] {
            if let Some(g) = v {
                if !VOLUME_GIB.contains(&g) {
                    return Err(FieldError::new(
                        field,
                        format!("{g} GiB is outside 1-16384"),
                    ));
                }
            }
        }
        if let (Some(d), Some(m)) = (self.root_volume_gib, self.max_root_volume_gib) {
            if d > m {
                return Err(FieldError::new(
                    "root_volume_gib",
                    format!("the default ({d} GiB) is above the maximum ({m} GiB)"),
                ));
            }
        }
        let login_ok = !self.login_user.is_empty()
            && self.login_user.len() <= 32
            && self
                .login_user
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
            && !self.login_user.starts_with('-');
        if !login_ok {
            return Err(FieldError::new(
                "login_user",
                "a login name like ubuntu or ec2-user (lowercase letters, digits, _ and -)",
            ));
        }
        for p in &self.packages {
            let ok = !p.is_empty()
                && p.len() <= 64
                && p.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
                })
                && p.starts_with(|c: char| c.is_ascii_alphanumeric());
            if !ok {
                return Err(FieldError::new(
                    "packages",
                    format!("{:?} is not a package name", crate::clip(p, 64)),
                ));
            }
        }
        for (field, v) in [
            ("default_ttl", self.default_ttl_ms),
            ("max_ttl", self.max_ttl_ms),
        ] {
            if v.is_some_and(|ms| ms <= 0) {
                return Err(FieldError::new(field, "a TTL must be positive"));
            }
        }
        if let Err((field, m)) = self.expiry_policy.validate() {
            return Err(FieldError::new(
                match field {
                    "warn" => "expiry_policy.warn",
                    "terminate_after" => "expiry_policy.terminate_after",
                    "max_actions_per_pass" => "expiry_policy.max_actions_per_pass",
                    _ => "expiry_policy",
                },
                m,
            ));
        }
        if let Err((field, m)) = self.idle_policy.validate() {
            return Err(FieldError::new(
                match field {
                    "cpu_below" => "idle_policy.cpu_below",
                    "for" => "idle_policy.for_ms",
                    "warn_before" => "idle_policy.warn_before_ms",
                    _ => "idle_policy",
                },
                m,
            ));
        }
        if let (Some(d), Some(m)) = (self.default_ttl_ms, self.max_ttl_ms) {
            if d > m {
                return Err(FieldError::new(
                    "default_ttl",
                    "the default TTL is above the maximum TTL",
                ));
            }
        }
        match (self.dns_zone.is_empty(), self.dns_name_pattern.is_empty()) {
            (true, true) => {}
            (false, true) => {
                return Err(FieldError::new(
                    "dns_name_pattern",
                    "a DNS zone needs a name pattern, like {{name}}.dev.example.com",
                ))
            }
            (true, false) => {
                return Err(FieldError::new(
                    "dns_zone",
                    "a name pattern needs the hosted zone it belongs to",
                ))
            }
            (false, false) => {
                if !self.dns_name_pattern.contains("{{name}}") {
                    return Err(FieldError::new(
                        "dns_name_pattern",
                        "the pattern must contain {{name}}, or every server gets one name",
                    ));
                }
                let sample = render_template(&self.dns_name_pattern, &Vars::sample(), false)
                    .map_err(|m| FieldError::new("dns_name_pattern", m))?;
                if !valid_dns_name(&sample) {
                    return Err(FieldError::new(
                        "dns_name_pattern",
                        format!("{sample:?} is not a DNS name"),
                    ));
                }
            }
        }
        if self.tags.len() > MAX_TAGS {
            return Err(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
        }
        for (k, v) in &self.tags {
            if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
                return Err(FieldError::new(
                    "tags",
                    "tag keys take 1-128 characters, values up to 256",
                ));
            }
            if RESERVED_TAG_PREFIXES
                .iter()
                .any(|p| k.to_ascii_lowercase().starts_with(p))
                || k == "Name"
            {
                return Err(FieldError::new(
                    "tags",
                    format!("{k:?} is written by skyhold (or AWS) itself"),
                ));
            }
        }
        if self.user_data.len() > 16 * 1024 {
            return Err(FieldError::new(
                "user_data",
                "at most 16 KiB (EC2 takes 16 KiB of user data)",
            ));
        }
        self.user_data_for(&Vars::sample(), &self.packages)
            .map_err(|e| FieldError::new("user_data", e.message))?;
        Ok(())
    }

    /// The user data of one instance: the template rendered with `vars`,
    /// and the ticked `packages` (each offered by the blueprint) as
    /// cloud-init `packages:`. A `#cloud-config` template gets the list
    /// appended; an empty one becomes a cloud-config; a script is sent with
    /// a cloud-config beside it as a MIME multipart document, which
    /// cloud-init reads as both.
    pub fn user_data_for(&self, vars: &Vars, packages: &[String]) -> Result<String, FieldError> {
        for p in packages {
            if !self.packages.contains(p) {
                return Err(FieldError::new(
                    "packages",
                    format!(
                        "{:?} is not offered by blueprint {} (offered: {})",
                        crate::clip(p, 64),
                        self.name,
                        if self.packages.is_empty() {
                            "none".to_owned()
                        } else {
                            self.packages.join(", ")
                        }
                    ),
                ));
            }
        }
        let body = render_template(&self.user_data, vars, true)
            .map_err(|m| FieldError::new("user_data", m))?;
        if packages.is_empty() {
            return Ok(body);
        }
        let list: String = packages.iter().map(|p| format!("  - {p}\n")).collect();
        let trimmed = body.trim_start();
        if trimmed.is_empty() {
            return Ok(format!("#cloud-config\npackages:\n{list}"));
        }
        if trimmed.starts_with("#cloud-config") {
            if body.lines().any(|l| l.starts_with("packages:")) {
                return Err(FieldError::new(
                    "user_data",
                    "the template has its own packages: key; list the packages in the blueprint instead",
                ));
            }
            let sep = if body.ends_with('\n') { "" } else { "\n" };
            return Ok(format!("{body}{sep}packages:\n{list}"));
        }
        let boundary = "==SKYHOLD-BOUNDARY==";
        Ok(format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n\
             --{boundary}\nContent-Type: text/cloud-config; charset=\"us-ascii\"\n\n\
             #cloud-config\npackages:\n{list}\n\
             --{boundary}\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\n\n\
             {body}\n--{boundary}--\n"
        ))
    }

    /// The DNS name of a server named `name` (`None` without a zone).
    pub fn fqdn(&self, vars: &Vars) -> Result<Option<String>, FieldError> {
        if self.dns_name_pattern.is_empty() {
            return Ok(None);
        }
        let v = Vars {
            fqdn: String::new(),
            ..vars.clone()
        };
        let name = render_template(&self.dns_name_pattern, &v, false)
            .map_err(|m| FieldError::new("dns_name_pattern", m))?
            .to_ascii_lowercase();
        if valid_dns_name(&name) {
            Ok(Some(name))
        } else {
            Err(FieldError::new(
                "name",
                format!("the server's DNS name would be {name:?}, which is not a DNS name"),
            ))
        }
    }
}

/// The variables of a template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars {
    pub name: String,
    pub owner: String,
    pub fqdn: String,
}

impl Vars {
    fn sample() -> Self {
        Vars {
            name: "web1".into(),
            owner: "ann".into(),
            fqdn: "web1.example.com".into(),
        }
    }
}

/// Whether `s` is a DNS name (labels of letters, digits and hyphens).
pub fn valid_dns_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Replaces `{{name}}`, `{{owner}}` and `{{fqdn}}` (spaces inside the
/// braces allowed). Any other `{{…}}` is an error, and so is an unclosed
/// one, so a typo never reaches a server. `{{fqdn}}` is allowed only when
/// `with_fqdn` (not in the DNS pattern itself). Deliberately not a
/// template engine: cloud-init has Jinja of its own (`## template: jinja`),
/// and everything but these three variables must pass through unchanged.
pub fn render_template(t: &str, vars: &Vars, with_fqdn: bool) -> Result<String, String> {
    let mut out = String::with_capacity(t.len());
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "an unclosed {{ in the template".to_owned())?;
        let var = after[..end].trim();
        let value = match var {
            "name" => &vars.name,
            "owner" => &vars.owner,
            "fqdn" if with_fqdn => &vars.fqdn,
            other => {
                return Err(format!(
                    "unknown variable {{{{{}}}}} (use {})",
                    crate::clip(other, 40),
                    if with_fqdn {
                        "{{name}}, {{owner}} or {{fqdn}}"
                    } else {
                        "{{name}} or {{owner}}"
                    }
                ))
            }
        };
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BlueprintSpec {
        BlueprintSpec {
            name: "dev-box".into(),
            description: String::new(),
            accounts: vec!["sandbox".into()],
            regions: vec!["us-east-1".into()],
            image: "ami-12c6146b".into(),
            instance_types: vec!["t3.*".into(), "m5.large".into()],
            default_type: "t3.small".into(),
            subnet_ids: vec![],
            security_group_ids: vec![],
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
            dns_zone: "dev.example.com".into(),
            dns_name_pattern: "{{name}}.dev.example.com".into(),
            tags: BTreeMap::from([("team".into(), "dev".into())]),
        }
    }

    fn field_of(s: &BlueprintSpec) -> String {
        s.validate().unwrap_err().field
    }

    #[test]
    fn a_good_spec_validates() {
        assert_eq!(spec().validate(), Ok(()));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Change = Box<dyn Fn(&mut BlueprintSpec)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "name",
                Box::new(|s: &mut BlueprintSpec| s.name = "a b".into()),
            ),
            (
                "name",
                Box::new(|s: &mut BlueprintSpec| s.name = "42".into()),
            ),
            (
                "account",
                Box::new(|s: &mut BlueprintSpec| s.accounts.clear()),
            ),
            (
                "region",
                Box::new(|s: &mut BlueprintSpec| s.regions = vec!["mars".into()]),
            ),
            (
                "image",
                Box::new(|s: &mut BlueprintSpec| s.image = "ubuntu".into()),
            ),
            (
                "image",
                Box::new(|s: &mut BlueprintSpec| s.image = "newest:".into()),
            ),
            (
                "instance_types",
                Box::new(|s: &mut BlueprintSpec| s.instance_types.clear()),
            ),
            (
                "instance_types",
                Box::new(|s: &mut BlueprintSpec| s.instance_types = vec!["t3 big".into()]),
            ),
            (
                "default_type",
                Box::new(|s: &mut BlueprintSpec| s.default_type = "c5.large".into()),
            ),
            (
                "default_type",
                Box::new(|s: &mut BlueprintSpec| s.default_type = "t3.*".into()),
            ),
            (
                "subnet_ids",
                Box::new(|s: &mut BlueprintSpec| s.subnet_ids = vec!["net-1".into()]),
            ),
            (
                "security_group_ids",
                Box::new(|s: &mut BlueprintSpec| s.security_group_ids = vec!["sg-x".into()]),
            ),
            (
                "root_volume_gib",
                Box::new(|s: &mut BlueprintSpec| s.root_volume_gib = Some(200)),
            ),
            (
                "max_root_volume_gib",
                Box::new(|s: &mut BlueprintSpec| s.max_root_volume_gib = Some(0)),
            ),
            (
                "login_user",
                Box::new(|s: &mut BlueprintSpec| s.login_user = "Root; rm".into()),
            ),
            (
                "packages",
                Box::new(|s: &mut BlueprintSpec| s.packages = vec!["r base".into()]),
            ),
            (
                "default_ttl",
                Box::new(|s: &mut BlueprintSpec| s.default_ttl_ms = Some(48 * 3_600_000)),
            ),
            (
                "max_ttl",
                Box::new(|s: &mut BlueprintSpec| s.max_ttl_ms = Some(0)),
            ),
            (
                "dns_name_pattern",
                Box::new(|s: &mut BlueprintSpec| s.dns_name_pattern.clear()),
            ),
            (
                "dns_zone",
                Box::new(|s: &mut BlueprintSpec| s.dns_zone.clear()),
            ),
            (
                "dns_name_pattern",
                Box::new(|s: &mut BlueprintSpec| s.dns_name_pattern = "web.example.com".into()),
            ),
            (
                "dns_name_pattern",
                Box::new(|s: &mut BlueprintSpec| s.dns_name_pattern = "{{name}}.{{fqdn}}".into()),
            ),
            (
                "dns_name_pattern",
                Box::new(|s: &mut BlueprintSpec| {
                    s.dns_name_pattern = "{{name}}_x.example.com".into()
                }),
            ),
            (
                "tags",
                Box::new(|s: &mut BlueprintSpec| {
                    s.tags.insert("skyhold:owner".into(), "x".into());
                }),
            ),
            (
                "tags",
                Box::new(|s: &mut BlueprintSpec| {
                    s.tags.insert("Name".into(), "x".into());
                }),
            ),
            (
                "user_data",
                Box::new(|s: &mut BlueprintSpec| s.user_data = "hello {{nmae}}".into()),
            ),
            (
                "user_data",
                Box::new(|s: &mut BlueprintSpec| s.user_data = "hello {{name".into()),
            ),
            (
                "user_data",
                Box::new(|s: &mut BlueprintSpec| {
                    s.user_data = "#cloud-config\npackages:\n  - vim\n".into()
                }),
            ),
        ];
        for (field, change) in cases {
            let mut s = spec();
            change(&mut s);
            assert_eq!(field_of(&s), field, "{s:?}");
        }
    }

    #[test]
    fn type_patterns_match_whole_names() {
        assert!(glob_match("t3.*", "t3.small"));
        assert!(!glob_match("t3.*", "t3a.small"));
        assert!(glob_match("*.large", "m5.large"));
        assert!(glob_match("m*.*xlarge", "m5.2xlarge"));
        assert!(!glob_match("m*.x*large", "m5.2xlarge"));
        assert!(!glob_match("m5.large", "m5.large2"));
        assert!(glob_match("*", ""));
        let s = spec();
        assert!(s.allows_type("t3.nano") && s.allows_type("m5.large"));
        assert!(!s.allows_type("m5.xlarge"));
    }

    #[test]
    fn templates_render_three_variables_and_nothing_else() {
        let v = Vars {
            name: "web1".into(),
            owner: "ann".into(),
            fqdn: "web1.dev.example.com".into(),
        };
        assert_eq!(
            render_template("{{ name }}/{{owner}}@{{fqdn}} {% raw %} ${HOME}", &v, true).unwrap(),
            "web1/ann@web1.dev.example.com {% raw %} ${HOME}"
        );
        assert!(render_template("{{fqdn}}", &v, false).is_err());
        assert!(render_template("{{x}}", &v, true)
            .unwrap_err()
            .contains("{{x}}"));
    }

    #[test]
    fn packages_become_cloud_init() {
        let s = spec();
        let v = Vars {
            name: "web1".into(),
            ..Default::default()
        };
        let ud = s.user_data_for(&v, &["r-base".into()]).unwrap();
        assert_eq!(ud, "#cloud-config\nhostname: web1\npackages:\n  - r-base\n");
        let mut empty = spec();
        empty.user_data.clear();
        assert_eq!(
            empty.user_data_for(&v, &["r-base".into()]).unwrap(),
            "#cloud-config\npackages:\n  - r-base\n"
        );
        assert_eq!(empty.user_data_for(&v, &[]).unwrap(), "");
        let mut script = spec();
        script.user_data = "#!/bin/sh\necho {{name}}\n".into();
        let mime = script.user_data_for(&v, &["r-base".into()]).unwrap();
        assert!(mime.starts_with("Content-Type: multipart/mixed"), "{mime}");
        assert!(mime.contains("text/cloud-config") && mime.contains("  - r-base"));
        assert!(mime.contains("text/x-shellscript") && mime.contains("echo web1"));
        let e = s.user_data_for(&v, &["emacs".into()]).unwrap_err();
        assert_eq!(e.field, "packages");
        assert!(e.message.contains("r-base"), "{e}");
    }

    #[test]
    fn dns_names_come_from_the_pattern() {
        let s = spec();
        let v = Vars {
            name: "Web1".into(),
            ..Default::default()
        };
        assert_eq!(s.fqdn(&v).unwrap().as_deref(), Some("web1.dev.example.com"));
        let bad = Vars {
            name: "web 1".into(),
            ..Default::default()
        };
        assert_eq!(s.fqdn(&bad).unwrap_err().field, "name");
        let mut none = spec();
        none.dns_zone.clear();
        none.dns_name_pattern.clear();
        assert_eq!(none.fqdn(&v).unwrap(), None);
    }

    #[test]
    fn images_are_amis_or_newest_patterns() {
        assert_eq!(
            ImageRef::parse("ami-0123456789abcdef0").unwrap(),
            ImageRef::Ami("ami-0123456789abcdef0".into())
        );
        assert_eq!(
            ImageRef::parse("newest:ubuntu-*").unwrap().to_string(),
            "newest:ubuntu-*"
        );
        assert!(ImageRef::parse("ami-xyz").is_err());
    }
}
