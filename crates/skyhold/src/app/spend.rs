//! Usage and spend: the ledger's intervals × prices, grouped by owner,
//! group, account, region, blueprint, kind, day or month, with the current
//! month's projection. Prices come from the config's `[[prices]]` first,
//! then imported offer files (`skyhold prices import`), then the shipped table, less the account's `discount`; a (product,
//! region, type) with no price is listed as unpriced, never counted as 0.
//! Admins and auditors see everyone's; others their own and their groups'.

use super::{Action, Actor, App, Object};
use crate::error::AppError;
use chrono::{Datelike, TimeZone, Utc};
use skyhold_core::prices::{PriceTable, Product};
use skyhold_core::{Millis, ResourceId};
use skyhold_store::{Interval, UsageBucket, UsageField, UsageFilter, UsageSet};
use std::collections::BTreeMap;

const DAY_MS: Millis = 86_400_000;

/// What a spend report asks for.
#[derive(Debug, Clone)]
pub struct SpendQuery {
    pub group_by: Vec<UsageField>,
    pub from: Millis,
    pub to: Millis,
    /// Only this user's (and, with `group`, that group's) resources.
    pub user: Option<String>,
    pub group: Option<String>,
    pub account: Option<String>,
}

impl SpendQuery {
    /// From query-string values: `group_by` (comma-separated), `from` and
    /// `to` (RFC 3339, a date, or a duration back from now; default the
    /// current month to now), `user`, `group`, `account`.
    pub fn parse(
        group_by: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        now: Millis,
    ) -> Result<SpendQuery, AppError> {
        let mut fields = Vec::new();
        for f in group_by
            .unwrap_or("owner")
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            let field = UsageField::parse(f).ok_or_else(|| {
                AppError::bad_parameter(
                    "group_by",
                    format!(
                        "{f:?} is not a field: {}",
                        UsageField::ALL.map(|f| f.as_str()).join(", ")
                    ),
                )
            })?;
            if fields.contains(&field) {
                return Err(AppError::bad_parameter(
                    "group_by",
                    format!("{f} is given twice"),
                ));
            }
            fields.push(field);
        }
        if fields.contains(&UsageField::Day) && fields.contains(&UsageField::Month) {
            return Err(AppError::bad_parameter(
                "group_by",
                "day or month, not both",
            ));
        }
        let at = |name: &str, v: &str| {
            super::parse_since(v, now).map_err(|_| {
                AppError::bad_parameter(
                    name,
                    format!("{v:?} is not a time (2026-01-31, RFC 3339) or a duration back from now (30d)"),
                )
            })
        };
        let from = match from {
            Some(v) => at("from", v)?,
            None => month_start(now),
        };
        let to = match to {
            Some(v) => at("to", v)?,
            None => now,
        };
        if to <= from {
            return Err(AppError::bad_parameter("to", "must be after from"));
        }
        // Reports are by whole UTC days: out to the edges of the first
        // and last day.
        let (from, to) = (day_floor(from), day_floor(to + DAY_MS - 1));
        if to - from > 400 * DAY_MS && fields.contains(&UsageField::Day) {
            return Err(AppError::bad_parameter("from", "at most 400 days by day"));
        }
        Ok(SpendQuery {
            group_by: fields,
            from,
            to,
            user: None,
            group: None,
            account: None,
        })
    }
}

/// One row of a spend report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SpendRow {
    /// The group-by fields and their values.
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, String>,
    /// Hours billed (each resource's, summed; not multiplied by size).
    pub hours: f64,
    /// USD of the priced part.
    pub usd: f64,
}

/// Usage with no price: reported, never counted as 0.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Unpriced {
    pub product: String,
    pub region: String,
    pub rtype: String,
    pub hours: f64,
}

/// A spend report.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SpendReport {
    pub from: String,
    pub to: String,
    pub group_by: Vec<String>,
    pub rows: Vec<SpendRow>,
    pub total_usd: f64,
    pub unpriced: Vec<Unpriced>,
    /// This month so far and projected to its end at the last hour's rate
    /// (for the report's owners and filters, whatever its range).
    pub month_to_date_usd: f64,
    pub month_projected_usd: f64,
    pub prices_source: String,
}

