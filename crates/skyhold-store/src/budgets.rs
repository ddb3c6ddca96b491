//! Money budgets (`budgets`): a monthly spend limit per subject (a user,
//! a group, or the default for each), each change audited in its
//! transaction. What counts against them is the ledger's (`ledger.rs`).

use crate::audit::append_audit;
use crate::{on_pool, BeginWrite, Result, Store, StoreError};
use skyhold_core::audit::AuditDraft;
use skyhold_core::Millis;
use sqlx::Row;

/// One stored budget.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BudgetRow {
    /// `user:NAME`, `group:NAME`, `default:user`, `default:group`.
    pub subject: String,
    pub monthly_usd: f64,
    /// `warn`, `block` or `stop`.
    pub on_exceed: String,
    pub updated_at: Millis,
    pub updated_by: String,
}

impl Store {
    /// Sets a budget (new or replacing one), audited.
    pub async fn set_budget(&self, b: &BudgetRow, audit: &AuditDraft) -> Result<Option<BudgetRow>> {
        let old = self.budget(&b.subject).await?;
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            sqlx::query(
                "INSERT INTO budgets (subject, monthly_usd, on_exceed, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject) DO UPDATE SET \
                 monthly_usd = excluded.monthly_usd, on_exceed = excluded.on_exceed, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(&b.subject)
            .bind(b.monthly_usd)
            .bind(&b.on_exceed)
            .bind(b.updated_at)
            .bind(&b.updated_by)
            .execute(&mut *tx)
            .await?;
            let mut d = audit.clone();
            d.old = old.as_ref().map(|o| serde_json::to_value(o).unwrap_or_default());
            append_audit!(tx, &d);
            tx.commit().await?;
            Ok(old)
        })
    }

    /// Removes a budget. `NotFound` if there is none.
    pub async fn delete_budget(&self, subject: &str, audit: &AuditDraft) -> Result<()> {
        on_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let r = sqlx::query("DELETE FROM budgets WHERE subject = $1")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            append_audit!(tx, audit);
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn budget(&self, subject: &str) -> Result<Option<BudgetRow>> {
        Ok(self
            .budgets()
            .await?
            .into_iter()
            .find(|b| b.subject == subject))
    }

    /// Every budget, defaults first, then by subject.
    pub async fn budgets(&self) -> Result<Vec<BudgetRow>> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT subject, monthly_usd, on_exceed, updated_at, updated_by FROM budgets \
                 ORDER BY CASE WHEN subject LIKE 'default:%' THEN 0 ELSE 1 END, subject",
            )
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(BudgetRow {
                        subject: r.try_get("subject")?,
                        monthly_usd: r.try_get("monthly_usd")?,
                        on_exceed: r.try_get("on_exceed")?,
                        updated_at: r.try_get("updated_at")?,
                        updated_by: r.try_get("updated_by")?,
                    })
                })
                .collect()
        })
    }
}
