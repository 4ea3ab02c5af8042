//! Bearer tokens: HS256 JWTs with `sub`, `role`, `exp` and `iat` (and `nbf`, if given).
//!
//! Validation is pinned to HS256, so `alg: none` and every other algorithm are refused,
//! and `exp` is required. A token is also refused when it is not valid yet (`nbf`), is
//! issued in the future (`iat`), lives longer than the server accepts (`exp − iat` over
//! [`AuthKeys::max_lifetime`], so a token that never expires is no token), names a
//! critical header extension (`crit`: none is understood here), or has an empty subject.
//! A `customer` token's subject is its customer number; an `admin` token's subject is
//! free text (who minted it, for the log).
//!
//! No secret is built in anywhere: the key material comes from the operator
//! (`--jwt-secret`, `EZENROLL_JWT_SECRET`) or, in development mode, from
//! [`random_secret`].
//!
//! # Access rules
//!
//! - no token needed: `/livez`, `/readyz`, `POST /quotes`, `GET /products*`;
//! - admin only: `POST /products`, `PUT /products/{code}`, `POST /customers`;
//! - a customer reaches only its own customer record, enrollments (and their documents
//!   and events), mypage entries and alarms; anything else is 404, never 403, so ids of
//!   other customers do not leak. `GET /mypage` and `GET /alarms` are forced to the
//!   customer's own number; a `customerNo` query naming someone else is 404; so is
//!   `GET /events/stream`, which shows a customer only its own enrollments' events;
//! - admins reach everything.

use super::errors::{ApiError, Problem};
use crate::domain::enrollment::CustomerNo;
use dashmap::DashMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use warp::http::StatusCode;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// Tokens kept verified at most (see [`AuthKeys::verify`]); when full, the cache starts
/// over. About 300 bytes each.
pub const VERIFIED_CAPACITY: usize = 4096;

/// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds (the crate's default is 60).
const LEEWAY_SECS: u64 = 5;

/// The longest a token may live (`exp − iat`) unless the server says otherwise.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// A token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Customer,
}

/// The claims of an ezenroll token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Who is calling, once their token checked out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    Admin { sub: String },
    Customer(CustomerNo),
}

impl Principal {
    /// The one customer this principal is confined to; `None` for an admin.
    pub fn confined_to(&self) -> Option<CustomerNo> {
        match self {
            Principal::Admin { .. } => None,
            Principal::Customer(no) => Some(*no),
        }
    }

    /// Whether this principal may see the data of `owner`.
    pub fn may_see(&self, owner: CustomerNo) -> bool {
        self.confined_to().is_none_or(|me| me == owner)
    }

    /// 403 unless an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Principal::Admin { .. } => Ok(()),
            Principal::Customer(_) => Err(forbidden()),
        }
    }

    /// A short label for idempotency scopes and logs.
    pub fn label(&self) -> String {
        match self {
            Principal::Admin { sub } => format!("admin:{sub}"),
            Principal::Customer(no) => format!("customer:{no}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("the JWT secret must be at least {MIN_SECRET_LEN} bytes")]
    SecretTooShort,
    #[error("a customer token needs a customer number as its subject: {0}")]
    BadSubject(String),
    #[error("the token lifetime is out of range")]
    BadTtl,
    #[error("the token cannot be signed: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    #[error("the random secret cannot be generated: {0}")]
    Random(String),
}

/// The signing and verifying keys, derived from one secret. Clones share the cache of
/// verified tokens.
#[derive(Clone)]
pub struct AuthKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    max_lifetime: Duration,
    /// Tokens whose signature checked out: who they name and their `exp`.
    verified: Arc<DashMap<Box<str>, (Principal, u64)>>,
}

impl std::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.write_str("AuthKeys { .. }")
    }
}