/// Midnight UTC of `t`'s day.
pub fn day_floor(t: Millis) -> Millis {
    t - t.rem_euclid(DAY_MS)
}

/// Midnight UTC of the first day of `now`'s month.
pub fn month_start(now: Millis) -> Millis {
    let d = Utc.timestamp_millis_opt(now).single().unwrap_or_default();
    Utc.with_ymd_and_hms(d.year(), d.month(), 1, 0, 0, 0)
        .single()
        .map_or(0, |t| t.timestamp_millis())
}

/// Midnight UTC of the first day of the month after `now`'s.
pub fn next_month_start(now: Millis) -> Millis {
    let d = Utc.timestamp_millis_opt(now).single().unwrap_or_default();
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map_or(0, |t| t.timestamp_millis())
}

/// The buckets a range splits into: one, or one per UTC day or month.
fn buckets(fields: &[UsageField], from: Millis, to: Millis) -> Vec<(String, Millis, Millis)> {
    let by_day = fields.contains(&UsageField::Day);
    let by_month = fields.contains(&UsageField::Month);
    if !by_day && !by_month {
        return vec![(String::new(), from, to)];
    }
    let mut out = Vec::new();
    let mut s = if by_day {
        from - from.rem_euclid(DAY_MS)
    } else {
        month_start(from)
    };
    while s < to {
        let e = if by_day {
            s + DAY_MS
        } else {
            next_month_start(s)
        };
        let t = Utc.timestamp_millis_opt(s).single().unwrap_or_default();
        let label = if by_day {
            t.format("%Y-%m-%d")
        } else {
            t.format("%Y-%m")
        }
        .to_string();
        out.push((label, s.max(from), e.min(to)));
        s = e;
    }
    out
}

impl App {
    /// USD per unit of `product` of `rtype` in `region` for `account`:
    /// a `[[prices]]` override, else the shipped table; less the account's
    /// discount. None: unpriced.
    pub fn price(&self, product: Product, account: &str, region: &str, rtype: &str) -> Option<f64> {
        let list = self
            .config
            .prices
            .iter()
            .find(|p| p.product == product && p.region == region && p.rtype == rtype)
            .map(|p| p.usd)
            .or_else(|| {
                self.imported_prices
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .price(product, region, rtype)
            })
            .or_else(|| PriceTable::builtin().price(product, region, rtype))?;
        let discount = self
            .config
            .accounts
            .iter()
            .find(|a| a.name.as_str() == account)
            .map_or(0.0, |a| a.discount);
        Some(list * (1.0 - discount))
    }

    /// Rereads the imported prices from the store (at start and on every
    /// policy tick, so an import reaches running servers).
    pub async fn reload_prices(&self) -> Result<usize, AppError> {
        let mut t = PriceTable::default();
        let rows = self.store.imported_prices().await?;
        for r in &rows {
            if let Some(p) = Product::parse(&r.product) {
                t.insert(p, &r.region, &r.rtype, r.usd);
            }
        }
        *self
            .imported_prices
            .write()
            .unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(t);
        Ok(rows.len())
    }

    /// Stores prices read from an offer file (admins), audited, and
    /// uses them at once.
    pub async fn import_prices(
        &self,
        actor: &Actor,
        rows: &[skyhold_store::PriceRow],
        source: &str,
    ) -> Result<usize, AppError> {
        self.authorize(actor, Action::ManageQuotas, Object::None)
            .await?;
        let n = self.store.import_prices(rows, source, self.now()).await?;
        let mut d = actor.audit(
            "prices.import",
            skyhold_core::audit::AuditTarget {
                kind: "prices".into(),
                name: skyhold_core::clip(source, 200),
                ..Default::default()
            },
        );
        d.new = Some(serde_json::json!({"prices": n}));
        self.record(&d).await;
        self.reload_prices().await?;
        Ok(n)
    }

