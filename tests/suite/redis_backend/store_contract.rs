//! The store contract (tests/suite/store_contract) against the Redis backend: the very
//! checks the memory backend passes, each on its own redis-server started for it (or, with
//! `REDIS_URL`, on that server under a key prefix of its own).

use crate::store_contract;
use crate::support::redis_fixture;

use ezenroll::store::Store;
use ezenroll::store::redis::{RedisConfig, RedisStore};
use redis_fixture::TestRedis;
use std::sync::Arc;

/// A store on a fresh Redis; the server lives as long as the store.
async fn redis_store() -> (Arc<RedisStore>, String) {
    redis_fixture::ezenroll_store(4).await
}

async fn redis() -> Arc<dyn Store> {
    redis_store().await.0
}

store_contract_suite!(store_contract, redis().await);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_snapshot_is_an_error() {
    let (store, url) = redis_store().await;
    let keys = Arc::clone(&store);
    store_contract::corrupt_snapshot_is_an_error(store, |id| async move {
        super::corrupt_snapshot(&url, &keys.enrollment_key(id)).await;
    })
    .await;
}

/// Partitioning changes nothing: the log checks again with one partition and with many.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_contract_holds_for_any_partition_count() {
    for partitions in [1, 7] {
        let make =
            || async move { redis_fixture::ezenroll_store(partitions).await.0 as Arc<dyn Store> };
        store_contract::events_reach_their_partition_once(make().await).await;
        store_contract::consumers_of_a_group_share_entries(make().await).await;
        store_contract::lag_counts_unread_and_pending(make().await).await;
        store_contract::timers_claim_lease_move_and_cancel(make().await).await;
    }
}

/// Compaction drops what every group has acknowledged and keeps what any group still
/// needs: unread entries and pending ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_keeps_what_a_group_still_needs() {
    use ezenroll::store::EventLog;
    use std::time::Duration;
    let redis = TestRedis::new();
    let client = redis.client();
    let config = RedisConfig::new(redis.url())
        .with_prefix(redis.prefix())
        .with_partitions(1);
    let stream = format!("{}{{p0}}:log", redis.prefix());
    let store = RedisStore::connect(config)
        .await
        .expect("connect")
        .with_guard(redis);
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut xlen = async || -> u64 {
        redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut con)
            .await
            .expect("XLEN")
    };

    assert_eq!(store.compact().await.expect("compact"), 0, "no log yet");
    store_contract::saved_plans(&store, 2).await;
    assert_eq!(
        store.compact().await.expect("compact"),
        0,
        "a log without groups is left alone"
    );
    store.ensure_group("a").await.expect("group");
    store.ensure_group("b").await.expect("group");
    store_contract::saved_plans(&store, 3).await;
    assert_eq!(xlen().await, 5);

    let a = store_contract::drain(&store, "a", "x", 10).await;
    store
        .ack("a", &store_contract::refs(&a))
        .await
        .expect("ack");
    let b = store
        .read_group("b", "y", 2, Duration::ZERO)
        .await
        .expect("read");
    store
        .ack("b", &store_contract::refs(&b))
        .await
        .expect("ack");
    // b handled two of five: the first goes, b's last handled one and the rest stay.
    assert_eq!(store.compact().await.expect("compact"), 1);
    assert_eq!(xlen().await, 4);
    assert_eq!(store.lag("b").await.expect("lag"), 3);

    // A pending entry is kept even when every group has moved past it.
    let pending = store
        .read_group("b", "y", 1, Duration::ZERO)
        .await
        .expect("read");
    let rest = store_contract::drain(&store, "b", "y", 10).await;
    store
        .ack("b", &store_contract::refs(&rest))
        .await
        .expect("ack");
    store.compact().await.expect("compact");
    let claimed = store
        .claim_stale("b", "z", Duration::ZERO, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].envelope, pending[0].envelope, "still there");

    store
        .ack("b", &store_contract::refs(&claimed))
        .await
        .expect("ack");
    store.compact().await.expect("compact");
    assert_eq!(xlen().await, 1, "only the last delivered entry is kept");
    assert_eq!(store.lag("a").await.expect("lag"), 0);
    assert_eq!(store.lag("b").await.expect("lag"), 0);
}

