//! The search language: one line typed in the web UI's search box, sent as
//! the API's `q=` or given to the CLI. [`parse`] turns it into a validated
//! [`Search`]; the store turns that into SQL. Every error names the offending
//! token and its column.
//!
//! Grammar (informal; terms are separated by whitespace and all must match):
//!
//! ```text
//! search     = [ term { WS term } ]          at most 32 terms, 512 characters
//! term       = [ "-" ] body                  a leading "-" negates the term
//! body       = field-term | tag-term | age-term | stopped-term | time-term | word
//! field-term = FIELD ":" item { "," item }   any item matches; items may glob
//! FIELD      = "kind" | "account" | "region" | "state" | "type"
//!            | "owner" | "name" | "id"
//! tag-term   = "tag:" KEY [ "=" VALUE ]      KEY exact; VALUE may glob
//! age-term   = "age" CMP AMOUNT UNIT         age>7d   (AMOUNT: digits)
//! UNIT       = "s" | "m" | "h" | "d" | "w"
//! stopped-term = "stopped" CMP AMOUNT UNIT   stopped>30d: instances stopped
//!            | "stopped" CMP ( DATE | RFC3339 )  over 30 days ago; stopped<2026-01-01
//! time-term  = TIME CMP ( DATE | RFC3339 )   launched<2026-01-01
//!            | TIME ":" DATE                 launched:2026-01-05 (that day)
//! TIME       = "launched" | "created"        synonyms
//! CMP        = "<" | "<=" | ">" | ">="
//! DATE       = YYYY-MM-DD                    midnight UTC
//! word       = anything else                 case-insensitive substring
//! ```
//!
//! Lexical rules:
//! - Double quotes group text with spaces, anywhere in a term: `"web server"`,
//!   `tag:team="data eng"`, `name:"a b"`. Inside quotes `\"` is a quote and
//!   `\\` a backslash. Quoted characters are never syntax: `"-web"` is the
//!   word `-web`, `"state:x"` is a word, and `name:"a,b"` has one item.
//!   Globs (`*` any run, `?` one character) apply inside quotes too.
//! - Field names and the keywords are case-insensitive. A word whose prefix
//!   before `:` is not a field (`arn:aws:ec2:…`, `fe80::1`) is a plain word.
//! - Words, field values and tag values are lower-cased (matching is
//!   case-insensitive); tag keys are kept exactly, as AWS tag keys are
//!   case-sensitive.

use crate::{Millis, ResourceKind};
use std::fmt;

/// Most terms one search may have.
pub const MAX_TERMS: usize = 32;
/// Longest search text, in characters.
pub const MAX_CHARS: usize = 512;
/// AWS limits on tag keys and values, in characters.
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

const SECOND_MS: i64 = 1_000;
const DAY_MS: i64 = 86_400_000;
/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z: instants outside this
/// range have no RFC 3339 form, so they are rejected.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_800_000;

/// A parsed search: every term must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub terms: Vec<Term>,
}

/// One term, possibly negated (`-state:running`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negated: bool,
    pub kind: TermKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermKind {
    /// Free text, lower-cased: a case-insensitive substring of the name, id,
    /// IPs, DNS names or tag values.
    Word(String),
    /// `FIELD:VALUE[,VALUE…]`: the field matches any of the patterns.
    Field { field: Field, values: Vec<Pattern> },
    /// `tag:KEY` (key present) or `tag:KEY=VALUE` (value matches).
    Tag { key: String, value: Option<Pattern> },
    /// creation time compared with a fixed instant (age terms are converted using `now_ms` passed to parse)
    Created { op: Cmp, at_ms: Millis },
    /// Created within `[from_ms, to_ms)` (`launched:2026-01-05`).
    CreatedOn { from_ms: Millis, to_ms: Millis },
    /// A stopped instance whose stop time compares with a fixed instant
    /// (`stopped>30d` becomes `stopped_at < now-30d`).
    Stopped { op: Cmp, at_ms: Millis },
    /// `is:orphan`: no owner and no grant on the resource itself.
    Orphan,
}

/// The columns a field term can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Kind,
    Account,
    Region,
    State,
    Type,
    Owner,
    Name,
    /// The provider's id (`i-0abc…`).
    Id,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::Kind,
        Field::Account,
        Field::Region,
        Field::State,
        Field::Type,
        Field::Owner,
        Field::Name,
        Field::Id,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Kind => "kind",
            Field::Account => "account",
            Field::Region => "region",
            Field::State => "state",
            Field::Type => "type",
            Field::Owner => "owner",
            Field::Name => "name",
            Field::Id => "id",
        }
    }

    /// The field named `s` (lower case, as written in a search).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison between a resource's creation time and an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn as_str(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "<" => Some(Cmp::Lt),
            "<=" => Some(Cmp::Le),
            ">" => Some(Cmp::Gt),
            ">=" => Some(Cmp::Ge),
            _ => None,
        }
    }

    /// `left OP right`.
    pub fn holds(self, left: i64, right: i64) -> bool {
        match self {
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
        }
    }

    /// The comparison with its sides swapped: an older age is an earlier
    /// creation time, so `age>7d` becomes `created < now-7d`.
    fn flipped(self) -> Self {
        match self {
            Cmp::Lt => Cmp::Gt,
            Cmp::Le => Cmp::Ge,
            Cmp::Gt => Cmp::Lt,
            Cmp::Ge => Cmp::Le,
        }
    }
}

/// A non-empty, lower-cased value that may contain the globs `*` (any run of
/// characters) and `?` (exactly one). It always matches case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern(String);

