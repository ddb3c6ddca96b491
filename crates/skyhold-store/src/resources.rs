//! The inventory cache: reconciling a complete listing, paged queries, and
//! the per-(account, region, kind) sync status.

use crate::batch::{BatchWrite, NewEvent, NewRow, Rewrite};
use crate::{on_pool, ReadRow, Result, Store, StoreError};
use skyhold_core::query::CursorValue;
use skyhold_core::search::{Field, TermKind};
use skyhold_core::{
    AccountName, Cursor, Millis, ObservedResource, Resource, ResourceId, ResourceKind,
    ResourceQuery, SortKey,
};
use sqlx::{QueryBuilder, Row};
use std::collections::HashMap;

/// What one reconciliation wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyStats {
    /// Change events recorded (appeared, changed, disappeared, reappeared).
    pub events: u64,
    pub inserted: u64,
    pub updated: u64,
    pub tombstoned: u64,
    pub unchanged: u64,
}

impl ApplyStats {
    pub fn written(&self) -> u64 {
        self.inserted + self.updated + self.tombstoned
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Resource>,
    pub next_cursor: Option<Cursor>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SyncStatus {
    pub account: String,
    pub region: String,
    pub kind: String,
    pub last_attempt: Millis,
    pub last_success: Option<Millis>,
    pub duration_ms: i64,
    pub item_count: i64,
    pub last_error: Option<String>,
    /// When the job is next due (shared by every replica).
    pub next_due: Option<Millis>,
    /// The replica that ran the last attempt.
    pub holder: Option<String>,
    /// The class of the last error: throttled, denied, unreachable, other, store.
    pub error_kind: Option<String>,
    /// Attempts in a row that ended throttled (drives the backoff).
    pub throttled_in_row: i64,
    /// The replica running the job right now, if any (a live lease).
    pub running_on: Option<String>,
}

/// Columns the dashboard may group live resources by.
#[derive(Debug, Clone, Copy)]
pub enum CountBy {
    Kind,
    State,
    Account,
    Region,
    Type,
}

impl CountBy {
    fn column(self) -> &'static str {
        match self {
            CountBy::Kind => "kind",
            CountBy::State => "state",
            CountBy::Account => "account",
            CountBy::Region => "region",
            CountBy::Type => "rtype",
        }
    }
}

fn sort_column(k: SortKey) -> &'static str {
    match k {
        SortKey::Account => "r.account",
        SortKey::Region => "r.region",
        SortKey::Kind => "r.kind",
        SortKey::Name => "r.name",
        SortKey::ProviderId => "r.provider_id",
        SortKey::State => "r.state",
        SortKey::Type => "r.rtype",
        SortKey::PrivateIp => "r.private_ip",
        SortKey::PublicIp => "r.public_ip",
        SortKey::LaunchTime => "r.created_at",
        SortKey::Owner => "r.owner",
    }
}

/// Whether a state means the resource is gone although still listed
/// (terminated instances linger in EC2 listings for a while).
pub(crate) fn is_terminal(kind: ResourceKind, state: &str) -> bool {
    matches!(
        (kind, state),
        (ResourceKind::Instance, "terminated")
            | (ResourceKind::Volume, "deleted")
            | (ResourceKind::Image, "deregistered")
    )
}

/// The select list of a resource row (with its "last seen", which a live
/// row takes from its scope's last successful sync).
macro_rules! columns {
    () => {
        "SELECT r.id, r.account, r.region, r.kind, r.provider_id, r.name, r.state, r.rtype, \
         r.owner, r.private_ip, r.public_ip, r.created_at, r.size_gib, r.tags, r.attributes, r.first_seen, \
         CASE WHEN r.deleted_at IS NULL AND s.last_success IS NOT NULL AND s.last_success > r.last_seen \
              THEN s.last_success ELSE r.last_seen END AS seen, r.deleted_at"
    };
}

macro_rules! join_status {
    () => {
        " LEFT JOIN sync_status s ON s.account = r.account AND s.region = r.region AND s.kind = r.kind"
    };
}

/// Rewrites one resource row from observation `$o` (fingerprint `$fp`,
/// written at `$now`, tombstone `$deleted`): the one UPDATE that
/// `apply_listing` and a targeted refresh (`apply_observed`) share.
macro_rules! rewrite_row {
    ($exec:expr, $o:expr, $fp:expr, $now:expr, $deleted:expr, $id:expr) => {
        sqlx::query(
            "UPDATE resources SET name = $1, state = $2, rtype = $3, owner = $4, private_ip = $5, \
             public_ip = $6, created_at = $7, size_gib = $8, tags = $9, attributes = $10, \
             search = $11, fingerprint = $12, last_seen = $13, deleted_at = $14 WHERE id = $15",
        )
        .bind(&$o.name)
        .bind(&$o.state)
        .bind(&$o.rtype)
        .bind(&$o.owner)
        .bind(&$o.private_ip)
        .bind(&$o.public_ip)
        .bind($o.created_at.unwrap_or(0))
        .bind($o.size_gib)
        .bind(serde_json::to_string(&$o.tags).unwrap_or_default())
        .bind(serde_json::Value::Object($o.attributes.clone()).to_string())
        .bind($o.search_text())
        .bind($fp)
        .bind($now)
        .bind($deleted)
        .bind($id)
        .execute($exec)
    };
}
pub(crate) use rewrite_row;

pub(crate) const SELECT_RESOURCE: &str = concat!(columns!(), " FROM resources r", join_status!());

/// One row and its fingerprint (for a targeted refresh); binds the id.
pub(crate) const SELECT_RESOURCE_BY_ID_WITH_FINGERPRINT: &str = concat!(
    columns!(),
    ", r.fingerprint FROM resources r",
    join_status!(),
    " WHERE r.id = $1"
);

/// SQLite, few free-text matches: start from the FTS matches (CROSS JOIN
/// fixes the join order) and sort them. The MATCH text is the first bind.
const SELECT_RESOURCE_FROM_FTS: &str = concat!(
    columns!(),
    " FROM (SELECT rowid AS fid FROM resources_fts WHERE resources_fts MATCH "
);
const SELECT_RESOURCE_FROM_FTS_TAIL: &str =
    concat!(") f CROSS JOIN resources r ON r.id = f.fid", join_status!());

/// Up to this many free-text matches, SQLite starts from the FTS matches
/// and sorts them; beyond it, it walks the sort index and stops at the page
/// limit (few rows to read when matches are common).
const FTS_DRIVE_MAX: i64 = 2_000;

