//! DocumentIssuer: when a document's issuance timer comes due, has the enrollment render
//! its product document (상품설명서) for the plan revision it holds and record it, in one
//! step, so a re-save in between can never pair a document with the wrong plan. Issuance
//! is durable: the timer was written with the request, so a document requested before a
//! restart is issued after it.

use super::context::Deps;
use super::enrollment::Op;
use super::error::EngineError;
use super::registry::Registry;
use crate::domain::enrollment::EnrollmentId;
use actix::prelude::*;
use std::sync::Arc;

pub struct DocumentIssuer {
    deps: Arc<Deps>,
    registry: Arc<Registry>,
}

impl DocumentIssuer {
    pub fn new(deps: Arc<Deps>, registry: Arc<Registry>) -> DocumentIssuer {
        DocumentIssuer { deps, registry }
    }
}

impl Actor for DocumentIssuer {
    type Context = Context<Self>;
}

/// Issue the document of this enrollment now.
#[derive(Message)]
#[rtype(result = "Result<(), EngineError>")]
pub struct Issue {
    pub id: EnrollmentId,
}

impl Handler<Issue> for DocumentIssuer {
    // Rendering for one enrollment must not hold up the others: not atomic.
    type Result = ResponseFuture<Result<(), EngineError>>;

    fn handle(&mut self, Issue { id }: Issue, _: &mut Context<Self>) -> Self::Result {
        let (deps, registry) = (Arc::clone(&self.deps), Arc::clone(&self.registry));
        Box::pin(async move {
            match registry.call(id, &deps, Op::IssueDocument).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    // Left to the timer: its lease runs out and it fires again.
                    tracing::debug!(enrollment = %id, error = %e, "document not issued");
                    Err(e)
                }
            }
        })
    }
}
