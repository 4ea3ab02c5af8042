//! The request a command comes from. A keyed HTTP write runs in the scope of its key's
//! digest; the command's actor runs in the same scope (the registry carries it across
//! the mailbox), and every event the command appends names it. A retry of that request
//! whose first answer was lost (its copy died before keeping it) finds the events its
//! first try made and is answered from them instead of being refused as a step already
//! taken.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static REQUEST: Option<Arc<str>>;
}

/// Runs `work` as part of request `tag`.
pub async fn scope<F: Future>(tag: Option<Arc<str>>, work: F) -> F::Output {
    REQUEST.scope(tag, work).await
}

/// The request the running command comes from, if any.
pub fn current() -> Option<Arc<str>> {
    REQUEST.try_with(Clone::clone).ok().flatten()
}

/// The tag of a keyed request: a digest of its scoped key, so events name the request
/// without carrying the key itself.
pub fn tag_of(scoped_key: &str) -> Arc<str> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(scoped_key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Arc::from(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_tag_is_seen_inside_its_scope_only() {
        assert_eq!(current(), None);
        let tag = tag_of("http:POST:/enrollments/x/document:admin:admin:k1");
        assert_eq!(tag.len(), 32);
        let seen = scope(Some(Arc::clone(&tag)), async { current() }).await;
        assert_eq!(seen, Some(tag));
        assert_eq!(current(), None);
        assert_ne!(tag_of("a"), tag_of("b"));
    }
}