/// PostgreSQL, plain free text: how many name-index entries (which carry
/// `search`) a listing reads per row it wants before it gives up on filling
/// its page that way and probes how common the words are. Words matching
/// at least 2% of the rows walked fill the page (the probe's threshold,
/// 2,000 matches, is 2% of 100,000 rows); 5,050 entries for a page of 100
/// take about 1.5 ms.
const PG_INDEX_WALK_ENTRIES_PER_ROW: i64 = 50;

/// PostgreSQL, bounded counts: how many live rows a count reads in name
/// order per match it wants before it leaves the count to the planner
/// (filters that select fewer than one row in 16); with free-text words,
/// which are tested on the index entries before a row is looked up (about
/// a tenth of the cost), how many entries.
const PG_COUNT_WALK_ROWS_PER_MATCH: i64 = 16;
const PG_COUNT_WALK_ENTRIES_PER_MATCH: i64 = 64;

/// Appends the test that a row is one of `$ids` (PostgreSQL; one text
/// parameter, so the statement is the same whatever the ids).
macro_rules! push_rare_ids {
    ($qb:expr, $ids:expr) => {{
        let ids: &[i64] = $ids;
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        $qb.push(" AND r.id = ANY(string_to_array(")
            .push_bind(list.join(","))
            .push(", ',')::bigint[])");
    }};
}

/// PostgreSQL: runs a statement that walks a name index in order (the
/// index walks of listings and counts) with sequential and bitmap scans
/// (and with `no_sort`, sorts) turned off for its transaction alone, so
/// that the walk is the plan. Their generic plans estimate `kind = $1` at
/// 1/18 of the rows and a pattern at 0.5%, find a walk too long and plan
/// instead to read every row of the kind and sort them: 54 ms for
/// `payments` across kinds and 72 ms for a count at 100,000 rows, where
/// the walks take 1 to 8 ms.
async fn pg_walk(
    p: &sqlx::PgPool,
    qb: &mut QueryBuilder<'_, sqlx::Postgres>,
    no_sort: bool,
) -> Result<Vec<sqlx::postgres::PgRow>> {
    let mut tx = p.begin().await?;
    sqlx::query(
        "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), \
         set_config('enable_sort', CASE WHEN $1 THEN 'off' ELSE 'on' END, true)",
    )
    .bind(no_sort)
    .execute(&mut *tx)
    .await?;
    let rows = qb.build().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows)
}

/// PostgreSQL's verdict on a listing's free-text words (3+ characters).
enum PgWords {
    /// SQLite, or no word long enough for the trigram index.
    NotProbed,
    /// More than `FTS_DRIVE_MAX` live matches.
    Common,
    /// The ids of the live rows that match every word (at most
    /// `FTS_DRIVE_MAX`), as the probe found them.
    Rare(Vec<i64>),
}

impl PgWords {
    /// The expressions a statement tests words and kind with. For common
    /// words, keep the planner off the trigram index (it would fetch and
    /// sort every match) so it walks the sort index and stops at the page
    /// limit. Rare words use the trigram index; their matches are few, so
    /// kind is tested on them rather than ANDed in from an index of every
    /// row of the kind (a generic plan did that: 3 ms for 50,000 entries).
    fn columns(&self) -> (&'static str, &'static str) {
        match self {
            PgWords::Common => ("(r.search || '')", "r.kind"),
            PgWords::Rare(_) => ("r.search", "(r.kind || '')"),
            PgWords::NotProbed => ("r.search", "r.kind"),
        }
    }
}

/// The free-text word sets lately probed, and whether they were rare
/// (SQLite: at most `FTS_DRIVE_MAX` FTS matches; PostgreSQL: at most that
/// many trigram matches), so that the next listing with them (the next
/// page, the count after the page, a reload, other users' same search)
/// skips what the verdict makes pointless: on SQLite the FTS count, on
/// PostgreSQL the index walk for a rare word (it reads its whole budget
/// for nothing, 5 ms at 100,000 rows) or the probe for a common one (10
/// ms). Only a plan choice: every path gives the same rows. Entries last
/// `WORD_VERDICT_TTL`; the set is emptied when it reaches
/// `WORD_VERDICTS_MAX`.
#[derive(Default)]
pub(crate) struct WordVerdicts(std::sync::Mutex<HashMap<String, (bool, std::time::Instant)>>);

const WORD_VERDICT_TTL: std::time::Duration = std::time::Duration::from_secs(60);
const WORD_VERDICTS_MAX: usize = 1024;

impl WordVerdicts {
    fn key(words: &[String]) -> String {
        let mut w: Vec<&str> = words
            .iter()
            .filter(|w| w.chars().count() >= 3)
            .map(String::as_str)
            .collect();
        w.sort_unstable();
        w.join("\0")
    }

    /// `Some(true)`: lately found rare; `Some(false)`: common.
    fn get(&self, words: &[String]) -> Option<bool> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&Self::key(words))
            .filter(|(_, at)| at.elapsed() < WORD_VERDICT_TTL)
            .map(|(rare, _)| *rare)
    }

    fn note(&self, words: &[String], rare: bool) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= WORD_VERDICTS_MAX {
            map.clear();
        }
        map.insert(Self::key(words), (rare, std::time::Instant::now()));
    }
}