    /// The owners a report may count for `actor` (None: everyone), with
    /// the query's `user` and `group` applied.
    async fn spend_owners(
        &self,
        actor: &Actor,
        q: &SpendQuery,
    ) -> Result<Option<Vec<String>>, AppError> {
        let all = self.allows(actor, Action::ViewAllSpend, Object::None);
        let mine: Option<Vec<String>> = if all {
            None
        } else {
            let mut o = vec![actor.username.clone()];
            for (_, g) in &actor.groups {
                o.extend(self.group_owners(g).await?);
            }
            Some(o)
        };
        let wanted: Option<Vec<String>> = match (&q.user, &q.group) {
            (None, None) => None,
            (u, g) => {
                let mut o = Vec::new();
                if let Some(u) = u {
                    o.push(u.clone());
                }
                if let Some(g) = g {
                    self.group_by_name(g).await.map_err(|_| {
                        AppError::bad_parameter("group", format!("no group named {g:?}"))
                    })?;
                    o.extend(self.group_owners(g).await?);
                }
                Some(o)
            }
        };
        Ok(match (mine, wanted) {
            (None, w) => w,
            (Some(m), None) => Some(m),
            (Some(m), Some(w)) => Some(w.into_iter().filter(|o| m.contains(o)).collect()),
        })
    }

    /// `group:NAME` and the group's members: whose usage is the group's.
    pub(super) async fn group_owners(&self, group: &str) -> Result<Vec<String>, AppError> {
        let mut o = vec![format!("group:{group}")];
        if let Ok(g) = self.group_by_name(group).await {
            o.extend(g.members);
        }
        Ok(o)
    }

    /// Prices usage buckets: rows by the group-by fields, and what has no
    /// price.
    pub(super) fn price_buckets(
        &self,
        fields: &[UsageField],
        usage: &[UsageBucket],
    ) -> (Vec<SpendRow>, Vec<Unpriced>) {
        let mut rows: BTreeMap<Vec<String>, (f64, f64)> = BTreeMap::new();
        let mut unpriced: BTreeMap<(String, String, String), f64> = BTreeMap::new();
        for b in usage {
            let e = rows.entry(b.fields.clone()).or_default();
            e.0 += b.hours;
            let price = Product::parse(&b.product)
                .and_then(|p| Some((p, self.price(p, &b.account, &b.region, &b.rtype)?)));
            match price {
                Some((p, usd)) => e.1 += b.unit_hours * p.units_per_hour() * usd,
                None => {
                    *unpriced
                        .entry((b.product.clone(), b.region.clone(), b.rtype.clone()))
                        .or_default() += b.unit_hours;
                }
            }
        }
        let rows = rows
            .into_iter()
            .map(|(vals, (hours, usd))| SpendRow {
                fields: fields
                    .iter()
                    .map(|f| f.as_str().to_owned())
                    .zip(vals)
                    .collect(),
                hours: round(hours, 3),
                usd: round(usd, 4),
            })
            .collect();
        let unpriced = unpriced
            .into_iter()
            .map(|((product, region, rtype), hours)| Unpriced {
                product,
                region,
                rtype,
                hours: round(hours, 3),
            })
            .collect();
        (rows, unpriced)
    }

    /// The spend report.
    pub async fn spend(&self, actor: &Actor, q: &SpendQuery) -> Result<SpendReport, AppError> {
        self.authorize(actor, Action::ViewSpend, Object::None)
            .await?;
        let now = self.now();
        let filter = UsageFilter {
            owners: self.spend_owners(actor, q).await?,
            account: q.account.clone(),
        };
        let buckets = buckets(&q.group_by, q.from, q.to);
        // The report and this month's projection from one read when the
        // report has few edges; by day over a long range, two.
        let mut with_month = buckets.clone();
        with_month.push(month_to_date(now));
        let by_group = q.group_by.contains(&UsageField::Group);
        let (usage, month) = if with_month.len() <= 8 {
            let set = self
                .store
                .usage_set(&with_month, &filter, now, by_group)
                .await?;
            (set.grouped(&q.group_by, 0..buckets.len()), set)
        } else {
            let usage = self
                .store
                .usage(&q.group_by, &buckets, &filter, now)
                .await?;
            let set = self
                .store
                .usage_set(&[month_to_date(now)], &filter, now, false)
                .await?;
            (usage, set)
        };
        let (rows, unpriced) = self.price_buckets(&q.group_by, &usage);
        let total_usd = round(rows.iter().map(|r| r.usd).sum(), 4);
        let (mtd, projected) = self.month_projection(&month, now);
        Ok(SpendReport {
            from: skyhold_core::rfc3339(q.from),
            to: skyhold_core::rfc3339(q.to),
            group_by: q.group_by.iter().map(|f| f.as_str().to_owned()).collect(),
            rows,
            total_usd,
            unpriced,
            month_to_date_usd: mtd,
            month_projected_usd: projected,
            prices_source: PriceTable::builtin().source.clone(),
        })
    }