/// A consumer told to stop while its blocking read is out: the read is still waiting in
/// Redis, and an append that comes now is delivered to it (into this consumer's pending
/// list). It is handled before the consumer stops, not dropped with the answer (it would
/// wait for another consumer's claim, after `claim_idle`, past the shutdown).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_consumer_stopped_during_a_blocked_read_handles_what_it_read() {
    use async_trait::async_trait;
    use ezenroll::actors::consumers::{self, ConsumerConfig, EventHandler};
    use ezenroll::store::EventEnvelope;
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct Seen(Mutex<Vec<uuid::Uuid>>);

    #[async_trait]
    impl EventHandler for Seen {
        async fn handle(&self, event: &EventEnvelope) -> Result<(), String> {
            self.0.lock().map_err(|e| e.to_string())?.push(event.id);
            Ok(())
        }
    }

    const GROUPS: [&str; 3] = ["stop-0", "stop-1", "stop-2"];
    let store = redis().await;
    for group in GROUPS {
        let seen = Arc::new(Seen::default());
        let config = ConsumerConfig {
            block: Duration::from_secs(2),
            claim_every: Duration::from_secs(3600),
            flush_timeout: Duration::from_secs(5),
            ..ConsumerConfig::default()
        };
        let handle = consumers::start(
            Arc::clone(&store),
            group,
            format!("{group}-consumer"),
            Arc::clone(&seen) as Arc<dyn EventHandler>,
            config,
        )
        .await
        .expect("the consumer starts");
        // Blocked in XREADGROUP by now.
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.signal_stop();
        let appended = store_contract::saved_plans(store.as_ref(), 1).await;
        handle.stop().await;
        let seen = seen.0.lock().expect("seen").clone();
        let ids: Vec<uuid::Uuid> = appended.iter().map(|e| e.id).collect();
        assert!(
            ids.iter().all(|id| seen.contains(id)),
            "{group}: appended {ids:?}, handled before stopping {seen:?}"
        );
    }
}

/// A stream entry holds its event only. An entry in the older layout also holds the
/// snapshot its append wrote (field `s`) and is read with that state, which the
/// MyPage projector uses instead of reading the enrollment back; entries claimed from a
/// dead consumer carry none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entries_carry_their_event_and_old_ones_also_their_state() {
    use ezenroll::domain::enrollment::CustomerNo;
    use ezenroll::store::{EnrollmentStore, EventLog};
    use std::time::Duration;
    use store_contract::{JOURNEY, Journey};

    let (store, url) = redis_store().await;
    store.ensure_group("g").await.expect("group");
    let mut journey = Journey::new(CustomerNo::new(8));
    let mut versions = Vec::new();
    for &step in &JOURNEY[..5] {
        journey.commit(&*store, step, &[]).await;
        versions.push(journey.version);
    }
    let read = store
        .read_group("g", "a", 10, Duration::ZERO)
        .await
        .expect("read");
    let read_versions: Vec<u64> = read.iter().map(|d| d.envelope.version).collect();
    assert_eq!(read_versions, versions);
    assert!(read.iter().all(|d| d.state.is_none()), "the event only");

    // The last append again in the older layout: the event and the snapshot.
    let id = journey.id;
    let key = store.enrollment_key(id);
    let log = key.replace(&format!(":enr:{id}"), ":log");
    let history = store.history(id).await.expect("history");
    let last = history.last().expect("an event");
    let client = redis::Client::open(url).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let snapshot: Vec<u8> = redis::cmd("HGET")
        .arg(&key)
        .arg("s")
        .query_async(&mut con)
        .await
        .expect("HGET");
    let _: String = redis::cmd("XADD")
        .arg(&log)
        .arg("*")
        .arg("e")
        .arg(serde_json::to_string(last).expect("JSON"))
        .arg("s")
        .arg(snapshot)
        .query_async(&mut con)
        .await
        .expect("XADD");
    let old = store
        .read_group("g", "a", 10, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(old.len(), 1);
    let carried = old[0]
        .state
        .as_ref()
        .expect("an entry in the older layout carries its state")
        .decode()
        .expect("decodes");
    let (_, stored) = store.load(id).await.expect("load").expect("stored");
    assert_eq!(carried, *stored, "the state at version {}", last.version);

    // Claimed again after the consumer "died": the event only.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let claimed = store
        .claim_stale("g", "b", Duration::from_millis(10), 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 6);
    assert!(claimed.iter().all(|d| d.state.is_none()));
}

