//! The quality table's rows appended after a commit: once each, also when a reply is lost (the append
//! carries its own commit id and a retry first looks for it).

use super::policy::CommitPolicy;
use crate::lake::catalog::Outcome;
use crate::lake::error::LakeError;
use crate::lake::files::{delete, write_data_files};
use crate::lake::stage::{commit_landed, COMMIT_ID_PROPERTY};
use crate::lake::table::Change;
use crate::lake::target::TableHandle;
use crate::quality::table::{to_batch, QualityRow, SORT_COLUMNS};

/// Appends `rows` to the quality table `handle`.
pub async fn append_quality(handle: TableHandle<'_>, policy: CommitPolicy, rows: &[QualityRow]) -> Result<(), LakeError> {
    let batch = to_batch(rows)?;
    let commit_id = uuid::Uuid::new_v4().to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let table = handle.load().await?;
        if commit_landed(table.metadata(), &commit_id) {
            return Ok(());
        }
        let prefix = format!("quality-{}", &commit_id[..8]);
        let files = write_data_files(&table, std::slice::from_ref(&batch), SORT_COLUMNS, &prefix, None).await?;
        let change = Change { files: files.clone(), summary: [(COMMIT_ID_PROPERTY.to_string(), commit_id.clone())].into(), ..Change::default() };
        let failure = match handle.commit(&table, change).await {
            Ok(Outcome::Landed { .. }) => return Ok(()),
            Ok(Outcome::Conflict) => {
                delete(&table, &files).await;
                LakeError::Conflict { table: handle.target.name.clone() }
            }
            // Whether it landed is not known: the next attempt looks for the commit id first.
            Err(e) if e.is_retryable() => e,
            Err(e) => return Err(e),
        };
        if attempt >= policy.max_attempts {
            return Err(LakeError::CommitExhausted { table: handle.target.name.clone(), attempts: attempt, source: Box::new(failure) });
        }
        tokio::time::sleep(policy.backoff(attempt)).await;
    }
}