impl AuthKeys {
    pub fn from_secret(secret: &[u8]) -> Result<AuthKeys, AuthError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::SecretTooShort);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Ok(AuthKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            verified: Arc::new(DashMap::new()),
        })
    }

    /// The same keys, accepting (and minting) tokens that live at most `lifetime`.
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> AuthKeys {
        self.max_lifetime = lifetime;
        self
    }

    /// The longest a token may live (`exp − iat`).
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }

    /// Signs a token for `role` and `sub`, valid for `ttl` from now.
    pub fn mint(&self, role: Role, sub: &str, ttl: Duration) -> Result<String, AuthError> {
        if role == Role::Customer {
            CustomerNo::parse(sub).map_err(AuthError::BadSubject)?;
        }
        if sub.trim().is_empty() {
            return Err(AuthError::BadSubject("the subject is empty".to_owned()));
        }
        if ttl.is_zero() || ttl > self.max_lifetime {
            return Err(AuthError::BadTtl);
        }
        let iat = now_secs();
        let exp = iat.checked_add(ttl.as_secs()).ok_or(AuthError::BadTtl)?;
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            exp,
            iat,
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(AuthError::Sign)
    }

    /// Checks a token's signature, algorithm and expiry and returns who it names.
    ///
    /// A client sends the same token with every request until it expires, and checking
    /// the signature (HMAC, base64, JSON) each time is a cost on every request. So a
    /// token whose signature checked out is remembered, byte for byte, with
    /// its principal and `exp`: the same string again skips the signature but never the
    /// expiry. Tokens that fail are not remembered. The keys never change while the
    /// process runs, so a remembered token would verify the same way again.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        self.verify_at(token, now_secs())
    }

    fn verify_at(&self, token: &str, now: u64) -> Result<Principal, ApiError> {
        if let Some(known) = self.verified.get(token) {
            let (principal, exp) = known.value();
            if now <= exp.saturating_add(LEEWAY_SECS) {
                return Ok(principal.clone());
            }
            drop(known);
            self.verified.remove(token);
            return Err(unauthorized("the token has expired"));
        }
        let (principal, exp) = self.check_signature(token, now)?;
        if self.verified.len() >= VERIFIED_CAPACITY {
            self.verified.clear();
        }
        self.verified.insert(token.into(), (principal.clone(), exp));
        Ok(principal)
    }

    /// The full check: signature, algorithm, required claims, expiry at `now`.
    fn check_signature(&self, token: &str, now: u64) -> Result<(Principal, u64), ApiError> {
        // The crate checks `exp` against the system clock; this checks it against `now`
        // too, so both paths of `verify_at` agree on one clock.
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                unauthorized(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
                    ErrorKind::InvalidSignature => "the token's signature does not verify",
                    ErrorKind::InvalidAlgorithm => "the token is not signed with HS256",
                    ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is not valid",
                })
            })?;
        if data.header.crit.is_some() {
            return Err(unauthorized(
                "the token names critical header extensions (crit); this server knows none",
            ));
        }
        let claims = data.claims;
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(unauthorized("the token has expired"));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
        {
            return Err(unauthorized("the token is not valid yet (nbf)"));
        }
        if claims.iat > now.saturating_add(LEEWAY_SECS) {
            return Err(unauthorized("the token is issued in the future (iat)"));
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime.as_secs() {
            return Err(unauthorized(&format!(
                "the token lives longer (exp − iat) than the {} s this server accepts",
                self.max_lifetime.as_secs()
            )));
        }
        if claims.sub.trim().is_empty() {
            return Err(unauthorized("the token's subject (sub) is empty"));
        }
        let principal = match claims.role {
            Role::Admin => Principal::Admin { sub: claims.sub },
            Role::Customer => CustomerNo::parse(&claims.sub)
                .map(Principal::Customer)
                .map_err(|_| unauthorized("the token's subject is not a customer number"))?,
        };
        Ok((principal, claims.exp))
    }

    /// The principal of an `Authorization` header value (`Bearer <token>`).
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, ApiError> {
        let Some(value) = header else {
            return Err(unauthorized("this resource needs a bearer token"));
        };
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header is not `Bearer <token>`"))?;
        self.verify(token)
    }
}

/// 32 random bytes from the operating system, hex-encoded (a secret for development mode).
pub fn random_secret() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 401, sent with `WWW-Authenticate: Bearer` (see [`Problem::into_response`]).
pub fn unauthorized(detail: &str) -> ApiError {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail.to_owned(),
    )
    .into()
}