/// Builds a page from the rows of a listing that asked for `limit + 1`.
fn into_page(rows: &[impl ReadRow], q: &ResourceQuery) -> Result<Page> {
    let mut items = rows
        .iter()
        .map(resource_from_row)
        .collect::<Result<Vec<_>>>()?;
    let next_cursor = if items.len() > q.limit as usize {
        items.truncate(q.limit as usize);
        items.last().map(|last| Cursor {
            value: sort_value(last, q.sort),
            id: last.id.0,
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

pub(crate) fn resource_from_row(row: &impl ReadRow) -> Result<Resource> {
    let kind = row.text("kind")?;
    let account = row.text("account")?;
    let tags = row.text("tags")?;
    let attributes = row.text("attributes")?;
    let created_at = row.int("created_at")?;
    let observed = ObservedResource {
        kind: ResourceKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown kind {kind:?}")))?,
        provider_id: row.text("provider_id")?,
        name: row.text("name")?,
        state: row.text("state")?,
        rtype: row.text("rtype")?,
        owner: row.text("owner")?,
        private_ip: row.text("private_ip")?,
        public_ip: row.text("public_ip")?,
        created_at: (created_at != 0).then_some(created_at),
        size_gib: row.int("size_gib")?,
        tags: serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt(format!("tags: {e}")))?,
        attributes: serde_json::from_str(&attributes)
            .map_err(|e| StoreError::Corrupt(format!("attributes: {e}")))?,
    };
    Ok(Resource {
        id: ResourceId(row.int("id")?),
        account: AccountName::parse(&account).map_err(StoreError::Corrupt)?,
        region: row.text("region")?,
        observed,
        first_seen: row.int("first_seen")?,
        last_seen: row.int("seen")?,
        deleted_at: row.opt_int("deleted_at")?,
    })
}

/// Escapes LIKE wildcards (the statements say ESCAPE '\').
fn like_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// Escapes LIKE wildcards in a user's word (the statement says ESCAPE '\').
fn like_pattern(word: &str) -> String {
    format!("%{}%", like_escape(word))
}

/// Free-text words long enough for the trigram index (3+ characters) as one
/// FTS5 query: each word a quoted phrase, all required.
/// The column a search-language field tests (lower-cased where the data
/// may have upper case; kinds, states, regions and accounts never do).
fn field_column(f: Field) -> &'static str {
    match f {
        Field::Kind => "r.kind",
        Field::Account => "r.account",
        Field::Region => "r.region",
        Field::State => "r.state",
        Field::Type => "LOWER(r.rtype)",
        Field::Owner => "LOWER(r.owner)",
        Field::Name => "LOWER(r.name)",
        Field::Id => "LOWER(r.provider_id)",
    }
}

fn fts_query(words: &[String]) -> Option<String> {
    let phrases: Vec<String> = words
        .iter()
        .filter(|w| w.chars().count() >= 3)
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!phrases.is_empty()).then(|| phrases.join(" "))
}

/// Appends ` AND (...)` keeping only the rows `q.visibility` lets the
/// caller see (nothing when no account is hidden from them): rows outside
/// the hidden accounts, rows granted by id, and rows the caller (or one of
/// their groups) owns. The table is `r`.
macro_rules! push_visibility {
    ($qb:expr, $q:expr) => {{
        if let Some(v) = $q
            .visibility
            .as_ref()
            .filter(|v| !v.hidden_accounts.is_empty())
        {
            $qb.push(" AND (r.account NOT IN (");
            let mut sep = $qb.separated(", ");
            for a in &v.hidden_accounts {
                sep.push_bind(a.clone());
            }
            $qb.push(")");
            if !v.granted_ids.is_empty() {
                $qb.push(" OR r.id IN (");
                let mut sep = $qb.separated(", ");
                for id in &v.granted_ids {
                    sep.push_bind(id.0);
                }
                $qb.push(")");
            }
            if !v.owners.is_empty() {
                $qb.push(" OR r.owner IN (");
                let mut sep = $qb.separated(", ");
                for o in &v.owners {
                    sep.push_bind(o.clone());
                }
                $qb.push(")");
            }
            $qb.push(")");
        }
    }};
}

/// Appends the WHERE clause of a listing (filters and free text). With
/// `$words_by_fts` (SQLite statements that start from the FTS5 trigram
/// matches) positive words of 3+ characters are already answered; otherwise
/// every word is a LIKE over `search`, which PostgreSQL serves from its
/// pg_trgm index.
macro_rules! push_filters {
    ($qb:expr, $q:expr, $sqlite:expr, $words_by_fts:expr, $like_col:expr, $kind_col:expr) => {{
        let q: &ResourceQuery = $q;
        $qb.push(" WHERE 1=1");
        if !q.include_deleted {
            $qb.push(" AND r.deleted_at IS NULL");
        }
        if let Some(k) = q.kind {
            $qb.push(" AND ").push($kind_col).push(" = ").push_bind(k.as_str());
        }
        push_visibility!($qb, q);
        for (col, values) in [
            (
                "r.account",
                q.accounts.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            ),
            ("r.region", q.regions.clone()),
            ("r.state", q.states.clone()),
            ("r.rtype", q.types.clone()),
        ] {
            if values.is_empty() {
                continue;
            }
            $qb.push(" AND ").push(col).push(" IN (");
            let mut sep = $qb.separated(", ");
            for v in values {
                sep.push_bind(v);
            }
            $qb.push(")");
        }
        for t in &q.search.terms {
            // Positive long words are answered by the FTS table the
            // statement starts from, when it does.
            if let TermKind::Word(w) = &t.kind {
                if $words_by_fts && !t.negated && w.chars().count() >= 3 {
                    continue;
                }
            }
            $qb.push(if t.negated { " AND NOT (" } else { " AND (" });
            match &t.kind {
                TermKind::Word(w) => {
                    $qb.push($like_col)
                        .push(" LIKE ")
                        .push_bind(like_pattern(w))
                        .push(" ESCAPE '\\'");
                }
                TermKind::Field { field, values } => {
                    let col = field_column(*field);
                    for (i, v) in values.iter().enumerate() {
                        if i > 0 {
                            $qb.push(" OR ");
                        }
                        if v.is_glob() {
                            $qb.push(col)
                                .push(" LIKE ")
                                .push_bind(v.to_sql_like())
                                .push(" ESCAPE '\\'");
                        } else {
                            $qb.push(col).push(" = ").push_bind(v.as_str().to_owned());
                        }
                    }
                }
                TermKind::Tag { key, value } => {
                    // An exact, cheap test on the stored JSON text: a key is
                    // present iff `"key":` occurs in it (compact serde_json
                    // output; quotes inside values are escaped). Case-
                    // sensitive, as tag keys are.
                    // (With a value on PostgreSQL the JSON test alone is
                    // faster: the planner misjudged the extra text test.)
                    let key_text = format!("{}:", serde_json::Value::String(key.clone()));
                    if $sqlite || value.is_none() {
                        $qb.push(if $sqlite { "instr(r.tags, " } else { "strpos(r.tags, " })
                            .push_bind(key_text.clone())
                            .push(") > 0");
                    } else {
                        $qb.push("TRUE");
                    }
                    if let Some(v) = value {
                        // A necessary condition first (`"key":"value"` in the
                        // text, ignoring case), when the value has nothing
                        // JSON would escape; then the exact test on the tag.
                        // (SQLite only: on PostgreSQL the extra ILIKE led the
                        // planner to a much slower plan, measured.)
                        if $sqlite && !v.as_str().contains(['"', '\\']) && !v.as_str().chars().any(char::is_control) {
                            let text = format!("%{}\"{}\"%", like_escape(&key_text), v.to_sql_like());
                            $qb.push(" AND r.tags LIKE ")
                                .push_bind(text)
                                .push(" ESCAPE '\\'");
                        }
                        $qb.push(if $sqlite {
                            " AND EXISTS (SELECT 1 FROM json_each(r.tags) AS t WHERE t.key = "
                        } else {
                            " AND EXISTS (SELECT 1 FROM jsonb_each_text(r.tags::jsonb) AS t WHERE t.key = "
                        });
                        $qb.push_bind(key.clone())
                            .push(" AND LOWER(t.value) LIKE ")
                            .push_bind(v.to_sql_like())
                            .push(" ESCAPE '\\')");
                    }
                }
                TermKind::Created { op, at_ms } => {
                    // `+` keeps SQLite from driving the query by the
                    // created_at index for a range that holds most rows
                    // (it then sorted them all); the sort index stays usable.
                    // (PostgreSQL's generic plan did the same, measured at
                    // 400 ms; `+ 0` keeps both planners on the sort index.)
                    $qb.push(if $sqlite { "+r.created_at > 0 AND +r.created_at " } else { "r.created_at + 0 > 0 AND r.created_at + 0 " })
                        .push(op.as_str())
                        .push(" ")
                        .push_bind(*at_ms);
                }
                TermKind::Stopped { op, at_ms } => {
                    // The same expression as the partial index
                    // resources_live_stopped_at (RFC 3339 text compares in
                    // time order).
                    $qb.push(if $sqlite {
                        "r.kind = 'instance' AND r.state = 'stopped' AND json_extract(r.attributes, '$.stopped_at') "
                    } else {
                        "r.kind = 'instance' AND r.state = 'stopped' AND ((r.attributes::jsonb) ->> 'stopped_at') "
                    })
                    .push(op.as_str())
                    .push(" ")
                    .push_bind(skyhold_core::rfc3339(*at_ms));
                }
                TermKind::Orphan => {
                    $qb.push("r.owner = '' AND NOT EXISTS (SELECT 1 FROM grants g \
                              WHERE g.object_kind = 'resource' AND g.object_key = CAST(r.id AS TEXT))");
                }
                TermKind::CreatedOn { from_ms, to_ms } => {
                    $qb.push("r.created_at >= ")
                        .push_bind(*from_ms)
                        .push(" AND r.created_at < ")
                        .push_bind(*to_ms);
                }
            }
            $qb.push(")");
        }
    }};
}

impl Store {
    /// Reconciles the cache with one *complete* listing of (account, region,
    /// kind): inserts new resources, rewrites changed ones, tombstones the
    /// ones that are gone, and leaves unchanged rows untouched. One
    /// transaction: readers see the old or the new state, never a mix.
    pub async fn apply_listing(
        &self,
        account: &AccountName,
        region: &str,
        kind: ResourceKind,
        observed: &[ObservedResource],
        now: Millis,
    ) -> Result<ApplyStats> {
        // Fingerprints before the write lock: on SQLite the lock is the
        // database's, and a million of them take seconds.
        let fps: Vec<String> = observed.iter().map(ObservedResource::fingerprint).collect();
        on_pool!(self, p => {
            let mut tx = crate::BeginWrite::begin_write(p).await?;
            let rows = sqlx::query(
                "SELECT id, provider_id, fingerprint, deleted_at, name FROM resources \
                 WHERE account = $1 AND region = $2 AND kind = $3",
            )
            .bind(account.as_str())
            .bind(region)
            .bind(kind.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let mut existing: HashMap<String, (i64, String, Option<i64>, String)> = HashMap::with_capacity(rows.len());
            for r in &rows {
                existing.insert(
                    r.try_get("provider_id")?,
                    (r.try_get("id")?, r.try_get("fingerprint")?, r.try_get("deleted_at")?, r.try_get("name")?),
                );
            }
            // The first complete listing of a scope is its baseline: its
            // resources did not "appear", they were there all along.
            let synced_before: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT last_success FROM sync_status WHERE account = $1 AND region = $2 AND kind = $3",
            )
            .bind(account.as_str())
            .bind(region)
            .bind(kind.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let record_appearances = matches!(synced_before, Some(Some(_)));
            let mut events: Vec<NewEvent> = Vec::new();
            let mut stats = ApplyStats::default();
            let mut to_insert: Vec<NewRow> = Vec::new();
            let mut seen = std::collections::HashSet::with_capacity(observed.len());
            // Pass 1: classify. Changed rows are collected so their old
            // versions (for the change events) load in a few batched reads,
            // and are rewritten in batches, not one statement per row.
            let mut changed: Vec<(Rewrite, Option<i64>)> = Vec::new();
            for (o, fp) in observed.iter().zip(&fps) {
                if !seen.insert(o.provider_id.as_str()) {
                    continue; // a listing that repeats an id: keep the first
                }
                let fp = fp.clone();
                let gone = is_terminal(kind, &o.state);
                match existing.get(&o.provider_id) {
                    None => {
                        if record_appearances {
                            events.push(NewEvent::new(None, &o.provider_id, &o.name, "appeared", Vec::new()));
                        }
                        to_insert.push(NewRow { o, fp, deleted: gone.then_some(now) });
                    }
                    Some((id, old_fp, deleted_at, _)) => {
                        let deleted = if gone { Some(deleted_at.unwrap_or(now)) } else { None };
                        if *old_fp == fp && *deleted_at == deleted {
                            stats.unchanged += 1;
                        } else {
                            changed.push((Rewrite { id: *id, o, fp, deleted }, *deleted_at));
                        }
                    }
                }
            }
            let mut old_rows: HashMap<i64, Resource> = HashMap::with_capacity(changed.len());
            for chunk in changed.chunks(500) {
                let mut qb = QueryBuilder::new(SELECT_RESOURCE);
                qb.push(" WHERE r.id IN (");
                let mut sep = qb.separated(", ");
                for (r, _) in chunk {
                    sep.push_bind(r.id);
                }
                qb.push(")");
                for row in qb.build().fetch_all(&mut *tx).await? {
                    let r = resource_from_row(&row)?;
                    old_rows.insert(r.id.0, r);
                }
            }
            // Pass 2: what changed, then the rows rewritten in batches.
            for (r, deleted_at) in &changed {
                let event = match (deleted_at.is_some(), r.deleted.is_some()) {
                    (true, false) => "reappeared",
                    (false, true) => "disappeared",
                    _ => "changed",
                };
                let diff = old_rows.get(&r.id).map(|old| skyhold_core::diff(&old.observed, r.o)).unwrap_or_default();
                events.push(NewEvent::new(Some(r.id), &r.o.provider_id, &r.o.name, event, diff));
                if r.deleted.is_some() && deleted_at.is_none() {
                    stats.tombstoned += 1;
                } else {
                    stats.updated += 1;
                }
            }
            let changed: Vec<Rewrite> = changed.into_iter().map(|(r, _)| r).collect();
            tx.rewrite_resources(&changed, now).await?;
            let scope = (account.as_str(), region, kind.as_str());
            tx.insert_resources(scope, &to_insert, now).await?;
            stats.inserted += to_insert.len() as u64;
            let mut gone = Vec::new();
            for (pid, (id, _, deleted_at, name)) in &existing {
                if deleted_at.is_none() && !seen.contains(pid.as_str()) {
                    events.push(NewEvent::new(Some(*id), pid, name, "disappeared", Vec::new()));
                    gone.push(*id);
                }
            }
            tx.tombstone_resources(&gone, now).await?;
            stats.tombstoned += gone.len() as u64;
            tx.insert_events(scope, &events, now).await?;
            stats.events = events.len() as u64;
            tx.commit().await?;
            Ok(stats)
        })
    }

    /// One page of resources matching `q`, in `q.sort` order (id breaks ties).
    pub async fn list_resources(&self, q: &ResourceQuery) -> Result<Page> {
        // PostgreSQL, plain free text: a short walk in name order first,
        // unless the words are known to be rare (it would find nothing) or
        // common (the whole walk below is then the answer).
        if self.word_verdicts.get(&q.positive_words()).is_none() {
            if let Some(page) = self.pg_index_walk(q, true).await? {
                return Ok(page);
            }
        }
        let col = sort_column(q.sort);
        let (cmp, dir) = if q.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let sqlite = self.is_sqlite();
        let words = q.positive_words();
        let fts = if sqlite { fts_query(&words) } else { None };
        let drive_from_fts = match &fts {
            Some(m) => match self.word_verdicts.get(&words) {
                Some(rare) => rare,
                None => {
                    let rare = self.fts_matches(m, FTS_DRIVE_MAX).await? <= FTS_DRIVE_MAX;
                    self.word_verdicts.note(&words, rare);
                    rare
                }
            },
            None => false,
        };
        // PostgreSQL: common words in plain free text walk the name index
        // to the end if need be; otherwise see `PgWords::columns`.
        let verdict = self.pg_words(&words).await?;
        if matches!(verdict, PgWords::Common) {
            if let Some(page) = self.pg_index_walk(q, false).await? {
                return Ok(page);
            }
        }
        let (like_col, kind_col) = verdict.columns();
        // Rare words on live rows: the probe's ids answer the words, so the
        // trigram index is not searched a second time (measured: 2.4 ms for
        // an IP address at 100,000 rows).
        let rare_ids = match verdict {
            PgWords::Rare(ids) if !q.include_deleted => Some(ids),
            _ => None,
        };
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new("");
            match (&fts, drive_from_fts) {
                (Some(m), true) => {
                    qb.push(SELECT_RESOURCE_FROM_FTS).push_bind(m.clone()).push(SELECT_RESOURCE_FROM_FTS_TAIL);
                    push_filters!(qb, q, sqlite, true, like_col, kind_col);
                }
                _ => {
                    // Common words (or none): walk the sort index and test
                    // each row's text with LIKE; the page fills after about
                    // limit / selectivity rows, cheaper than materialising
                    // thousands of FTS matches.
                    qb.push(SELECT_RESOURCE);
                    push_filters!(qb, q, sqlite, rare_ids.is_some(), like_col, kind_col);
                }
            }
            if let Some(ids) = &rare_ids {
                push_rare_ids!(qb, ids);
            }
            if let Some(c) = &q.cursor {
                qb.push(" AND (").push(col).push(", r.id) ").push(cmp).push(" (");
                match &c.value {
                    CursorValue::Int(v) => qb.push_bind(*v),
                    CursorValue::Text(v) => qb.push_bind(v.clone()),
                };
                qb.push(", ").push_bind(c.id).push(")");
            }
            qb.push(" ORDER BY ").push(col).push(" ").push(dir).push(", r.id ").push(dir);
            qb.push(" LIMIT ").push_bind(i64::from(q.limit) + 1);
            let rows = qb.build().fetch_all(p).await?;
            into_page(&rows, q)
        })
    }

    /// PostgreSQL, plain free text (words only, at most a kind, name
    /// order): the page from a walk of a name index, read by an index-only
    /// scan (the index carries `search`, so a row that does not match costs
    /// an index entry, not a heap fetch). With a visibility filter the
    /// matching entries' rows are tested in name order until the page is
    /// full (measured: a member's `payments` 19 -> 8 ms p50, docs/
    /// PERFORMANCE.md (d)).
    ///
    /// `bounded`: the walk reads at most `PG_INDEX_WALK_ENTRIES_PER_ROW`
    /// entries per wanted row (words of unknown commonness: a rare word
    /// would walk the whole index) and gives `None` when they did not fill
    /// the page; the general path then answers it (its keyset continues
    /// this one's: same order). Unbounded (words known to be common) it
    /// walks until the page is full or the index ends: the matches of a
    /// common word can all sit late in name order (at 1,000,000 rows,
    /// `payments` across kinds: 36,000 entries, 8 ms, where fetching every
    /// match by the trigram index and sorting them took 60 ms). `None`
    /// when the query does not qualify.
    async fn pg_index_walk(&self, q: &ResourceQuery, bounded: bool) -> Result<Option<Page>> {
        let crate::Pool::Postgres(p) = &self.pool else {
            return Ok(None);
        };
        let words_only = !q.search.terms.is_empty()
            && q.search
                .terms
                .iter()
                .all(|t| matches!(t.kind, TermKind::Word(_)));
        let plain = q.accounts.is_empty()
            && q.regions.is_empty()
            && q.states.is_empty()
            && q.types.is_empty()
            && !q.include_deleted;
        if !words_only || !plain || q.sort != SortKey::Name {
            return Ok(None);
        }
        let (cmp, dir) = if q.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let mut qb = QueryBuilder::new(columns!());
        qb.push(" FROM (SELECT w.id, w.name FROM (SELECT id, name, search FROM resources WHERE deleted_at IS NULL");
        if let Some(k) = q.kind {
            qb.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(c) = &q.cursor {
            let CursorValue::Text(name) = &c.value else {
                return Ok(None);
            };
            qb.push(" AND (name, id) ")
                .push(cmp)
                .push(" (")
                .push_bind(name.clone())
                .push(", ")
                .push_bind(c.id)
                .push(")");
        }
        qb.push(" ORDER BY name ").push(dir).push(", id ").push(dir);
        if bounded {
            let budget = (i64::from(q.limit) + 1) * PG_INDEX_WALK_ENTRIES_PER_ROW;
            qb.push(format!(" LIMIT {budget}"));
        }
        qb.push(") w WHERE TRUE");
        // Unbounded, the walk is flattened into one scan: `|| ''` keeps the
        // planner off the trigram index (it would fetch every match).
        let like_col = if bounded {
            "w.search LIKE "
        } else {
            "(w.search || '') LIKE "
        };
        for t in &q.search.terms {
            if let TermKind::Word(w) = &t.kind {
                qb.push(if t.negated { " AND NOT (" } else { " AND (" })
                    .push(like_col)
                    .push_bind(like_pattern(w))
                    .push(" ESCAPE '\\')");
            }
        }
        qb.push(" ORDER BY w.name ")
            .push(dir)
            .push(", w.id ")
            .push(dir);
        let hidden = q
            .visibility
            .as_ref()
            .is_some_and(|v| !v.hidden_accounts.is_empty());
        if hidden {
            // The caller may not see everything: the matching entries are
            // joined to their rows in name order (a nested loop that stops
            // at the page), and the visibility filter tests those rows.
            qb.push(") ids JOIN resources r ON r.id = ids.id")
                .push(join_status!())
                .push(" WHERE TRUE");
            push_visibility!(qb, q);
            qb.push(" ORDER BY ids.name ")
                .push(dir)
                .push(", ids.id ")
                .push(dir);
            qb.push(format!(" LIMIT {}", i64::from(q.limit) + 1));
        } else {
            qb.push(format!(" LIMIT {}", i64::from(q.limit) + 1));
            qb.push(") ids JOIN resources r ON r.id = ids.id")
                .push(join_status!());
            qb.push(" ORDER BY r.name ")
                .push(dir)
                .push(", r.id ")
                .push(dir);
        }
        let rows = pg_walk(p, &mut qb, false).await?;
        if bounded && rows.len() <= q.limit as usize {
            return Ok(None);
        }
        into_page(&rows, q).map(Some)
    }

    /// How many resources match `q` (ignoring cursor and limit).
    ///
    /// At most `cap + 1` rows are counted, so a count never costs more than a
    /// bounded scan; a result above `cap` reads as "more than cap".
    pub async fn count_resources(&self, q: &ResourceQuery, cap: i64) -> Result<i64> {
        let sqlite = self.is_sqlite();
        let words = q.positive_words();
        let fts = if sqlite { fts_query(&words) } else { None };
        // PostgreSQL: the listing's verdict on the words (usually already
        // made by the page this count follows).
        let verdict = self.pg_words(&words).await?;
        let (like_col, kind_col) = verdict.columns();
        let rare_ids = match verdict {
            PgWords::Rare(ids) if !q.include_deleted => Some(ids),
            _ => None,
        };
        if rare_ids.is_none() {
            if let Some(n) = self.pg_count_walk(q, cap, like_col, kind_col).await? {
                return Ok(n);
            }
        }
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM ");
            // Counting stops at the cap, so on SQLite starting from the FTS
            // matches reads at most about cap rows whatever the selectivity.
            match &fts {
                Some(m) => {
                    qb.push("(SELECT rowid AS fid FROM resources_fts WHERE resources_fts MATCH ")
                        .push_bind(m.clone())
                        .push(") f CROSS JOIN resources r ON r.id = f.fid");
                }
                None => {
                    qb.push("resources r");
                }
            }
            push_filters!(qb, q, sqlite, fts.is_some() || rare_ids.is_some(), like_col, kind_col);
            if let Some(ids) = &rare_ids {
                push_rare_ids!(qb, ids);
            }
            // The cap is ours, not the user's: written as a literal so a
            // generic PostgreSQL plan knows it, instead of assuming a small
            // LIMIT and scanning a whole name index for a rare word.
            qb.push(format!(" LIMIT {}) AS matching", cap.saturating_add(1)));
            let n: i64 = qb.build_query_scalar().fetch_one(p).await?;
            Ok(n)
        })
    }

    /// PostgreSQL, a bounded count whose rows are common: read live rows
    /// in name order (an order unrelated to most filters) until `cap + 1`
    /// match, at most `PG_COUNT_WALK_ROWS_PER_MATCH` rows (or with words,
    /// `PG_COUNT_WALK_ENTRIES_PER_MATCH` index entries) per match wanted.
    /// `None` when that did not settle the count (too few matches in a walk
    /// that did not reach the end), or the query has filters with indexes
    /// of their own (account, region, state, type, `stopped>`: the planner
    /// uses them well) or asks for deleted rows; the planner's count
    /// answers then.
    ///
    /// Counting by the planner alone went wrong at 1,000,000 rows: a
    /// generic plan estimates `kind = $1` at 1/18 of the table and a
    /// pattern test at 0.5%, expects fewer than the cap to match, and
    /// plans for reading every match: a bitmap of all 500,000 instances
    /// ANDed with the trigram index's (165 ms for `payments`), or the type
    /// index walked in type order for `type:t3.*` (333,000 entries before
    /// the `t3`s, 160 ms).
    async fn pg_count_walk(
        &self,
        q: &ResourceQuery,
        cap: i64,
        like_col: &str,
        kind_col: &str,
    ) -> Result<Option<i64>> {
        let crate::Pool::Postgres(p) = &self.pool else {
            return Ok(None);
        };
        let indexed = !(q.accounts.is_empty()
            && q.regions.is_empty()
            && q.states.is_empty()
            && q.types.is_empty())
            || q.search
                .terms
                .iter()
                .any(|t| !t.negated && matches!(t.kind, TermKind::Stopped { .. }));
        if indexed || q.include_deleted {
            return Ok(None);
        }
        let words: Vec<String> = q
            .positive_words()
            .into_iter()
            .filter(|w| w.chars().count() >= 3)
            .collect();
        let per_match = if words.is_empty() {
            PG_COUNT_WALK_ROWS_PER_MATCH
        } else {
            PG_COUNT_WALK_ENTRIES_PER_MATCH
        };
        let budget = cap.saturating_add(1).saturating_mul(per_match);
        // A `state:` term with one exact value narrows the walk to that
        // state's rows (the (kind, state, name, id) index keeps name order).
        let state = q.search.terms.iter().find_map(|t| match &t.kind {
            TermKind::Field {
                field: Field::State,
                values,
            } if !t.negated && values.len() == 1 && !values[0].is_glob() => {
                Some(values[0].as_str().to_owned())
            }
            _ => None,
        });
        let mut qb = QueryBuilder::new("SELECT COUNT(*) FROM (SELECT 1 FROM (SELECT ");
        qb.push(if words.is_empty() { "*" } else { "id, search" });
        qb.push(" FROM resources WHERE deleted_at IS NULL");
        if let Some(k) = q.kind {
            qb.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(st) = &state {
            qb.push(" AND state = ").push_bind(st.clone());
        }
        if words.is_empty() {
            // Each row walked is tested as it is read.
            qb.push(format!(" ORDER BY name, id LIMIT {budget}) r"));
            push_filters!(qb, q, false, false, like_col, kind_col);
        } else {
            // The walk reads index entries (which carry `search`); a row
            // is looked up by id only when its entry matches the words: a
            // LATERAL subquery that cannot be flattened into a join (`LIMIT
            // 1`), since a join let the planner read every row of the kind
            // to hash or loop over (its estimate of the filtered rows being
            // 278): 300 ms, and 41 s, for `type:t3.*` at 1,000,000.
            qb.push(format!(
                " ORDER BY name, id LIMIT {budget}) w CROSS JOIN LATERAL (SELECT 1 FROM resources r"
            ));
            push_filters!(qb, q, false, true, like_col, kind_col);
            qb.push(" AND r.id = w.id LIMIT 1) x WHERE TRUE");
            for w in &words {
                qb.push(" AND w.search LIKE ")
                    .push_bind(like_pattern(w))
                    .push(" ESCAPE '\\'");
            }
        }
        qb.push(format!(" LIMIT {}) AS matching", cap.saturating_add(1)));
        let rows = pg_walk(p, &mut qb, true).await?;
        let n: i64 = match rows.first() {
            Some(row) => row.try_get(0)?,
            None => 0,
        };
        if n > cap {
            return Ok(Some(n));
        }
        // Fewer matches than the cap: the count is exact if the walk read
        // every live row (of the kind and state), as `resource_summary`
        // counts them.
        let mut qb = QueryBuilder::new(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM resource_summary WHERE TRUE",
        );
        if let Some(k) = q.kind {
            qb.push(" AND kind = ").push_bind(k.as_str());
        }
        if let Some(st) = state {
            qb.push(" AND state = ").push_bind(st);
        }
        let live: i64 = qb.build_query_scalar().fetch_one(p).await?;
        Ok((live <= budget).then_some(n))
    }

    /// PostgreSQL only: whether live rows matching every word (3+
    /// characters) number more than `FTS_DRIVE_MAX` (one probe through the
    /// trigram index that stops after that many), and when they do not,
    /// their ids.
    async fn pg_words(&self, owned: &[String]) -> Result<PgWords> {
        let words: Vec<&String> = owned.iter().filter(|w| w.chars().count() >= 3).collect();
        let crate::Pool::Postgres(p) = &self.pool else {
            return Ok(PgWords::NotProbed);
        };
        if words.is_empty() {
            return Ok(PgWords::NotProbed);
        }
        // A rare verdict needs the ids, so only a common one is reused.
        if self.word_verdicts.get(owned) == Some(false) {
            return Ok(PgWords::Common);
        }
        let mut qb = QueryBuilder::new(
            "SELECT array_agg(id) FROM (SELECT r.id FROM resources r WHERE r.deleted_at IS NULL",
        );
        for w in words {
            qb.push(" AND r.search LIKE ")
                .push_bind(like_pattern(w))
                .push(" ESCAPE '\\'");
        }
        qb.push(" LIMIT ").push_bind(FTS_DRIVE_MAX + 1).push(") m");
        let ids: Option<Vec<i64>> = qb.build_query_scalar().fetch_one(p).await?;
        let ids = ids.unwrap_or_default();
        let common = ids.len() as i64 > FTS_DRIVE_MAX;
        self.word_verdicts.note(owned, !common);
        Ok(if common {
            PgWords::Common
        } else {
            PgWords::Rare(ids)
        })
    }

    /// SQLite only: how many rows the FTS index matches, counting at most
    /// `cap + 1`.
    async fn fts_matches(&self, fts: &str, cap: i64) -> Result<i64> {
        match &self.pool {
            crate::Pool::Sqlite(p) => Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT rowid FROM resources_fts WHERE resources_fts MATCH $1 LIMIT $2)",
            )
            .bind(fts)
            .bind(cap + 1)
            .fetch_one(p)
            .await?),
            crate::Pool::Postgres(_) => Ok(i64::MAX),
        }
    }

    pub async fn get_resource(&self, id: ResourceId) -> Result<Resource> {
        on_pool!(self, p => {
            let row = sqlx::query(&format!("{SELECT_RESOURCE} WHERE r.id = $1"))
                .bind(id.0)
                .fetch_optional(p)
                .await?
                .ok_or(StoreError::NotFound)?;
            resource_from_row(&row)
        })
    }

    /// Resources in one account (and region, unless `None`), of one kind
    /// (or any, when `None`), by provider id: the forward side of a
    /// relation, such as an instance's volumes or a stack's resources.
    pub async fn resources_by_provider_ids(
        &self,
        account: &AccountName,
        region: Option<&str>,
        kind: Option<ResourceKind>,
        ids: &[String],
    ) -> Result<Vec<Resource>> {
        self.related(account, region, kind, Related::Ids(ids)).await
    }

    /// Resources of one kind in one account (and region) with one of `names`.
    pub async fn resources_by_names(
        &self,
        account: &AccountName,
        region: Option<&str>,
        kind: ResourceKind,
        names: &[String],
    ) -> Result<Vec<Resource>> {
        self.related(account, region, Some(kind), Related::Names(names))
            .await
    }

    /// Resources of one kind in one account (and region) whose attributes
    /// contain `needle`, a fragment of their JSON text (such as
    /// `"vpc-123"`): the reverse side of a relation.
    pub async fn resources_mentioning(
        &self,
        account: &AccountName,
        region: Option<&str>,
        kind: ResourceKind,
        needle: &str,
    ) -> Result<Vec<Resource>> {
        self.related(account, region, Some(kind), Related::Mention(needle))
            .await
    }

    async fn related(
        &self,
        account: &AccountName,
        region: Option<&str>,
        kind: Option<ResourceKind>,
        how: Related<'_>,
    ) -> Result<Vec<Resource>> {
        if matches!(how, Related::Ids(v) | Related::Names(v) if v.is_empty()) {
            return Ok(Vec::new());
        }
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new(SELECT_RESOURCE);
            qb.push(" WHERE r.account = ").push_bind(account.as_str());
            if let Some(region) = region {
                qb.push(" AND r.region = ").push_bind(region);
            }
            if let Some(kind) = kind {
                qb.push(" AND r.kind = ").push_bind(kind.as_str());
            }
            match how {
                Related::Ids(values) | Related::Names(values) => {
                    let col = if matches!(how, Related::Ids(_)) { "r.provider_id" } else { "r.name" };
                    qb.push(" AND ").push(col).push(" IN (");
                    let mut sep = qb.separated(", ");
                    for v in values.iter().take(500) {
                        sep.push_bind(v.clone());
                    }
                    qb.push(")");
                }
                Related::Mention(needle) => {
                    qb.push(" AND r.attributes LIKE ").push_bind(like_pattern(needle)).push(" ESCAPE '\\'");
                }
            }
            qb.push(" ORDER BY r.name, r.id LIMIT 500");
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(resource_from_row).collect()
        })
    }

    /// Live resources counted by one column, optionally for one kind, largest
    /// first: read from `resource_summary` (a few hundred rows whatever the
    /// inventory's size).
    pub async fn count_by(
        &self,
        kind: Option<ResourceKind>,
        by: CountBy,
    ) -> Result<Vec<(String, i64)>> {
        let col = by.column();
        on_pool!(self, p => {
            let mut qb = QueryBuilder::new(format!(
                "SELECT {col} AS k, CAST(SUM(n) AS BIGINT) AS n FROM resource_summary WHERE n > 0"
            ));
            if let Some(k) = kind {
                qb.push(" AND kind = ").push_bind(k.as_str());
            }
            qb.push(format!(" GROUP BY {col} ORDER BY n DESC, k"));
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(|r| Ok((r.try_get("k")?, r.try_get("n")?))).collect()
        })
    }

    /// Records a sync attempt's outcome. On failure the last success and
    /// count are kept.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_sync(
        &self,
        account: &AccountName,
        region: &str,
        kind: ResourceKind,
        started: Millis,
        duration_ms: i64,
        outcome: std::result::Result<i64, &str>,
    ) -> Result<()> {
        let (success, count, error) = match outcome {
            Ok(n) => (Some(started), n, None),
            Err(e) => (None, 0, Some(e)),
        };
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO sync_status (account, region, kind, last_attempt, last_success, duration_ms, item_count, last_error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (account, region, kind) DO UPDATE SET \
                   last_attempt = excluded.last_attempt, \
                   last_success = COALESCE(excluded.last_success, sync_status.last_success), \
                   duration_ms = excluded.duration_ms, \
                   item_count = CASE WHEN excluded.last_error IS NULL THEN excluded.item_count ELSE sync_status.item_count END, \
                   last_error = excluded.last_error",
            )
            .bind(account.as_str())
            .bind(region)
            .bind(kind.as_str())
            .bind(started)
            .bind(success)
            .bind(duration_ms)
            .bind(count)
            .bind(error)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    pub async fn sync_statuses(&self) -> Result<Vec<SyncStatus>> {
        let now = skyhold_core::now_millis();
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT s.account, s.region, s.kind, s.last_attempt, s.last_success, s.duration_ms, s.item_count, \
                 s.last_error, s.next_due, s.holder, s.error_kind, s.throttled_in_row, l.holder AS running_on \
                 FROM sync_status s LEFT JOIN sync_leases l ON l.account = s.account AND l.region = s.region \
                 AND l.kind = s.kind AND l.expires_at > $1 \
                 ORDER BY s.account, s.region, s.kind",
            )
            .bind(now)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SyncStatus {
                        account: r.try_get("account")?,
                        region: r.try_get("region")?,
                        kind: r.try_get("kind")?,
                        last_attempt: r.try_get("last_attempt")?,
                        last_success: r.try_get("last_success")?,
                        duration_ms: r.try_get("duration_ms")?,
                        item_count: r.try_get("item_count")?,
                        last_error: r.try_get("last_error")?,
                        next_due: r.try_get("next_due")?,
                        holder: r.try_get("holder")?,
                        error_kind: r.try_get("error_kind")?,
                        throttled_in_row: r.try_get("throttled_in_row")?,
                        running_on: r.try_get("running_on")?,
                    })
                })
                .collect()
        })
    }
}

