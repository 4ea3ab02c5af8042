//! Retention of the Redis read model: a customer keeps a bounded number of alarms, and the
//! global alarm and view indexes keep their newest entries, so nothing of it grows forever.
//! Each test runs on a redis-server of its own (or, with `REDIS_URL`, under a prefix of
//! its own) with small caps.

use crate::store_contract;
use crate::support::redis_fixture;

use chrono::TimeDelta;
use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId, Status};
use ezenroll::store::redis::{RedisConfig, RedisStore};
use ezenroll::store::{Alarm, ReadModelStore, ViewFilter};
use redis_fixture::TestRedis;
use std::sync::Arc;
use store_contract::{t0, view};
use uuid::Uuid;

/// A store with the given caps (alarms per customer, alarm index, view index), and a
/// plain client on the same server with the key prefix.
async fn store_with(
    alarms_per_customer: u64,
    alarm_index: u64,
    view_index: u64,
) -> (RedisStore, redis::aio::MultiplexedConnection, String) {
    let redis = TestRedis::new();
    let prefix = redis.prefix().to_owned();
    let con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let config = RedisConfig::new(redis.url())
        .with_prefix(&prefix)
        .with_partitions(1)
        .with_retention(alarms_per_customer, alarm_index, view_index);
    let store = RedisStore::connect(config)
        .await
        .expect("connect")
        .with_guard(redis);
    (store, con, prefix)
}

fn alarm(customer_no: CustomerNo, m: i64) -> Alarm {
    Alarm {
        event_id: Uuid::now_v7(),
        enrollment_id: EnrollmentId::new(),
        customer_no,
        status: Status::Planned,
        message: format!("{customer_no} 알림 {m}"),
        sent_at: t0() + TimeDelta::minutes(m),
    }
}