impl Pattern {
    /// Lower-cases `s`; an empty value is rejected.
    pub fn new(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty value".to_owned());
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_glob(&self) -> bool {
        self.0.contains(['*', '?'])
    }

    /// The pattern for SQL `LIKE … ESCAPE '\'`: `%`, `_` and `\` are escaped
    /// with `\`, then `*` becomes `%` and `?` becomes `_`. Compare it with a
    /// lower-cased column.
    pub fn to_sql_like(&self) -> String {
        let mut out = String::with_capacity(self.0.len() + 4);
        for c in self.0.chars() {
            match c {
                '%' | '_' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                '*' => out.push('%'),
                '?' => out.push('_'),
                _ => out.push(c),
            }
        }
        out
    }

    /// Whether the whole of `s` matches, ignoring case.
    pub fn matches(&self, s: &str) -> bool {
        let pattern: Vec<char> = self.0.chars().collect();
        let text: Vec<char> = s.to_lowercase().chars().collect();
        glob_match(&pattern, &text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Iterative glob matching: on a mismatch, retry from the most recent `*`
/// with it swallowing one more character. O(pattern × text) at worst.
fn glob_match(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // (pattern index just after the last '*', text index it resumes from)
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi).copied() {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Why a search could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchError {
    /// The offending token as typed (from its start, quotes included).
    pub token: String,
    /// 1-based character column where the token starts.
    pub position: usize,
    pub message: String,
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at column {}, '{}': {}",
            self.position, self.token, self.message
        )
    }
}

impl std::error::Error for SearchError {}

impl Search {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The free words that must match (negated words are left out).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().filter_map(|t| match &t.kind {
            TermKind::Word(w) if !t.negated => Some(w.as_str()),
            _ => None,
        })
    }
}

/// Parses a search. `now_ms` is the instant `age` terms count back from.
pub fn parse(input: &str, now_ms: Millis) -> Result<Search, SearchError> {
    if let Some((byte, _)) = input.char_indices().nth(MAX_CHARS) {
        let rest: String = input[byte..].chars().take(16).collect();
        return Err(SearchError {
            token: rest,
            position: MAX_CHARS + 1,
            message: format!("search is longer than {MAX_CHARS} characters"),
        });
    }
    // Control characters (a NUL, an escape) have no meaning in a search and
    // would reach the database; whitespace ones just separate terms.
    if let Some((col, c)) = input
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !c.is_whitespace())
    {
        return Err(SearchError {
            token: c.escape_debug().to_string(),
            position: col + 1,
            message: "control characters are not allowed in a search".into(),
        });
    }
    let tokens = tokenize(input)?;
    if let Some(extra) = tokens.get(MAX_TERMS) {
        return Err(extra.error(format!("too many terms (at most {MAX_TERMS})")));
    }
    let terms = tokens
        .iter()
        .map(|t| parse_term(t, now_ms))
        .collect::<Result<_, _>>()?;
    Ok(Search { terms })
}

// ---------------------------------------------------------------------------
// Lexing

/// One character of a token, and whether it was inside double quotes.
/// Quoted characters are never syntax.
#[derive(Debug, Clone, Copy)]
struct Ch {
    c: char,
    quoted: bool,
}

impl Ch {
    /// This character, unquoted.
    fn is(self, c: char) -> bool {
        !self.quoted && self.c == c
    }
}

/// A whitespace-separated token with its quotes resolved.
struct Token<'a> {
    /// 1-based character column of its first character.
    column: usize,
    /// The token as typed.
    source: &'a str,
    chars: Vec<Ch>,
}

impl Token<'_> {
    fn error(&self, message: impl Into<String>) -> SearchError {
        SearchError {
            token: self.source.to_owned(),
            position: self.column,
            message: message.into(),
        }
    }
}

fn tokenize(input: &str) -> Result<Vec<Token<'_>>, SearchError> {
    // Indexing by character keeps columns in characters, not bytes.
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map_or(input.len(), |&(b, _)| b);
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut out = Vec::new();
        while i < chars.len() && !chars[i].1.is_whitespace() {
            if chars[i].1 != '"' {
                out.push(Ch {
                    c: chars[i].1,
                    quoted: false,
                });
                i += 1;
                continue;
            }
            let quote = i;
            i += 1;
            loop {
                match chars.get(i).map(|&(_, c)| c) {
                    None => {
                        return Err(SearchError {
                            token: input[byte_at(quote)..].to_owned(),
                            position: quote + 1,
                            message: "unterminated quote (add a closing \")".to_owned(),
                        });
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') if matches!(chars.get(i + 1), Some((_, '"' | '\\'))) => {
                        out.push(Ch {
                            c: chars[i + 1].1,
                            quoted: true,
                        });
                        i += 2;
                    }
                    Some(c) => {
                        out.push(Ch { c, quoted: true });
                        i += 1;
                    }
                }
            }
        }
        tokens.push(Token {
            column: start + 1,
            source: &input[byte_at(start)..byte_at(i)],
            chars: out,
        });
    }
    Ok(tokens)
}

fn text(chars: &[Ch]) -> String {
    chars.iter().map(|ch| ch.c).collect()
}

// ---------------------------------------------------------------------------
// Parsing

/// What a term body is, decided by its unquoted leading letters and the
/// character after them.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    Word,
    Field(Field),
    Tag,
    Age,
    Stopped,
    Time,
    /// `is:WHAT`.
    Is,
    /// A field or `tag` followed by an operator other than ':' (`state=x`).
    MisusedField,
}

/// Characters that can start a comparison operator (plus ':').
fn is_operator(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '!' | '~')
}

/// The shape of a term body and the length of its keyword.
fn shape(body: &[Ch]) -> (Shape, usize) {
    let len = body
        .iter()
        .take_while(|ch| !ch.quoted && ch.c.is_ascii_alphabetic())
        .count();
    let head = text(&body[..len]).to_ascii_lowercase();
    let Some(next) = body.get(len).filter(|ch| !ch.quoted).map(|ch| ch.c) else {
        return (Shape::Word, len);
    };
    let shape = match (head.as_str(), Field::parse(&head)) {
        ("tag", _) if next == ':' => Shape::Tag,
        (_, Some(field)) if next == ':' => Shape::Field(field),
        ("tag", _) | (_, Some(_)) if is_operator(next) => Shape::MisusedField,
        ("age", _) if next == ':' || is_operator(next) => Shape::Age,
        ("stopped", _) if next == ':' || is_operator(next) => Shape::Stopped,
        ("launched" | "created", _) if next == ':' || is_operator(next) => Shape::Time,
        ("is", _) if next == ':' => Shape::Is,
        _ => Shape::Word,
    };
    (shape, len)
}