/// 403: a valid token whose role may not do this.
pub fn forbidden() -> ApiError {
    Problem::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Forbidden",
        "this operation needs an admin token".to_owned(),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AuthKeys {
        AuthKeys::from_secret(b"unit-test-secret-0123456789").expect("keys")
    }

    /// A token from `k` for `role` and `sub`, valid for a minute.
    fn token(k: &AuthKeys, role: Role, sub: &str) -> String {
        k.mint(role, sub, Duration::from_secs(60)).expect("a token")
    }

    #[test]
    fn a_minted_token_verifies() {
        let k = keys();
        let t = token(&k, Role::Customer, "C000000007");
        assert_eq!(
            k.verify(&t).expect("valid"),
            Principal::Customer(CustomerNo::new(7))
        );
        let t = token(&k, Role::Admin, "ops");
        assert!(matches!(k.verify(&t), Ok(Principal::Admin { .. })));
    }

    #[test]
    fn a_remembered_token_still_expires() {
        let k = keys();
        let t = token(&k, Role::Customer, "C000000007");
        let now = now_secs();
        // Twice: the second answer comes from the cache of verified tokens.
        for _ in 0..2 {
            let principal = k.verify_at(&t, now).expect("valid");
            assert_eq!(principal, Principal::Customer(CustomerNo::new(7)));
        }
        assert_eq!(k.verified.len(), 1);
        // Within the leeway it is still good; past it, refused, and forgotten.
        assert!(k.verify_at(&t, now + 60 + LEEWAY_SECS).is_ok());
        let late = k.verify_at(&t, now + 61 + LEEWAY_SECS);
        assert!(matches!(late, Err(ApiError::Problem(p)) if p.detail.contains("expired")));
        assert!(k.verified.is_empty());
    }

    #[test]
    fn only_tokens_that_verify_are_remembered() {
        let k = keys();
        let t = token(&k, Role::Admin, "ops");
        // One character of the signature changed (not the last: it holds padding bits).
        let at = t.len() - 10;
        let swapped = if &t[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swapped}{}", &t[..at], &t[at + 1..]);
        for _ in 0..2 {
            let refused = k.verify(&forged);
            assert!(matches!(refused, Err(ApiError::Problem(p)) if p.detail.contains("signature")));
        }
        assert!(k.verified.is_empty());
        // Another secret's token is refused even after this one's was remembered.
        assert!(k.verify(&t).is_ok());
        let other = AuthKeys::from_secret(b"another-secret-0123456789").expect("keys");
        assert!(k.verify(&token(&other, Role::Admin, "ops")).is_err());
        assert_eq!(k.verified.len(), 1);
    }

    #[test]
    fn the_cache_of_verified_tokens_stays_bounded() {
        let k = keys();
        for i in 0..=VERIFIED_CAPACITY {
            assert!(
                k.verify(&token(&k, Role::Admin, &format!("ops-{i}")))
                    .is_ok()
            );
            assert!(k.verified.len() <= VERIFIED_CAPACITY);
        }
        // It started over once full: only the last token is left.
        assert_eq!(k.verified.len(), 1);
    }

    #[test]
    fn customer_tokens_need_a_customer_number() {
        assert!(
            keys()
                .mint(Role::Customer, "alice", Duration::from_secs(60))
                .is_err()
        );
    }

    /// A token from `k` with these claims and header, signed as the server signs.
    fn crafted(k: &AuthKeys, claims: &serde_json::Value, header: Header) -> String {
        jsonwebtoken::encode(&header, claims, &k.encoding).expect("a token")
    }

    fn refused_because(k: &AuthKeys, token: &str) -> String {
        match k.verify(token) {
            Err(ApiError::Problem(p)) => p.detail,
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn tokens_not_yet_valid_from_the_future_too_long_lived_critical_or_subjectless_are_refused() {
        let k = keys();
        let now = now_secs();
        let hs256 = || Header::new(Algorithm::HS256);
        let claims = |sub: &str, iat: u64, exp: u64| serde_json::json!({"sub": sub, "role": "admin", "iat": iat, "exp": exp});
        let mut early = claims("ops", now, now + 600);
        early["nbf"] = serde_json::json!(now + 3600);
        assert!(refused_because(&k, &crafted(&k, &early, hs256())).contains("nbf"));
        let ahead = claims("ops", now + 365 * 86400, now + 366 * 86400);
        assert!(refused_because(&k, &crafted(&k, &ahead, hs256())).contains("iat"));
        let forever = claims("ops", now, u64::MAX);
        assert!(refused_because(&k, &crafted(&k, &forever, hs256())).contains("longer"));
        let nobody = claims("", now, now + 600);
        assert!(refused_because(&k, &crafted(&k, &nobody, hs256())).contains("empty"));
        let mut critical = hs256();
        critical.crit = Some(vec!["exp-extension".to_owned()]);
        let fine = claims("ops", now, now + 600);
        assert!(refused_because(&k, &crafted(&k, &fine, critical)).contains("crit"));
        // The same claims with a plain header, and an nbf already past, are fine.
        let mut started = fine.clone();
        started["nbf"] = serde_json::json!(now - 10);
        assert!(k.verify(&crafted(&k, &started, hs256())).is_ok());
        // A server that accepts longer tokens says so.
        let long = claims("ops", now, now + 7 * 86400);
        assert!(k.verify(&crafted(&k, &long, hs256())).is_err());
        let lenient = keys().with_max_lifetime(Duration::from_secs(8 * 86400));
        assert!(lenient.verify(&crafted(&lenient, &long, hs256())).is_ok());
    }

    #[test]
    fn tokens_are_minted_within_the_lifetime_and_with_a_subject() {
        let k = keys();
        assert!(k.mint(Role::Admin, "", Duration::from_secs(60)).is_err());
        assert!(k.mint(Role::Admin, "ops", DEFAULT_MAX_LIFETIME).is_ok());
        assert!(
            k.mint(
                Role::Admin,
                "ops",
                DEFAULT_MAX_LIFETIME + Duration::from_secs(1)
            )
            .is_err()
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(AuthKeys::from_secret(b"short").is_err());
    }

    #[test]
    fn random_secrets_differ() {
        let a = random_secret().expect("a secret");
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_secret().expect("a secret"));
    }
}