/// The crash a keyed registration guards against: the first try linked its request to a
/// number and died before writing the customer. A restarted server (nothing cached)
/// retrying the request registers the customer under that number, not a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyed_registration_cut_short_is_finished_under_its_number() {
    use ezenroll::store::CustomerStore;
    let redis = TestRedis::new();
    let connect = || {
        RedisStore::connect(
            RedisConfig::new(redis.url())
                .with_prefix(redis.prefix())
                .with_partitions(4),
        )
    };
    async fn register(
        store: &RedisStore,
    ) -> ezenroll::store::StoreResult<ezenroll::domain::customer::Customer> {
        store
            .create_customer_for(
                "POST /customers cut-short",
                store_contract::new_customer("김보험"),
                store_contract::t0(),
                std::time::Duration::from_secs(60),
            )
            .await
    }
    let first = connect().await.expect("connect");
    let registered = register(&first).await.expect("create");
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let removed: u64 = redis::cmd("DEL")
        .arg(redis.key(&format!("customer:{}", registered.customer_no)))
        .query_async(&mut con)
        .await
        .expect("DEL");
    assert_eq!(
        removed, 1,
        "the customer record is where the store keeps it"
    );

    let restarted = connect().await.expect("connect again");
    let retried = register(&restarted).await.expect("retry");
    assert_eq!(retried.customer_no, registered.customer_no);
    assert_eq!(
        restarted
            .customer(registered.customer_no)
            .await
            .expect("read"),
        Some(retried)
    );
    let next = restarted
        .create_customer(store_contract::new_customer("이가입"), store_contract::t0())
        .await
        .expect("create");
    assert_eq!(next.customer_no.get(), registered.customer_no.get() + 1);
}

/// Alarms are kept as `<sent at, µs> <status> <enrollment id> <message>` (the event id is
/// the field, the customer the key); ones kept as `<sent at, µs> <JSON>` before are still
/// read, per customer and in the global listing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alarms_are_kept_compact_and_old_ones_still_read() {
    use chrono::{DateTime, Utc};
    use ezenroll::domain::enrollment::{CustomerNo, EnrollmentId, Status};
    use ezenroll::store::{Alarm, ReadModelStore};

    let redis = TestRedis::new();
    let store = RedisStore::connect(
        RedisConfig::new(redis.url())
            .with_prefix(redis.prefix())
            .with_partitions(4),
    )
    .await
    .expect("connect");
    let customer = CustomerNo::new(42);
    let at = |s: i64| DateTime::<Utc>::from_timestamp_micros(1_790_000_000_000_000 + s * 1_000_000);
    let alarm = |status, message: &str, s| Alarm {
        event_id: uuid::Uuid::now_v7(),
        enrollment_id: EnrollmentId::new(),
        customer_no: customer,
        status,
        message: message.to_owned(),
        sent_at: at(s).expect("a time"),
    };
    let new = alarm(
        Status::Proposed,
        "[이지보험] 김이지님, 청약이 접수되었습니다.\n▶ 끝",
        2,
    );
    assert!(store.record_alarm(&new).await.expect("record"));
    let mut con = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let hash = redis.key(&format!("{{rm}}:alarms:of:{customer}"));
    let raw: String = redis::cmd("HGET")
        .arg(&hash)
        .arg(new.event_id.to_string())
        .query_async(&mut con)
        .await
        .expect("HGET");
    assert_eq!(
        raw,
        format!(
            "{} Proposed {} {}",
            new.sent_at.timestamp_micros(),
            new.enrollment_id,
            new.message
        )
    );

    // One kept the old way, as the store wrote it before.
    let old = alarm(
        Status::Planned,
        "[이지보험] 김이지님, 가입설계가 저장되었습니다.",
        1,
    );
    let json = serde_json::to_string(&old).expect("JSON");
    let micros = old.sent_at.timestamp_micros();
    let _: () = redis::cmd("HSET")
        .arg(&hash)
        .arg(old.event_id.to_string())
        .arg(format!("{micros} {json}"))
        .query_async(&mut con)
        .await
        .expect("HSET");
    let _: () = redis::cmd("ZADD")
        .arg(redis.key("{rm}:alarm-index"))
        .arg(micros)
        .arg(format!("{customer}:{}", old.event_id))
        .query_async(&mut con)
        .await
        .expect("ZADD");

    let expected = vec![new.clone(), old.clone()];
    assert_eq!(
        store
            .alarms(Some(customer), 10)
            .await
            .expect("per customer"),
        expected
    );
    assert_eq!(store.alarms(None, 10).await.expect("all"), expected);
    assert_eq!(store.alarms(None, 1).await.expect("the newest"), vec![new]);
}