fn parse_term(tok: &Token<'_>, now_ms: Millis) -> Result<Term, SearchError> {
    let mut body = &tok.chars[..];
    let negated = body.first().is_some_and(|ch| ch.is('-'));
    if negated {
        body = &body[1..];
        if body.is_empty() {
            return Err(
                tok.error("'-' must be followed by a term to exclude, as in -state:running")
            );
        }
    }
    let (shape, head_len) = shape(body);
    let kind = match shape {
        Shape::Word => {
            let w = text(body).to_lowercase();
            if w.is_empty() {
                return Err(tok.error("empty quoted word"));
            }
            TermKind::Word(w)
        }
        Shape::Field(field) => parse_field(tok, field, &body[head_len + 1..])?,
        Shape::Tag => parse_tag(tok, &body[head_len + 1..])?,
        Shape::Age => parse_age(tok, &body[head_len..], now_ms)?,
        Shape::Stopped => parse_stopped(tok, &body[head_len..], now_ms)?,
        Shape::Time => parse_time(tok, &text(&body[..head_len]), &body[head_len..])?,
        Shape::Is => match text(&body[head_len + 1..]).to_ascii_lowercase().as_str() {
            "orphan" | "orphaned" => TermKind::Orphan,
            _ => return Err(tok.error("unknown is: term (write is:orphan)")),
        },
        Shape::MisusedField => {
            let head = text(&body[..head_len]).to_ascii_lowercase();
            let usage = if head == "tag" {
                "tag:KEY or tag:KEY=VALUE".to_owned()
            } else {
                format!("{head}:VALUE")
            };
            return Err(tok.error(format!(
                "unknown operator '{}' after '{head}' (write {usage})",
                body[head_len].c
            )));
        }
    };
    Ok(Term { negated, kind })
}

fn parse_field(tok: &Token<'_>, field: Field, value: &[Ch]) -> Result<TermKind, SearchError> {
    let name = field.as_str();
    if value.is_empty() {
        return Err(tok.error(format!(
            "empty value (write {name}:VALUE; '*' and '?' are globs, ',' separates alternatives)"
        )));
    }
    let mut values = Vec::new();
    for item in value.split(|ch| ch.is(',')) {
        let item = text(item);
        let pattern = Pattern::new(&item)
            .map_err(|_| tok.error(format!("empty item in the comma list of '{name}:'")))?;
        if field == Field::Kind
            && !pattern.is_glob()
            && ResourceKind::parse(pattern.as_str()).is_none()
        {
            let known: Vec<&str> = ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(tok.error(format!(
                "unknown kind '{item}'; expected one of {}",
                known.join(", ")
            )));
        }
        values.push(pattern);
    }
    Ok(TermKind::Field { field, values })
}

fn parse_tag(tok: &Token<'_>, rest: &[Ch]) -> Result<TermKind, SearchError> {
    let (key, value) = match rest.iter().position(|ch| ch.is('=')) {
        Some(eq) => (&rest[..eq], Some(&rest[eq + 1..])),
        None => (rest, None),
    };
    if key.is_empty() {
        return Err(tok.error("missing tag key (write tag:KEY or tag:KEY=VALUE)"));
    }
    if key.len() > MAX_TAG_KEY {
        return Err(tok.error(format!("tag key longer than {MAX_TAG_KEY} characters")));
    }
    let value = match value {
        None => None,
        Some([]) => {
            return Err(
                tok.error("empty tag value (write tag:KEY=VALUE, or tag:KEY for any value)")
            );
        }
        Some(v) if v.len() > MAX_TAG_VALUE => {
            return Err(tok.error(format!("tag value longer than {MAX_TAG_VALUE} characters")));
        }
        Some(v) => Some(Pattern::new(&text(v)).map_err(|m| tok.error(m))?),
    };
    Ok(TermKind::Tag {
        key: text(key),
        value,
    })
}

/// Splits `rest` (starting at the operator) into operator and value text.
fn split_operator(rest: &[Ch]) -> (String, String) {
    let len = rest
        .iter()
        .take_while(|ch| !ch.quoted && (ch.c == ':' || is_operator(ch.c)))
        .count();
    (text(&rest[..len]), text(&rest[len..]))
}

fn parse_age(tok: &Token<'_>, rest: &[Ch], now_ms: Millis) -> Result<TermKind, SearchError> {
    let (op, value) = split_operator(rest);
    let op = Cmp::parse(&op).ok_or_else(|| {
        tok.error(format!(
            "unknown operator '{op}' for age (use <, <=, > or >=, as in age>7d)"
        ))
    })?;
    let age = parse_duration(&value).map_err(|m| tok.error(m))?;
    let at_ms = now_ms
        .checked_sub(age)
        .filter(|at| (MIN_MS..MAX_MS).contains(at))
        .ok_or_else(|| tok.error(format!("duration '{value}' reaches before the year 0")))?;
    Ok(TermKind::Created {
        op: op.flipped(),
        at_ms,
    })
}