    /// This month's spend so far and at its end, the rest projected at the
    /// rate of what is billing now, from a set whose last bucket is
    /// [`month_to_date`].
    pub(crate) fn month_projection(&self, set: &UsageSet, now: Millis) -> (f64, f64) {
        let by = [UsageField::Month];
        let last = set.labels.len().saturating_sub(1);
        let usage = set.grouped(&by, last..set.labels.len());
        let mtd: f64 = self
            .price_buckets(&by, &usage)
            .0
            .iter()
            .map(|r| r.usd)
            .sum();
        let per_hour: f64 = self
            .price_buckets(&by, &set.rate(&by))
            .0
            .iter()
            .map(|r| r.usd)
            .sum();
        (round(mtd, 4), round(mtd + per_hour * hours_left(now), 4))
    }

    /// One resource's ledger intervals (viewing the resource is enough).
    pub async fn ledger(&self, actor: &Actor, id: ResourceId) -> Result<Vec<Interval>, AppError> {
        let r = self.visible_resource(actor, id).await?;
        Ok(self.store.ledger_of(r.id).await?)
    }
}

/// This month's bucket, up to now (its days so far).
pub(crate) fn month_to_date(now: Millis) -> (String, Millis, Millis) {
    ("mtd".into(), month_start(now), day_floor(now) + DAY_MS)
}

/// Hours from `now` to the end of its month.
pub(crate) fn hours_left(now: Millis) -> f64 {
    (next_month_start(now) - now).max(0) as f64 / 3_600_000.0
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// A report as CSV: a header of the group-by fields, `hours` and `usd`,
/// then one line per row (unpriced usage is in the JSON form only).
pub fn spend_csv(r: &SpendReport) -> String {
    let esc = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut out = String::new();
    for f in &r.group_by {
        out.push_str(f);
        out.push(',');
    }
    out.push_str("hours,usd\n");
    for row in &r.rows {
        for f in &r.group_by {
            out.push_str(&esc(row
                .fields
                .get(f)
                .map(String::as_str)
                .unwrap_or_default()));
            out.push(',');
        }
        out.push_str(&format!("{},{}\n", row.hours, row.usd));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_days_split_at_utc_midnight() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-06T21:00:00Z")
            .unwrap()
            .timestamp_millis();
        let m = month_start(t);
        assert_eq!(skyhold_core::rfc3339(m), "2026-12-01T00:00:00Z");
        assert_eq!(
            skyhold_core::rfc3339(next_month_start(t)),
            "2027-01-01T00:00:00Z"
        );
        let b = buckets(&[UsageField::Day], t - 2 * DAY_MS, t);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].0, "2026-12-04");
        assert_eq!(b[0].1, t - 2 * DAY_MS);
        assert_eq!(b[2].2, t);
        let b = buckets(&[UsageField::Month], m - DAY_MS, t);
        assert_eq!(
            b.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            ["2026-11", "2026-12"]
        );
    }

    #[test]
    fn a_query_names_the_bad_parameter() {
        let now = 1_800_000_000_000;
        assert!(SpendQuery::parse(Some("owner,nope"), None, None, now).is_err());
        assert!(SpendQuery::parse(Some("owner,owner"), None, None, now).is_err());
        assert!(SpendQuery::parse(Some("day,month"), None, None, now).is_err());
        assert!(SpendQuery::parse(None, Some("1d"), Some("2d"), now).is_err());
        let q = SpendQuery::parse(Some("owner,account"), Some("30d"), None, now).unwrap();
        assert_eq!(q.group_by, vec![UsageField::Owner, UsageField::Account]);
        // Whole days: the day 30 days back through today.
        assert_eq!(q.to - q.from, 31 * DAY_MS);
        assert_eq!(q.from, day_floor(now - 30 * DAY_MS));
    }
}
