//! Loading an enrollment, whatever snapshot format it was stored in: a format-1 or
//! format-2 snapshot's document text is moved to where format 3 keeps it (`doc:<number>`)
//! as it is read, so it outlives the snapshot the next append replaces.

use super::keys::document_field;
use super::store::RedisStore;
use crate::domain::enrollment::{Enrollment, EnrollmentId, ProductDocument};
use crate::store::codec;
use crate::store::error::{StoreError, StoreResult};
use std::sync::Arc;

impl RedisStore {
    /// One enrollment: `v` and `s` (and, for a format-2 snapshot with a document, `d`,
    /// where format 2 kept its text).
    pub(super) async fn load_state(
        &self,
        id: EnrollmentId,
    ) -> StoreResult<Option<(u64, Arc<Enrollment>)>> {
        let key = self.enrollment_key(id);
        let (version, snapshot): (Option<u64>, Option<Vec<u8>>) = self
            .query(redis::cmd("HMGET").arg(&key).arg("v").arg("s"))
            .await?;
        match (version, snapshot) {
            (None, None) => Ok(None),
            (Some(version), Some(bytes)) => {
                let old_document: Option<Vec<u8>> = if codec::needs_old_document(&bytes) {
                    self.query(redis::cmd("HGET").arg(&key).arg("d")).await?
                } else {
                    None
                };
                let stored = codec::decode_stored(&key, &bytes, old_document.as_deref())?;
                if let Some(document) = &stored.old_document {
                    self.keep_old_document(&key, id, document).await?;
                }
                Ok(Some((version, Arc::new(stored.state))))
            }
            _ => Err(StoreError::Corrupt {
                key,
                reason: "the record lacks its version or its snapshot".to_owned(),
            }),
        }
    }

    /// The text of a document that a format-1 snapshot held or format 2 kept in `d`,
    /// stored where format 3 keeps it (`doc:<number>`), before an append replaces that
    /// snapshot with a format-3 one that only names it. Idempotent (HSETNX), so any
    /// reader may do it.
    pub(super) async fn keep_old_document(
        &self,
        key: &str,
        id: EnrollmentId,
        document: &ProductDocument,
    ) -> StoreResult<()> {
        let bytes = codec::encode_document(id, document)?;
        let _: i64 = self
            .query(
                redis::cmd("HSETNX")
                    .arg(key)
                    .arg(document_field(&document.document_no))
                    .arg(bytes),
            )
            .await?;
        Ok(())
    }
}