/// `8h` from milliseconds: the largest unit that divides it (the inverse
/// of [`parse_duration`] for whole seconds).
pub fn format_duration(ms: i64) -> String {
    for (unit, size) in [
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{}s", ms / 1000)
}

/// `7d` → milliseconds. Integer amounts only; units s, m, h, d, w. Also
/// the TTLs of blueprints and launches.
pub fn parse_duration(v: &str) -> Result<i64, String> {
    if v.is_empty() {
        return Err("missing duration (e.g. age>7d; units s, m, h, d or w)".to_owned());
    }
    // ASCII digits are one byte each, so the count is also a byte offset.
    let digits = v.chars().take_while(char::is_ascii_digit).count();
    let (amount, unit) = v.split_at(digits);
    if amount.is_empty() {
        return Err(format!(
            "expected a whole number and a unit, like 7d, not '{v}'"
        ));
    }
    let unit_ms = match unit {
        "s" => SECOND_MS,
        "m" => 60 * SECOND_MS,
        "h" => 3_600 * SECOND_MS,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        "" => {
            return Err(format!(
                "missing duration unit after '{amount}' (use s, m, h, d or w)"
            ))
        }
        _ => {
            return Err(format!(
                "unknown duration unit '{unit}' (use s, m, h, d or w)"
            ))
        }
    };
    amount
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .ok_or_else(|| format!("duration '{v}' is too large"))
}

/// `stopped>30d` (stopped more than 30 days ago) or `stopped<2026-01-01`
/// (stopped before that instant).
fn parse_stopped(tok: &Token<'_>, rest: &[Ch], now_ms: Millis) -> Result<TermKind, SearchError> {
    let (op_text, value) = split_operator(rest);
    if Cmp::parse(&op_text).is_none() {
        return Err(tok.error(format!(
            "unknown operator '{op_text}' for stopped (use <, <=, > or >=, as in stopped>30d)"
        )));
    }
    let kind = if value.contains('-') {
        parse_time(tok, "stopped", rest)?
    } else {
        parse_age(tok, rest, now_ms)?
    };
    match kind {
        TermKind::Created { op, at_ms } => Ok(TermKind::Stopped { op, at_ms }),
        _ => Err(tok.error("write stopped>30d or stopped<2026-01-01")),
    }
}

fn parse_time(tok: &Token<'_>, keyword: &str, rest: &[Ch]) -> Result<TermKind, SearchError> {
    let keyword = keyword.to_ascii_lowercase();
    let (op, value) = split_operator(rest);
    if op == ":" {
        let from_ms = parse_day(&value).ok_or_else(|| {
            tok.error(format!(
                "'{keyword}:' takes a date like 2026-01-05, not '{value}' (compare times with <, <=, > or >=)"
            ))
        })?;
        return Ok(TermKind::CreatedOn {
            from_ms,
            to_ms: from_ms + DAY_MS,
        });
    }
    let op = Cmp::parse(&op).ok_or_else(|| {
        tok.error(format!(
            "unknown operator '{op}' for {keyword} (use <, <=, >, >= or ':' for a whole day)"
        ))
    })?;
    let at_ms = parse_instant(&value).ok_or_else(|| {
        tok.error(format!(
            "'{value}' is not a date (2026-01-31) or an RFC 3339 time (2026-01-31T12:00:00Z)"
        ))
    })?;
    Ok(TermKind::Created { op, at_ms })
}

/// `YYYY-MM-DD` (exactly) → midnight UTC.
fn parse_day(v: &str) -> Option<Millis> {
    let b = v.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return None;
    }
    let day = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

/// A date (midnight UTC) or an RFC 3339 time.
fn parse_instant(v: &str) -> Option<Millis> {
    parse_day(v).or_else(|| {
        let t = chrono::DateTime::parse_from_rfc3339(v)
            .ok()?
            .timestamp_millis();
        (MIN_MS..MAX_MS).contains(&t).then_some(t)
    })
}

// ---------------------------------------------------------------------------
// Canonical text form

/// Renders `ms` as a date when it is midnight UTC, else RFC 3339 in UTC with
/// milliseconds when they are not zero. Both forms parse back exactly.
fn format_instant(ms: Millis) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return ms.to_string();
    };
    if ms.rem_euclid(DAY_MS) == 0 {
        t.format("%Y-%m-%d").to_string()
    } else if ms.rem_euclid(SECOND_MS) == 0 {
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    } else {
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

/// Writes `s`, in double quotes (escaping `"` and `\`) when it is empty or
/// contains whitespace, a quote or one of `special`.
fn write_value(f: &mut fmt::Formatter<'_>, s: &str, special: &[char]) -> fmt::Result {
    let plain = !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || special.contains(&c));
    if plain {
        return f.write_str(s);
    }
    write_quoted(f, s)
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

impl fmt::Display for TermKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TermKind::Word(w) => {
                let unquoted: Vec<Ch> = w.chars().map(|c| Ch { c, quoted: false }).collect();
                // A word that would read as negation or as another kind of
                // term (`"state:x"`, `"age>1d"`) keeps its quotes.
                if w.starts_with('-') || shape(&unquoted).0 != Shape::Word {
                    write_quoted(f, w)
                } else {
                    write_value(f, w, &[])
                }
            }
            TermKind::Field { field, values } => {
                write!(f, "{field}:")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_value(f, v.as_str(), &[','])?;
                }
                Ok(())
            }
            TermKind::Tag { key, value } => {
                f.write_str("tag:")?;
                write_value(f, key, &['='])?;
                if let Some(v) = value {
                    f.write_str("=")?;
                    write_value(f, v.as_str(), &[])?;
                }
                Ok(())
            }
            TermKind::Created { op, at_ms } => {
                write!(f, "launched{}{}", op.as_str(), format_instant(*at_ms))
            }
            TermKind::Stopped { op, at_ms } => {
                write!(f, "stopped{}{}", op.as_str(), format_instant(*at_ms))
            }
            TermKind::Orphan => f.write_str("is:orphan"),
            TermKind::CreatedOn { from_ms, to_ms } => {
                if to_ms - from_ms == DAY_MS && from_ms.rem_euclid(DAY_MS) == 0 {
                    write!(f, "launched:{}", format_instant(*from_ms))
                } else {
                    // Not a whole UTC day, so not something `parse` produces:
                    // render it readably; it will not parse back.
                    write!(
                        f,
                        "launched:{}..{}",
                        format_instant(*from_ms),
                        format_instant(*to_ms)
                    )
                }
            }
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            f.write_str("-")?;
        }
        self.kind.fmt(f)
    }
}

