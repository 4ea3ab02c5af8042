//! The read model: MyPage views written only forward, filtered and counted, and alarms;
//! one at a time or in batches.

use chrono::{DateTime, Utc};
use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId, Status};
use ezenroll::store::{Alarm, MyPageView, Store, ViewCursor, ViewFilter, ViewPage, ViewQuery};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

use super::fixtures::*;

pub fn view(
    id: EnrollmentId,
    customer_no: CustomerNo,
    status: Status,
    version: u64,
    updated_at: DateTime<Utc>,
) -> MyPageView {
    let plan = plan();
    MyPageView {
        enrollment_id: id,
        customer_no,
        product_code: plan.product_code,
        product_version: plan.product_version,
        product_name: plan.product_name,
        status,
        sum_insured: plan.sum_insured,
        installment: plan.quote.installment,
        payment_cycle: plan.payment_cycle,
        coverage_period: plan.coverage_period,
        payment_period: plan.payment_period.get(),
        contract_no: (status == Status::Contracted).then(|| format!("CT-{id}")),
        version,
        updated_at,
    }
}

/// Counts as a map; a backend may leave out statuses with none.
async fn counts(store: &dyn Store) -> HashMap<Status, u64> {
    let listed = store.count_by_status().await.expect("counts");
    let map: HashMap<Status, u64> = listed.iter().copied().collect();
    assert_eq!(map.len(), listed.len(), "a status is listed twice");
    map.into_iter().filter(|&(_, n)| n > 0).collect()
}

pub async fn views_are_written_only_forward(store: Arc<dyn Store>) {
    let store = &*store;
    let id = EnrollmentId::new();
    let no = CustomerNo::new(1);
    let v3 = view(id, no, Status::DocumentIssued, 3, t0() + minutes(3));
    assert_eq!(store.view(id).await.expect("view"), None);
    assert!(store.upsert_view(&v3).await.expect("upsert"));
    let v2 = view(id, no, Status::DocumentRequested, 2, t0() + minutes(2));
    assert!(
        !store.upsert_view(&v2).await.expect("upsert"),
        "older version ignored"
    );
    let mut v3_again = v3.clone();
    v3_again.product_name = "재전송".to_owned();
    assert!(
        !store.upsert_view(&v3_again).await.expect("upsert"),
        "same version ignored"
    );
    assert_eq!(store.view(id).await.expect("view"), Some(v3));
    let v5 = view(id, no, Status::Contracted, 5, t0() + minutes(5));
    assert!(store.upsert_view(&v5).await.expect("upsert"));
    assert_eq!(store.view(id).await.expect("view"), Some(v5));
    assert_eq!(
        counts(store).await,
        HashMap::from([(Status::Contracted, 1)])
    );
}