async fn count(con: &mut redis::aio::MultiplexedConnection, command: &str, key: &str) -> u64 {
    redis::cmd(command)
        .arg(key)
        .query_async(con)
        .await
        .expect(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_keeps_the_newest_alarms_up_to_the_cap() {
    let (store, mut con, prefix) = store_with(3, 1000, 1000).await;
    let (a, b) = (CustomerNo::new(1), CustomerNo::new(2));
    // Recorded out of time order, one at a time and in a batch: the cap keeps the newest
    // by sent time, not the last recorded.
    let a_alarms: Vec<Alarm> = [5, 1, 7, 3, 6, 2]
        .into_iter()
        .map(|m| alarm(a, m))
        .collect();
    for x in &a_alarms[..2] {
        assert!(store.record_alarm(x).await.expect("record"));
    }
    let batch: Vec<Arc<Alarm>> = a_alarms[2..].iter().cloned().map(Arc::new).collect();
    let b1 = alarm(b, 4);
    assert!(store.record_alarm(&b1).await.expect("record"));
    assert_eq!(
        store.record_alarms(&batch).await.expect("record"),
        vec![true; 4]
    );

    let newest: Vec<Alarm> = [7, 6, 5]
        .into_iter()
        .map(|m| {
            a_alarms
                .iter()
                .find(|x| x.sent_at == t0() + TimeDelta::minutes(m))
                .cloned()
        })
        .collect::<Option<_>>()
        .expect("recorded");
    assert_eq!(store.alarms(Some(a), 10).await.expect("alarms"), newest);
    assert_eq!(
        count(&mut con, "HLEN", &format!("{prefix}{{rm}}:alarms:of:{a}")).await,
        3,
        "the dropped alarms are gone from Redis, not only from the answer"
    );
    // Another customer's alarms are not touched by a's cap.
    assert_eq!(
        store.alarms(Some(b), 10).await.expect("alarms"),
        vec![b1.clone()]
    );
    // The global list skips what a customer no longer keeps.
    let all = store.alarms(None, 10).await.expect("alarms");
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], newest[0]);
    assert!(all.contains(&b1));
    // Still once per event for what is kept.
    assert!(!store.record_alarm(&newest[0]).await.expect("record"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_index_keeps_its_newest_entries() {
    let (store, mut con, prefix) = store_with(100, 4, 1000).await;
    let alarms: Vec<Arc<Alarm>> = (1..=10)
        .map(|m| Arc::new(alarm(CustomerNo::new(1 + m as u64 % 3), m)))
        .collect();
    for chunk in alarms.chunks(3) {
        store.record_alarms(chunk).await.expect("record");
    }
    assert_eq!(
        count(&mut con, "ZCARD", &format!("{prefix}{{rm}}:alarm-index")).await,
        4
    );
    let expected: Vec<Alarm> = alarms.iter().rev().take(4).map(|a| (**a).clone()).collect();
    assert_eq!(store.alarms(None, 10).await.expect("alarms"), expected);
    // A customer still sees its own alarms beyond the global index.
    assert_eq!(
        store
            .alarms(Some(CustomerNo::new(1)), 10)
            .await
            .expect("alarms")
            .len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_index_keeps_the_most_recently_changed() {
    let (store, mut con, prefix) = store_with(100, 1000, 3).await;
    let a = CustomerNo::new(1);
    let ids: Vec<EnrollmentId> = (0..5).map(|_| EnrollmentId::new()).collect();
    for (m, &id) in ids.iter().enumerate() {
        let v = view(
            id,
            a,
            Status::Planned,
            1,
            t0() + TimeDelta::minutes(m as i64),
        );
        assert!(store.upsert_view(&v).await.expect("upsert"));
    }
    // The oldest view changes again: it is among the most recent now.
    let again = view(
        ids[0],
        a,
        Status::DocumentRequested,
        2,
        t0() + TimeDelta::minutes(9),
    );
    assert!(store.upsert_view(&again).await.expect("upsert"));
    assert_eq!(
        count(&mut con, "ZCARD", &format!("{prefix}{{rm}}:views")).await,
        3
    );
    let listed: Vec<EnrollmentId> = store
        .views(ViewFilter::default(), 10)
        .await
        .expect("views")
        .into_iter()
        .map(|v| v.enrollment_id)
        .collect();
    assert_eq!(listed, vec![ids[0], ids[4], ids[3]]);
    // The views themselves, the customer's index and the counts are all kept.
    let of_a = ViewFilter {
        customer_no: Some(a),
        ..ViewFilter::default()
    };
    assert_eq!(store.views(of_a, 10).await.expect("views").len(), 5);
    assert!(store.view(ids[1]).await.expect("view").is_some());
    let counts = store.count_by_status().await.expect("counts");
    assert!(counts.contains(&(Status::Planned, 4)));
    assert!(counts.contains(&(Status::DocumentRequested, 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_follow_views_moving_within_one_batch() {
    let (store, _con, _prefix) = store_with(100, 1000, 1000).await;
    let a = CustomerNo::new(1);
    let (x, y) = (EnrollmentId::new(), EnrollmentId::new());
    let written = store
        .upsert_views(&[
            view(x, a, Status::Planned, 1, t0()),
            view(
                x,
                a,
                Status::DocumentRequested,
                2,
                t0() + TimeDelta::minutes(1),
            ),
            view(y, a, Status::Planned, 1, t0()),
            view(
                x,
                a,
                Status::DocumentIssued,
                3,
                t0() + TimeDelta::minutes(2),
            ),
            view(x, a, Status::Planned, 1, t0()),
        ])
        .await
        .expect("upsert");
    assert_eq!(written, vec![true, true, true, true, false]);
    let counts = store.count_by_status().await.expect("counts");
    assert!(counts.contains(&(Status::Planned, 1)), "{counts:?}");
    assert!(
        counts.contains(&(Status::DocumentRequested, 0)),
        "{counts:?}"
    );
    assert!(counts.contains(&(Status::DocumentIssued, 1)), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_below_one_is_refused() {
    let redis = TestRedis::new();
    let config = RedisConfig::new(redis.url())
        .with_prefix(redis.prefix())
        .with_retention(0, 10, 10);
    let err = RedisStore::connect(config)
        .await
        .expect_err("a cap of 0 keeps nothing");
    assert!(err.to_string().contains("at least 1"), "{err}");
}
