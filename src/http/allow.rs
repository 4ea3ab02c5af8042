//! The methods each path answers, for the `Allow` header of a 405 (RFC 9110 §15.5.6)
//! and for `HEAD`, which every `GET` route also answers (without a body). The routes'
//! own filters decide what runs; this table only describes them, and the HTTP tests
//! check it against them.

/// Path patterns (`*` one segment) and the methods their routes take.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/livez", &["GET"]),
    ("/readyz", &["GET"]),
    ("/metrics", &["GET"]),
    ("/openapi.json", &["GET"]),
    ("/quotes", &["POST"]),
    ("/products", &["GET", "POST"]),
    ("/products/*", &["GET", "PUT"]),
    ("/customers", &["POST"]),
    ("/customers/*", &["GET"]),
    ("/enrollments", &["GET", "POST"]),
    ("/enrollments/*", &["GET"]),
    ("/enrollments/*/plan", &["PUT"]),
    ("/enrollments/*/document", &["GET", "POST"]),
    ("/enrollments/*/documents/*", &["GET"]),
    ("/enrollments/*/events", &["GET"]),
    ("/enrollments/*/proposal", &["POST"]),
    ("/enrollments/*/payment", &["POST"]),
    ("/enrollments/*/withdrawal", &["POST"]),
    ("/mypage", &["GET"]),
    ("/mypage/*", &["GET"]),
    ("/alarms", &["GET"]),
    ("/events/stream", &["GET"]),
];

/// The methods `path` answers, as an `Allow` value (`GET, HEAD, POST`); `None` for a
/// path no route has.
pub fn allow(path: &str) -> Option<String> {
    let methods = ROUTES
        .iter()
        .find(|(pattern, _)| matches(pattern, path))
        .map(|(_, methods)| *methods)?;
    let mut out: Vec<&str> = Vec::with_capacity(methods.len() + 1);
    for m in methods {
        out.push(m);
        if *m == "GET" {
            out.push("HEAD");
        }
    }
    Some(out.join(", "))
}

fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.trim_start_matches('/').split('/');
    let mut have = path.trim_start_matches('/').split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some("*"), Some(segment)) if !segment.is_empty() => {}
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_gets_its_routes_methods_with_head_beside_get() {
        assert_eq!(allow("/enrollments").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(allow("/enrollments/abc/plan").as_deref(), Some("PUT"));
        assert_eq!(
            allow("/enrollments/abc/documents/DOC-1").as_deref(),
            Some("GET, HEAD")
        );
        assert_eq!(allow("/nothing"), None);
        assert_eq!(allow("/enrollments//plan"), None);
        assert_eq!(allow("/enrollments/a/b/c/d"), None);
    }
}