pub async fn views_filter_order_and_count(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (CustomerNo::new(1), CustomerNo::new(2));
    let at = |m: i64| t0() + minutes(m);
    let a1 = view(EnrollmentId::new(), a, Status::Planned, 1, at(1));
    let a3 = view(EnrollmentId::new(), a, Status::Contracted, 5, at(3));
    let a2 = view(EnrollmentId::new(), a, Status::Planned, 1, at(2));
    let b5 = view(EnrollmentId::new(), b, Status::Planned, 1, at(5));
    let b4 = view(EnrollmentId::new(), b, Status::Proposed, 4, at(4));
    // Same time as b5, later version: ranks before it.
    let b5_later = view(EnrollmentId::new(), b, Status::Proposed, 6, at(5));
    for v in [&a1, &a3, &a2, &b5, &b4, &b5_later] {
        assert!(store.upsert_view(v).await.expect("upsert"));
    }
    let all = ViewFilter::default();
    assert_eq!(
        store.views(all, 100).await.expect("views"),
        vec![
            b5_later.clone(),
            b5.clone(),
            b4.clone(),
            a3.clone(),
            a2.clone(),
            a1.clone()
        ]
    );
    assert_eq!(
        store.views(all, 2).await.expect("views"),
        vec![b5_later.clone(), b5.clone()]
    );
    assert!(store.views(all, 0).await.expect("views").is_empty());
    let of_a = ViewFilter {
        customer_no: Some(a),
        status: None,
    };
    assert_eq!(
        store.views(of_a, 100).await.expect("views"),
        vec![a3.clone(), a2.clone(), a1.clone()]
    );
    let planned = ViewFilter {
        customer_no: None,
        status: Some(Status::Planned),
    };
    assert_eq!(
        store.views(planned, 100).await.expect("views"),
        vec![b5.clone(), a2.clone(), a1.clone()]
    );
    let planned_of_a = ViewFilter {
        customer_no: Some(a),
        status: Some(Status::Planned),
    };
    assert_eq!(
        store.views(planned_of_a, 1).await.expect("views"),
        vec![a2.clone()]
    );
    let nobody = ViewFilter {
        customer_no: Some(CustomerNo::new(99)),
        status: None,
    };
    assert!(store.views(nobody, 100).await.expect("views").is_empty());

    assert_eq!(
        counts(store).await,
        HashMap::from([
            (Status::Planned, 3),
            (Status::Contracted, 1),
            (Status::Proposed, 2)
        ])
    );
    // A status change moves the count; a refused write does not.
    let a1_next = view(a1.enrollment_id, a, Status::DocumentRequested, 2, at(6));
    assert!(store.upsert_view(&a1_next).await.expect("upsert"));
    assert!(!store.upsert_view(&a1).await.expect("upsert"));
    assert_eq!(
        counts(store).await,
        HashMap::from([
            (Status::Planned, 2),
            (Status::DocumentRequested, 1),
            (Status::Contracted, 1),
            (Status::Proposed, 2)
        ])
    );
    assert_eq!(
        store.views(of_a, 1).await.expect("views"),
        vec![a1_next],
        "the changed view is now the most recent"
    );
}

pub async fn alarms_are_recorded_once_and_listed_newest_first(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (CustomerNo::new(1), CustomerNo::new(2));
    let alarm = |customer_no: CustomerNo, m: i64| Alarm {
        event_id: Uuid::now_v7(),
        enrollment_id: EnrollmentId::new(),
        customer_no,
        status: Status::Planned,
        message: format!("{} 알림 {m}", customer_no),
        sent_at: t0() + minutes(m),
    };
    let a1 = alarm(a, 1);
    let a3 = alarm(a, 3);
    let a2 = alarm(a, 2);
    let b4 = alarm(b, 4);
    for x in [&a1, &a3, &a2, &b4] {
        assert!(store.record_alarm(x).await.expect("record"));
    }
    let mut replay = a3.clone();
    replay.message = "다시".to_owned();
    replay.sent_at = t0() + minutes(9);
    assert!(
        !store.record_alarm(&replay).await.expect("record"),
        "one per event"
    );

    assert_eq!(
        store.alarms(Some(a), 10).await.expect("alarms"),
        vec![a3.clone(), a2.clone(), a1.clone()]
    );
    assert_eq!(
        store.alarms(None, 2).await.expect("alarms"),
        vec![b4.clone(), a3.clone()]
    );
    assert_eq!(store.alarms(None, 10).await.expect("alarms").len(), 4);
    assert!(
        store
            .alarms(Some(CustomerNo::new(99)), 10)
            .await
            .expect("alarms")
            .is_empty()
    );
}

