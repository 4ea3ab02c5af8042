//! `GET /enrollments`: the read model listed page by page, most recently changed first,
//! filtered, followed by its cursor to the end, and narrowed for a customer.

use crate::support::app::*;
use ezenroll::store::Store;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// Follows `nextCursor` from `path` (which has a query) to the last page; every item.
async fn every_page(caller: &Caller, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut url = path.to_owned();
    for _ in 0..50 {
        let page = caller.get(&url).await;
        assert_eq!(page.status, 200, "{}", page.text);
        items.extend(
            page.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .cloned(),
        );
        match page.body["nextCursor"].as_str() {
            Some(cursor) => url = format!("{path}&cursor={cursor}"),
            None => {
                assert!(page.body["nextCursor"].is_null(), "{}", page.text);
                return items;
            }
        }
    }
    panic!("no last page of {path}");
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| v["enrollmentId"].as_str().expect("an id").to_owned())
        .collect()
}

pub async fn enrollments_are_listed_page_by_page(store: Arc<dyn Store>) {
    let mut app = spawn_app(store).await;
    let a_no = app.customer("목록A").await;
    let b_no = app.customer("목록B").await;
    let mut a_ids = HashSet::new();
    for _ in 0..3 {
        a_ids.insert(app.plan(&a_no).await);
    }
    let b_ids: HashSet<String> = [app.plan(&b_no).await, app.issued(&b_no).await].into();
    app.eventually("five enrollments listed, one of them issued", || async {
        let all = app.get("/enrollments?limit=100").await;
        let issued = app.get("/enrollments?status=DocumentIssued").await;
        let n = |a: &Answer| a.body["items"].as_array().map_or(0, Vec::len);
        (n(&all) == 5 && n(&issued) == 1).then_some(())
    })
    .await;

    // Pages of two, to the end: every enrollment once, most recently changed first.
    let admin = app.with_token(&admin_token());
    let listed = every_page(&admin, "/enrollments?limit=2").await;
    let listed_ids = ids(&listed);
    let unique: HashSet<String> = listed_ids.iter().cloned().collect();
    assert_eq!(listed_ids.len(), 5, "{listed_ids:?}");
    assert_eq!(unique, a_ids.union(&b_ids).cloned().collect());
    let times: Vec<&str> = listed
        .iter()
        .map(|v| v["updatedAt"].as_str().expect("updatedAt"))
        .collect();
    let mut newest_first = times.clone();
    newest_first.sort_by(|x, y| y.cmp(x));
    assert_eq!(times, newest_first);
    let first = app.get("/enrollments?limit=2").await;
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(2));
    assert!(first.body["nextCursor"].is_string(), "{}", first.text);

    // Filters.
    let of_b = every_page(&admin, &format!("/enrollments?customerNo={b_no}&limit=1")).await;
    assert_eq!(ids(&of_b).into_iter().collect::<HashSet<_>>(), b_ids);
    let issued = every_page(&admin, "/enrollments?status=DocumentIssued&limit=10").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["customerNo"], b_no.as_str());
    let term = every_page(&admin, "/enrollments?productCode=EZ-TERM&limit=3").await;
    assert_eq!(term.len(), 5);
    assert!(
        every_page(&admin, "/enrollments?productCode=EZ-WL")
            .await
            .is_empty()
    );

    // A customer sees its own, with or without naming itself; naming another is 404.
    let a = app.as_customer(&a_no);
    let mine = every_page(&a, "/enrollments?limit=2").await;
    assert_eq!(ids(&mine).into_iter().collect::<HashSet<_>>(), a_ids);
    let named = every_page(&a, &format!("/enrollments?customerNo={a_no}")).await;
    assert_eq!(named.len(), 3);
    a.get(&format!("/enrollments?customerNo={b_no}"))
        .await
        .assert_problem(404, "not-found");
    assert_eq!(app.anonymous().get("/enrollments").await.status, 401);

    // Bad queries are 400, naming what was wrong.
    for (query, names) in [
        ("cursor=garbage", "cursor"),
        ("cursor=12.not-an-id", "cursor"),
        ("status=Sleeping", "status"),
        ("limit=many", "limit"),
        ("customerNo=nobody", "customerNo"),
        ("sort=name", "sort"),
    ] {
        let answer = app.get(&format!("/enrollments?{query}")).await;
        let problem = answer.assert_problem(400, "malformed-query");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(names), "{query}: {detail}");
    }
    app.stop().await;
}