/// The canonical text of a search: terms separated by one space. For any
/// `Search` returned by [`parse`], parsing this text gives an equal `Search`.
impl fmt::Display for Search {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            t.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-03-10T00:00:00Z.
    const NOW: Millis = 1_773_100_800_000;
    const H: i64 = 3_600_000;

    fn p(s: &str) -> Search {
        parse(s, NOW).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn one(s: &str) -> Term {
        let mut q = p(s);
        assert_eq!(q.terms.len(), 1, "{s:?} → {q:?}");
        q.terms.remove(0)
    }

    fn kind(s: &str) -> TermKind {
        let t = one(s);
        assert!(!t.negated, "{s:?} negated");
        t.kind
    }

    fn err(s: &str) -> SearchError {
        match parse(s, NOW) {
            Ok(q) => panic!("{s:?} accepted as {q:?}"),
            Err(e) => e,
        }
    }

    /// Asserts the error's token and column (and that the message is not empty).
    fn err_at(s: &str, token: &str, position: usize) -> SearchError {
        let e = err(s);
        assert_eq!(
            (e.token.as_str(), e.position),
            (token, position),
            "{s:?}: {e}"
        );
        assert!(!e.message.is_empty());
        e
    }

    fn pat(s: &str) -> Pattern {
        Pattern::new(s).unwrap()
    }

    fn field(field: Field, values: &[&str]) -> TermKind {
        TermKind::Field {
            field,
            values: values.iter().map(|v| pat(v)).collect(),
        }
    }

    fn word(w: &str) -> TermKind {
        TermKind::Word(w.to_owned())
    }

    fn ms(rfc3339: &str) -> Millis {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn empty_input_is_an_empty_search() {
        for s in ["", "   ", "\t\n "] {
            let q = p(s);
            assert!(q.is_empty());
            assert_eq!(q, Search::default());
            assert_eq!(q.to_string(), "");
        }
    }

    #[test]
    fn words_are_lower_cased_and_all_kept() {
        let q = p("  Web   DB-1\t10.0.1 ");
        assert_eq!(
            q.terms.iter().map(|t| t.kind.clone()).collect::<Vec<_>>(),
            vec![word("web"), word("db-1"), word("10.0.1")]
        );
        assert!(q.terms.iter().all(|t| !t.negated));
        assert_eq!(q.words().collect::<Vec<_>>(), ["web", "db-1", "10.0.1"]);
    }

    #[test]
    fn words_iterator_skips_negated_words_and_other_terms() {
        let q = p("web -db state:running tag:x api");
        assert_eq!(q.words().collect::<Vec<_>>(), ["web", "api"]);
    }

    #[test]
    fn arns_ipv6_and_unknown_prefixes_are_words() {
        for (input, expected) in [
            (
                "arn:aws:ec2:us-east-1:123456789012:instance/i-0ABC",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc",
            ),
            ("fe80::1", "fe80::1"),
            ("2001:DB8::ff00:42:8329", "2001:db8::ff00:42:8329"),
            ("::1", "::1"),
            ("stateful:x", "stateful:x"),
            ("tag2:x", "tag2:x"),
            ("age-old", "age-old"),
            ("ageing", "ageing"),
            ("created-by-terraform", "created-by-terraform"),
            ("launched", "launched"),
            ("state", "state"),
            ("a=b", "a=b"),
            ("50%", "50%"),
        ] {
            assert_eq!(kind(input), word(expected), "{input}");
        }
    }

    #[test]
    fn every_field_parses_and_is_lower_cased() {
        for f in Field::ALL {
            let value = if f == Field::Kind {
                "Instance"
            } else {
                "Some-Value"
            };
            let expected = if f == Field::Kind {
                "instance"
            } else {
                "some-value"
            };
            assert_eq!(kind(&format!("{f}:{value}")), field(f, &[expected]), "{f}");
            assert_eq!(Field::parse(f.as_str()), Some(f));
        }
        assert_eq!(Field::parse("tag"), None);
    }

    #[test]
    fn field_names_are_case_insensitive() {
        assert_eq!(kind("State:Running"), field(Field::State, &["running"]));
        assert_eq!(
            kind("REGION:eu-west-1"),
            field(Field::Region, &["eu-west-1"])
        );
    }

    #[test]
    fn field_values_keep_later_colons() {
        assert_eq!(kind("name:a:b"), field(Field::Name, &["a:b"]));
        assert_eq!(kind("id:i-0ABC"), field(Field::Id, &["i-0abc"]));
    }

    #[test]
    fn comma_lists_give_several_patterns() {
        assert_eq!(
            kind("state:running,Stopped"),
            field(Field::State, &["running", "stopped"])
        );
        assert_eq!(
            kind("kind:instance,volume,*group"),
            field(Field::Kind, &["instance", "volume", "*group"])
        );
        // A quoted comma is part of the value.
        assert_eq!(kind(r#"name:"a,b",c"#), field(Field::Name, &["a,b", "c"]));
    }

    #[test]
    fn kinds_are_validated_unless_globbed() {
        for k in ResourceKind::ALL {
            assert_eq!(
                kind(&format!("kind:{k}")),
                field(Field::Kind, &[k.as_str()])
            );
        }
        assert_eq!(
            kind("kind:SECURITY_GROUP"),
            field(Field::Kind, &["security_group"])
        );
        assert_eq!(kind("kind:*group"), field(Field::Kind, &["*group"]));
        assert_eq!(kind("kind:vol?me"), field(Field::Kind, &["vol?me"]));
    }

    #[test]
    fn tag_terms() {
        assert_eq!(
            kind("tag:Owner"),
            TermKind::Tag {
                key: "Owner".into(),
                value: None
            }
        );
        assert_eq!(
            kind("tag:Env=Prod*"),
            TermKind::Tag {
                key: "Env".into(),
                value: Some(pat("prod*"))
            }
        );
        // Keys may hold ':'; the value starts after the first '='.
        assert_eq!(
            kind("tag:aws:cloudformation:stack-name=a=b"),
            TermKind::Tag {
                key: "aws:cloudformation:stack-name".into(),
                value: Some(pat("a=b"))
            }
        );
        // Quoted key with a space and an '='; a glob in a key is literal text.
        assert_eq!(
            kind(r#"tag:"Cost Center=x"="R&D""#),
            TermKind::Tag {
                key: "Cost Center=x".into(),
                value: Some(pat("r&d"))
            }
        );
        assert_eq!(
            kind("TAG:k*"),
            TermKind::Tag {
                key: "k*".into(),
                value: None
            }
        );
        // Tag values take commas literally.
        assert_eq!(
            kind("tag:k=a,b"),
            TermKind::Tag {
                key: "k".into(),
                value: Some(pat("a,b"))
            }
        );
    }

    #[test]
    fn quotes_group_text_with_spaces() {
        assert_eq!(kind(r#""Web Server""#), word("web server"));
        assert_eq!(
            kind(r#"tag:team="Data Eng""#),
            TermKind::Tag {
                key: "team".into(),
                value: Some(pat("data eng"))
            }
        );
        assert_eq!(kind(r#"name:"a b""#), field(Field::Name, &["a b"]));
        // Quotes may sit anywhere in a token and join with unquoted text.
        assert_eq!(kind(r#"ab"c d"e"#), word("abc de"));
        assert_eq!(kind(r#"name:web" "01"#), field(Field::Name, &["web 01"]));
        // Escapes inside quotes.
        assert_eq!(kind(r#""say \"hi\" \\ \x""#), word(r#"say "hi" \ \x"#));
        // Outside quotes a backslash is plain text.
        assert_eq!(kind(r"c:\temp"), word(r"c:\temp"));
        // Two quoted words.
        let q = p(r#""a b" "c d""#);
        assert_eq!(q.words().collect::<Vec<_>>(), ["a b", "c d"]);
    }

    #[test]
    fn quoted_text_is_never_syntax() {
        assert_eq!(
            one(r#""-web""#),
            Term {
                negated: false,
                kind: word("-web")
            }
        );
        assert_eq!(kind(r#""state:running""#), word("state:running"));
        assert_eq!(kind(r#""state":running"#), word("state:running"));
        assert_eq!(kind(r#""age>7d""#), word("age>7d"));
        assert_eq!(kind(r#"tag":"x"#), word("tag:x"));
    }

    #[test]
    fn negation_of_each_term_kind() {
        let cases = [
            ("-web", word("web")),
            (r#"-"web server""#, word("web server")),
            ("-state:running", field(Field::State, &["running"])),
            ("-kind:volume", field(Field::Kind, &["volume"])),
            (
                "-tag:owner",
                TermKind::Tag {
                    key: "owner".into(),
                    value: None,
                },
            ),
            (
                "-tag:env=prod",
                TermKind::Tag {
                    key: "env".into(),
                    value: Some(pat("prod")),
                },
            ),
            (
                "-age>7d",
                TermKind::Created {
                    op: Cmp::Lt,
                    at_ms: NOW - 7 * 24 * H,
                },
            ),
            (
                "-launched<2026-01-01",
                TermKind::Created {
                    op: Cmp::Lt,
                    at_ms: ms("2026-01-01T00:00:00Z"),
                },
            ),
            (
                "-created:2026-01-05",
                TermKind::CreatedOn {
                    from_ms: ms("2026-01-05T00:00:00Z"),
                    to_ms: ms("2026-01-06T00:00:00Z"),
                },
            ),
            // Only one '-' is negation; the rest is the word.
            ("--web", word("-web")),
        ];
        for (input, expected) in cases {
            assert_eq!(
                one(input),
                Term {
                    negated: true,
                    kind: expected
                },
                "{input}"
            );
        }
        // A '-' inside a term is text.
        assert_eq!(kind("web-1"), word("web-1"));
    }

    #[test]
    fn age_terms_become_creation_instants() {
        for (input, op, at_ms) in [
            ("age>7d", Cmp::Lt, NOW - 7 * 24 * H),
            ("age<12h", Cmp::Gt, NOW - 12 * H),
            ("age>=30m", Cmp::Le, NOW - 30 * 60_000),
            ("age<=2w", Cmp::Ge, NOW - 14 * 24 * H),
            ("age>45s", Cmp::Lt, NOW - 45_000),
            ("AGE>0d", Cmp::Lt, NOW),
        ] {
            assert_eq!(kind(input), TermKind::Created { op, at_ms }, "{input}");
        }
    }

    #[test]
    fn stopped_terms_compare_the_stop_time() {
        for (input, op, at_ms) in [
            ("stopped>30d", Cmp::Lt, NOW - 30 * 24 * H),
            ("stopped<=1h", Cmp::Ge, NOW - H),
            ("stopped<2026-01-01", Cmp::Lt, ms("2026-01-01T00:00:00Z")),
        ] {
            assert_eq!(kind(input), TermKind::Stopped { op, at_ms }, "{input}");
        }
        // Without an operator it is a word; a bad operator or value is an error.
        assert_eq!(kind("stopped"), word("stopped"));
        for bad in ["stopped:3d", "stopped>", "stopped>3x", "stopped>2026-13-01"] {
            let e = parse(bad, NOW).expect_err(bad);
            assert_eq!((e.token.as_str(), e.position), (bad, 1), "{bad}");
        }
        let q = parse("-stopped>7d", NOW).expect("parses");
        assert_eq!(parse(&q.to_string(), NOW).expect("round trip"), q);
    }

    #[test]
    fn launched_and_created_terms() {
        let jan1 = ms("2026-01-01T00:00:00Z");
        for (input, op, at_ms) in [
            ("launched<2026-01-01", Cmp::Lt, jan1),
            ("launched<=2026-01-01", Cmp::Le, jan1),
            ("launched>2026-01-01", Cmp::Gt, jan1),
            ("created>=2026-01-01", Cmp::Ge, jan1),
            (
                "launched>=2026-03-01T12:00:00Z",
                Cmp::Ge,
                ms("2026-03-01T12:00:00Z"),
            ),
            (
                "Created<2026-03-01T12:00:00.250+02:00",
                Cmp::Lt,
                ms("2026-03-01T10:00:00.250Z"),
            ),
        ] {
            assert_eq!(kind(input), TermKind::Created { op, at_ms }, "{input}");
        }
        assert_eq!(
            kind("launched:2026-01-05"),
            TermKind::CreatedOn {
                from_ms: ms("2026-01-05T00:00:00Z"),
                to_ms: ms("2026-01-06T00:00:00Z"),
            }
        );
        assert_eq!(kind("created:2026-01-05"), kind("launched:2026-01-05"));
    }

    #[test]
    fn globs_match_whole_values() {
        let t3 = pat("t3.*");
        assert!(t3.is_glob());
        assert!(t3.matches("t3.micro") && t3.matches("T3.Large") && t3.matches("t3."));
        assert!(!t3.matches("t2.micro") && !t3.matches("xt3.micro"));

        let web = pat("web-?1");
        assert!(web.matches("web-a1") && web.matches("WEB-01"));
        assert!(!web.matches("web-1") && !web.matches("web-ab1") && !web.matches("web-a1x"));

        let exact = pat("Running");
        assert!(!exact.is_glob());
        assert!(exact.matches("running") && exact.matches("RUNNING"));
        assert!(!exact.matches("running2"));

        assert!(pat("*").matches("") && pat("*").matches("anything"));
        assert!(pat("a*b*c").matches("aXXbYYc") && pat("a*b*c").matches("abc"));
        assert!(!pat("a*b*c").matches("aXXbYY"));
        assert!(pat("*ab").matches("aaab") && !pat("*ab").matches("aaba"));
        assert!(pat("??").matches("éü") && !pat("??").matches("é"));
        assert!(pat("*.*").matches("t3.micro") && !pat("*.*").matches("t3micro"));

        // Parsed globs end up in the patterns unchanged.
        assert_eq!(kind("type:t3.*"), field(Field::Type, &["t3.*"]));
        assert_eq!(kind("name:web-?1"), field(Field::Name, &["web-?1"]));
        assert_eq!(kind(r#"name:"web *""#), field(Field::Name, &["web *"]));
    }

    #[test]
    fn sql_like_escapes_and_maps_globs() {
        assert_eq!(pat("50%_off*").to_sql_like(), r"50\%\_off%");
        assert_eq!(pat(r"a\b?").to_sql_like(), r"a\\b_");
        assert_eq!(pat("T3.*").to_sql_like(), "t3.%");
        assert_eq!(pat("plain").to_sql_like(), "plain");
    }

    #[test]
    fn patterns_reject_empty_values() {
        assert!(Pattern::new("").is_err());
        assert_eq!(pat("ABC").as_str(), "abc");
        assert_eq!(pat("ABC").to_string(), "abc");
    }

    #[test]
    fn cmp_helpers() {
        for c in [Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge] {
            assert_eq!(Cmp::parse(c.as_str()), Some(c));
            assert_eq!(c.flipped().flipped(), c);
        }
        assert!(Cmp::Lt.holds(1, 2) && !Cmp::Lt.holds(2, 2));
        assert!(Cmp::Le.holds(2, 2) && Cmp::Ge.holds(2, 2));
        assert!(Cmp::Gt.holds(3, 2) && !Cmp::Gt.holds(2, 2));
        assert_eq!(Cmp::parse("=="), None);
    }

    #[test]
    fn error_display_names_column_and_token() {
        let e = err("state:x age>7x");
        assert_eq!(
            e.to_string(),
            "at column 9, 'age>7x': unknown duration unit 'x' (use s, m, h, d or w)"
        );
        let e = err("web st age>7x");
        assert_eq!(
            e.to_string(),
            "at column 8, 'age>7x': unknown duration unit 'x' (use s, m, h, d or w)"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(e);
        assert!(boxed.to_string().contains("age>7x"));
    }

    #[test]
    fn unterminated_quote_points_at_the_quote() {
        err_at(r#"web name:"a b"#, r#""a b"#, 10);
        err_at(r#""open"#, r#""open"#, 1);
        err_at(r#"a "b c" "d"#, r#""d"#, 9);
        let e = err_at(r#"x"y"#, r#""y"#, 2);
        assert!(e.message.contains("unterminated quote"), "{e}");
        // An escaped quote does not close.
        err_at(r#""a\""#, r#""a\""#, 1);
    }

    #[test]
    fn empty_values_are_errors() {
        let e = err_at("web state:", "state:", 5);
        assert!(e.message.contains("empty value"), "{e}");
        err_at("-name:", "-name:", 1);
        err_at(r#"name:"""#, r#"name:"""#, 1);
        err_at("state:running,", "state:running,", 1);
        err_at("state:,x", "state:,x", 1);
        err_at("state:a,,b", "state:a,,b", 1);
        err_at(r#"a """#, r#""""#, 3);
        err_at("a - b", "-", 3);
    }

    #[test]
    fn unknown_kind_lists_the_known_ones() {
        let e = err_at("kind:instance,buckets", "kind:instance,buckets", 1);
        assert!(e.message.contains("'buckets'"), "{e}");
        for k in ResourceKind::ALL {
            assert!(e.message.contains(k.as_str()), "{e}");
        }
    }

    #[test]
    fn bad_durations() {
        err_at("x age>7x", "age>7x", 3);
        let e = err_at("age>7days", "age>7days", 1);
        assert!(e.message.contains("'days'"), "{e}");
        assert!(err_at("age>7", "age>7", 1)
            .message
            .contains("missing duration unit"));
        assert!(err_at("age>", "age>", 1)
            .message
            .contains("missing duration"));
        err_at("age>d", "age>d", 1);
        err_at("age>-7d", "age>-7d", 1);
        err_at("age>1.5d", "age>1.5d", 1);
        err_at("age>7D", "age>7D", 1);
        err_at("age>99999999999999999999d", "age>99999999999999999999d", 1);
        err_at("age>999999999999w", "age>999999999999w", 1);
        err_at("age>100000000w", "age>100000000w", 1);
    }

    #[test]
    fn bad_dates() {
        for bad in [
            "launched<2026-13-01",
            "launched<2026-02-30",
            "launched<yesterday",
            "launched<2026-1-5",
            "launched<",
            "created>=2026-03-01T25:00:00Z",
            "launched:2026-03-01T12:00:00Z",
            "launched:",
        ] {
            err_at(bad, bad, 1);
        }
        let e = err_at("web launched<2026-13-01", "launched<2026-13-01", 5);
        assert!(e.message.contains("'2026-13-01'"), "{e}");
    }

    #[test]
    fn bad_operators() {
        for (bad, op) in [
            ("age=7d", "'='"),
            ("age:7d", "':'"),
            ("age==7d", "'=='"),
            ("age<>7d", "'<>'"),
            ("age!=7d", "'!='"),
            ("launched~x", "'~'"),
            ("launched=2026-01-01", "'='"),
            ("created=>2026-01-01", "'=>'"),
            ("launched:>2026-01-01", "':>'"),
            ("state=running", "'='"),
            ("name~web", "'~'"),
            ("tag=x", "'='"),
        ] {
            let e = err_at(bad, bad, 1);
            assert!(e.message.contains(op), "{bad}: {e}");
        }
        err_at("web -age=7d", "-age=7d", 5);
    }

    #[test]
    fn bad_tags() {
        err_at("tag:", "tag:", 1);
        err_at("x tag:=x", "tag:=x", 3);
        err_at("-tag:", "-tag:", 1);
        err_at("tag:k=", "tag:k=", 1);
        err_at(r#"tag:"""#, r#"tag:"""#, 1);
        let long_key = format!("tag:{}", "k".repeat(129));
        err_at(&long_key, &long_key, 1);
        assert!(parse(&format!("tag:{}", "k".repeat(128)), NOW).is_ok());
        let long_value = format!("tag:k={}", "v".repeat(257));
        err_at(&long_value, &long_value, 1);
    }

    #[test]
    fn limits() {
        let ok = vec!["w"; MAX_TERMS].join(" ");
        assert_eq!(p(&ok).terms.len(), MAX_TERMS);
        let too_many = format!("{ok} extra");
        let e = err_at(&too_many, "extra", 2 * MAX_TERMS + 1);
        assert!(e.message.contains("too many terms"), "{e}");

        assert!(parse(&"x".repeat(MAX_CHARS), NOW).is_ok());
        let e = err(&"x".repeat(MAX_CHARS + 1));
        assert_eq!(e.position, MAX_CHARS + 1);
        assert!(e.message.contains("512"), "{e}");
        // The limit counts characters, not bytes.
        assert!(parse(&"é".repeat(MAX_CHARS), NOW).is_ok());
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        err_at("ééé state:", "state:", 5);
        err_at("日本 age>1y", "age>1y", 4);
    }

    #[test]
    fn display_is_canonical() {
        let q = p(
            r#"  -Web  STATE:Running,stopped tag:Team="Data Eng" age>7d created:2026-01-05 "a b""#,
        );
        assert_eq!(
            q.to_string(),
            r#"-web state:running,stopped tag:Team="data eng" launched<2026-03-03 launched:2026-01-05 "a b""#
        );
        assert_eq!(
            p("age<12h launched>=2026-03-01T12:00:00Z").to_string(),
            "launched>2026-03-09T12:00:00Z launched>=2026-03-01T12:00:00Z"
        );
    }

    #[test]
    fn display_round_trips() {
        let now = NOW + 123; // ages then carry milliseconds
        for input in [
            "",
            "web",
            "-web",
            r#""web server" -"db server""#,
            "arn:aws:ec2:us-east-1:123:instance/i-1 fe80::1",
            r#""-web" "--x" "state:running" "age>7d" "tag:x" "launched:2026-01-01""#,
            r#""say \"hi\"" "back\\slash" c:\temp "#,
            "kind:instance,volume,*group account:prod region:eu-* state:running,stopped",
            "type:t3.* owner:123 name:web-?1 id:i-0abc",
            r#"name:"a b","c,d",e"#,
            r#"-tag:owner tag:env=prod tag:"Cost Center"="R&D dept" tag:"a=b"=c=d"#,
            r#"tag:k="x \"y\"" tag:aws:cloudformation:stack-name=*"#,
            "age>7d age<12h age>=30m age<=2w -age>1s",
            "launched<2026-01-01 launched>=2026-03-01T12:00:00Z created:2026-01-05",
            "-launched:2026-01-05 launched<2026-03-01T12:00:00.250Z",
            "launched<1969-07-20T20:17:40Z launched>0001-01-01 launched<9999-12-31T23:59:59.999Z",
            "50%_off* \\ state:50%_off",
        ] {
            let first = parse(input, now).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let text = first.to_string();
            let again = parse(&text, now).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(first, again, "{input:?} → {text:?}");
            assert_eq!(text, again.to_string(), "not canonical: {text:?}");
        }
    }

    #[test]
    fn display_of_hand_built_terms() {
        let q = Search {
            terms: vec![
                Term {
                    negated: false,
                    kind: word("state:x"),
                },
                Term {
                    negated: true,
                    kind: TermKind::Field {
                        field: Field::Name,
                        values: vec![pat("a b"), pat("c")],
                    },
                },
            ],
        };
        assert_eq!(q.to_string(), r#""state:x" -name:"a b",c"#);
        assert_eq!(p(&q.to_string()), q);
    }

    #[test]
    fn control_characters_are_refused_with_their_column() {
        let e = parse("abc\u{0}def", 0).unwrap_err();
        assert_eq!(e.position, 4, "{e}");
        assert!(e.to_string().contains("control characters"), "{e}");
        assert!(parse("a\u{1b}[31m", 0).is_err());
        // Tabs and newlines only separate terms.
        assert_eq!(parse("web\tdb\nx", 0).unwrap().terms.len(), 3);
    }
}