pub async fn batches_of_alarms_and_views_behave_like_one_at_a_time(store: Arc<dyn Store>) {
    let (a, b) = (CustomerNo::new(1), CustomerNo::new(2));
    let alarm = |customer_no: CustomerNo, m: i64| Alarm {
        event_id: Uuid::now_v7(),
        enrollment_id: EnrollmentId::new(),
        customer_no,
        status: Status::Planned,
        message: format!("{customer_no} 알림 {m}"),
        sent_at: t0() + minutes(m),
    };
    let (a1, b2, a3) = (alarm(a, 1), alarm(b, 2), alarm(a, 3));
    assert!(store.record_alarm(&a1).await.expect("record"));
    let mut again = a3.clone();
    again.message = "다시".to_owned();
    assert_eq!(
        store
            .record_alarms(&[a1.clone(), b2.clone(), a3.clone(), again].map(Arc::new))
            .await
            .expect("record"),
        vec![false, true, true, false],
        "one per event, also within a batch"
    );
    assert!(store.record_alarms(&[]).await.expect("record").is_empty());
    assert_eq!(
        store.alarms(Some(a), 10).await.expect("alarms"),
        vec![a3.clone(), a1.clone()]
    );
    assert_eq!(
        store.alarms(None, 10).await.expect("alarms"),
        vec![a3, b2, a1]
    );

    let (x, y) = (EnrollmentId::new(), EnrollmentId::new());
    let x2 = view(x, a, Status::DocumentRequested, 2, t0() + minutes(2));
    assert!(store.upsert_view(&x2).await.expect("upsert"));
    let written = store
        .upsert_views(&[
            view(x, a, Status::Planned, 1, t0() + minutes(1)),
            view(y, b, Status::Planned, 1, t0() + minutes(3)),
            view(x, a, Status::Contracted, 5, t0() + minutes(5)),
            view(y, b, Status::Planned, 1, t0() + minutes(3)),
        ])
        .await
        .expect("upsert");
    assert_eq!(written, vec![false, true, true, false], "only forward");
    assert!(store.upsert_views(&[]).await.expect("upsert").is_empty());
    let x = store.view(x).await.expect("view").expect("x");
    assert_eq!((x.status, x.version), (Status::Contracted, 5));
    let counts: HashMap<Status, u64> = store
        .count_by_status()
        .await
        .expect("counts")
        .into_iter()
        .collect();
    assert_eq!(counts.get(&Status::Contracted), Some(&1));
    assert_eq!(counts.get(&Status::Planned), Some(&1));
    assert_eq!(
        counts.get(&Status::DocumentRequested).copied().unwrap_or(0),
        0
    );
    let ids: Vec<EnrollmentId> = store
        .views(ViewFilter::default(), 10)
        .await
        .expect("views")
        .iter()
        .map(|v| v.enrollment_id)
        .collect();
    assert_eq!(ids, vec![x.enrollment_id, y], "most recently changed first");
}

/// A batch of views larger than any one write of a backend (Redis writes at most 64 per
/// script call): every answer in the batch's order, each view as if written one at a
/// time, including an enrollment that comes back in a later part of the batch.
pub async fn a_large_batch_of_views_is_written_whole_and_in_order(store: Arc<dyn Store>) {
    let store = &*store;
    let ids: Vec<EnrollmentId> = (0..150).map(|_| EnrollmentId::new()).collect();
    let no = |i: usize| CustomerNo::new(1 + (i % 7) as u64);
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        batch.push(view(
            id,
            no(i),
            Status::Planned,
            1,
            t0() + minutes(i as i64),
        ));
        expected.push(true);
    }
    // Back again, well past the first parts: newer (written), the same version and older
    // (both refused).
    for (i, &id) in ids.iter().enumerate().take(40) {
        let later = t0() + minutes(1000 + i as i64);
        let (status, version, written) = match i % 3 {
            0 => (Status::DocumentRequested, 2, true),
            1 => (Status::Planned, 1, false),
            _ => (Status::Withdrawn, 0, false),
        };
        batch.push(view(id, no(i), status, version, later));
        expected.push(written);
    }
    let written = store.upsert_views(&batch).await.expect("upsert");
    assert_eq!(
        written, expected,
        "one answer per view, in the batch's order"
    );
    for (i, &id) in ids.iter().enumerate() {
        let stored = store.view(id).await.expect("view").expect("written");
        let version = if i < 40 && i % 3 == 0 { 2 } else { 1 };
        assert_eq!(stored.version, version, "view {i}");
    }
    let moved = (0..40).filter(|i| i % 3 == 0).count() as u64;
    assert_eq!(
        counts(store).await,
        HashMap::from([
            (Status::Planned, ids.len() as u64 - moved),
            (Status::DocumentRequested, moved),
        ])
    );
    let listed = store
        .views(ViewFilter::default(), 1000)
        .await
        .expect("views");
    assert_eq!(listed.len(), ids.len(), "every enrollment listed once");
}

