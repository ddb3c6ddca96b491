//! Imported prices (`prices`): what an operator loaded from an AWS price
//! list offer file, over the shipped table and under the config's
//! `[[prices]]`.

use crate::{on_pool, BeginWrite, Result, Store};
use skyhold_core::Millis;
use sqlx::Row;

/// One imported price.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    pub product: String,
    pub region: String,
    pub rtype: String,
    pub usd: f64,
}

impl Store {
    /// Upserts `rows` (from `source`) in one transaction; returns how many.
    pub async fn import_prices(
        &self,
        rows: &[PriceRow],
        source: &str,
        now: Millis,
    ) -> Result<usize> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            for chunk in rows.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO prices (product, region, rtype, usd, source, imported_at) ",
                );
                qb.push_values(chunk, |mut b, r| {
                    b.push_bind(&r.product)
                        .push_bind(&r.region)
                        .push_bind(&r.rtype)
                        .push_bind(r.usd)
                        .push_bind(source)
                        .push_bind(now);
                });
                qb.push(
                    " ON CONFLICT (product, region, rtype) DO UPDATE SET usd = excluded.usd, \
                     source = excluded.source, imported_at = excluded.imported_at",
                );
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(rows.len())
        })
    }

    /// Every imported price.
    pub async fn imported_prices(&self) -> Result<Vec<PriceRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query("SELECT product, region, rtype, usd FROM prices")
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(PriceRow {
                        product: r.try_get("product")?,
                        region: r.try_get("region")?,
                        rtype: r.try_get("rtype")?,
                        usd: r.try_get("usd")?,
                    })
                })
                .collect()
        })
    }
}