#[derive(Clone, Copy)]
enum Related<'a> {
    Ids(&'a [String]),
    Names(&'a [String]),
    Mention(&'a str),
}

fn sort_value(r: &Resource, k: SortKey) -> CursorValue {
    let o = &r.observed;
    let t = |s: &str| CursorValue::Text(s.to_owned());
    match k {
        SortKey::Account => t(r.account.as_str()),
        SortKey::Region => t(&r.region),
        SortKey::Kind => t(o.kind.as_str()),
        SortKey::Name => t(&o.name),
        SortKey::ProviderId => t(&o.provider_id),
        SortKey::State => t(&o.state),
        SortKey::Type => t(&o.rtype),
        SortKey::PrivateIp => t(&o.private_ip),
        SortKey::PublicIp => t(&o.public_ip),
        SortKey::LaunchTime => CursorValue::Int(o.created_at.unwrap_or(0)),
        SortKey::Owner => t(&o.owner),
    }
}

#[cfg(test)]
mod tests {
    use super::{like_pattern, WordVerdicts, WORD_VERDICTS_MAX};

    #[test]
    fn word_verdicts_are_remembered_by_their_long_words_in_any_order() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let v = WordVerdicts::default();
        assert_eq!(v.get(&words(&["10.7.13.9", "web"])), None);
        v.note(&words(&["10.7.13.9", "web", "ab"]), true);
        // Words under three characters are not probed, so they do not count.
        assert_eq!(v.get(&words(&["web", "10.7.13.9"])), Some(true));
        assert_eq!(v.get(&words(&["10.7.13.9"])), None);
        v.note(&words(&["web", "10.7.13.9"]), false);
        assert_eq!(v.get(&words(&["10.7.13.9", "web"])), Some(false));
        // Bounded: a full set starts again.
        for i in 1..WORD_VERDICTS_MAX {
            v.note(&words(&[&format!("word{i}")]), true);
        }
        assert_eq!(v.get(&words(&["word1"])), Some(true));
        v.note(&words(&["one-more"]), true);
        assert_eq!(v.get(&words(&["word1"])), None);
        assert_eq!(v.get(&words(&["one-more"])), Some(true));
    }

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern("a%b_c"), "%a\\%b\\_c%");
    }
}