/// Every page, from the first to the one without a next cursor, of `query` with `limit`.
async fn all_pages(store: &dyn Store, query: &ViewQuery, limit: usize) -> Vec<MyPageView> {
    let mut listed = Vec::new();
    let mut query = ViewQuery {
        limit,
        ..query.clone()
    };
    for _ in 0..100 {
        let page = store.view_page(&query).await.expect("a page");
        assert!(page.views.len() <= limit, "{} > {limit}", page.views.len());
        listed.extend(page.views);
        match page.next {
            Some(next) => {
                assert!(
                    query.after.is_none_or(|after| next < after),
                    "the cursor moves on"
                );
                query.after = Some(next);
            }
            None => return listed,
        }
    }
    panic!("no last page after 100 pages");
}

pub async fn views_are_listed_page_by_page(store: Arc<dyn Store>) {
    let store = &*store;
    let (a, b) = (CustomerNo::new(1), CustomerNo::new(2));
    let mut views = Vec::new();
    for k in 0..13i64 {
        let customer = if k % 3 == 0 { b } else { a };
        let status = [Status::Planned, Status::Contracted, Status::Withdrawn][(k % 3) as usize];
        // Pairs changed in the same microsecond: the enrollment id orders them.
        let mut v = view(
            EnrollmentId::new(),
            customer,
            status,
            1,
            t0() + minutes(k / 2),
        );
        if k % 4 == 0 {
            v.product_code = "EZ-WL".to_owned();
        }
        views.push(v);
    }
    assert!(
        store
            .upsert_views(&views)
            .await
            .expect("upsert")
            .iter()
            .all(|&new| new)
    );
    let order = |v: &MyPageView| Reverse(ViewCursor::of(v));
    let expect = |keep: &dyn Fn(&MyPageView) -> bool| {
        let mut wanted: Vec<MyPageView> = views.iter().filter(|v| keep(v)).cloned().collect();
        wanted.sort_by_key(order);
        wanted
    };

    let everything = ViewQuery::default();
    assert_eq!(all_pages(store, &everything, 100).await, expect(&|_| true));
    for limit in [1, 3, 5] {
        assert_eq!(
            all_pages(store, &everything, limit).await,
            expect(&|_| true),
            "pages of {limit}"
        );
    }
    let first = store
        .view_page(&ViewQuery {
            limit: 4,
            ..ViewQuery::default()
        })
        .await
        .expect("a page");
    assert_eq!(first.views, expect(&|_| true)[..4]);
    assert_eq!(first.next, Some(ViewCursor::of(&first.views[3])));

    let of_b = ViewQuery {
        customer_no: Some(b),
        ..ViewQuery::default()
    };
    assert_eq!(
        all_pages(store, &of_b, 2).await,
        expect(&|v| v.customer_no == b)
    );
    let contracted = ViewQuery {
        status: Some(Status::Contracted),
        ..ViewQuery::default()
    };
    assert_eq!(
        all_pages(store, &contracted, 2).await,
        expect(&|v| v.status == Status::Contracted)
    );
    let whole_life_of_a = ViewQuery {
        customer_no: Some(a),
        product_code: Some("EZ-WL".to_owned()),
        ..ViewQuery::default()
    };
    let listed = all_pages(store, &whole_life_of_a, 2).await;
    assert_eq!(
        listed,
        expect(&|v| v.customer_no == a && v.product_code == "EZ-WL")
    );
    assert!(!listed.is_empty());
    let nothing = ViewQuery {
        product_code: Some("EZ-NONE".to_owned()),
        ..ViewQuery::default()
    };
    assert!(all_pages(store, &nothing, 5).await.is_empty());

    // After the last view there is nothing; a page of none asks for nothing.
    let oldest = expect(&|_| true).last().cloned().expect("views");
    let past_the_end = ViewQuery {
        after: Some(ViewCursor::of(&oldest)),
        limit: 10,
        ..ViewQuery::default()
    };
    assert_eq!(
        store.view_page(&past_the_end).await.expect("a page"),
        ViewPage::default()
    );
    let none = ViewQuery {
        limit: 0,
        ..ViewQuery::default()
    };
    assert!(
        store
            .view_page(&none)
            .await
            .expect("a page")
            .views
            .is_empty()
    );
}
