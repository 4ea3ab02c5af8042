//! Consumers caught up, and peeking into Redis for what they left.

use crate::procs::Ezenroll;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crate::LIST;
use crate::driver::*;

/// What the alarm channel must have done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// A notifier was killed: an alarm recorded just before the kill may never have gone
    /// out, but none went out twice.
    AtMostOnce,
    /// Every recorded alarm went out, once.
    ExactlyOnce,
}

/// Waits until the consumers have caught up with `ids` (whose statuses must be final) and
/// checks the alarms: MyPage shows each enrollment at its status and version; there is
/// exactly one alarm per event of these enrollments and no other; the notifiers' logs show
/// each delivered at most (or exactly) once. Returns the alarms delivered per notifier.
pub(crate) async fn assert_caught_up(
    d: &Driver,
    ids: &[String],
    notifiers: &[&Ezenroll],
    delivery: Delivery,
) -> Vec<usize> {
    let mut truth: BTreeMap<String, (String, u64)> = BTreeMap::new();
    let mut events: HashMap<String, String> = HashMap::new();
    for id in ids {
        let (status, version) = d.status(id).await;
        let history = d.history(id).await;
        assert_eq!(history.len() as u64, version, "{id}: history vs version");
        for e in history {
            let event = e["id"].as_str().expect("an event id").to_owned();
            events.insert(event, id.clone());
        }
        truth.insert(id.clone(), (status, version));
    }

    eventually(
        "MyPage to show every enrollment's latest status",
        || async {
            let a = d.get(&format!("/mypage?limit={LIST}")).await;
            if a.status != 200 {
                return Err(a.text);
            }
            let seen: BTreeMap<String, (String, u64)> = a
                .body
                .as_array()
                .expect("a list of views")
                .iter()
                .map(|v| {
                    (
                        v["enrollmentId"].as_str().unwrap_or_default().to_owned(),
                        (
                            v["status"].as_str().unwrap_or_default().to_owned(),
                            v["version"].as_u64().unwrap_or_default(),
                        ),
                    )
                })
                .collect();
            let behind: Vec<String> = truth
                .iter()
                .filter(|(id, t)| seen.get(*id) != Some(t))
                .map(|(id, t)| format!("{id} is {t:?}, MyPage {:?}", seen.get(id)))
                .collect();
            if behind.is_empty() {
                Ok(())
            } else {
                Err(behind.join("; "))
            }
        },
    )
    .await;

    let alarms: Vec<Value> = eventually("an alarm for every event", || async {
        let a = d.get(&format!("/alarms?limit={LIST}")).await;
        if a.status != 200 {
            return Err(a.text);
        }
        let list = a.body.as_array().expect("a list of alarms").clone();
        let have: HashSet<&str> = list.iter().filter_map(|a| a["eventId"].as_str()).collect();
        let missing = events.keys().filter(|e| !have.contains(e.as_str())).count();
        if missing == 0 {
            Ok(list)
        } else {
            Err(format!(
                "{missing} of {} events without an alarm",
                events.len()
            ))
        }
    })
    .await;
    let mut per_event: HashMap<&str, usize> = HashMap::new();
    for alarm in &alarms {
        let event = alarm["eventId"].as_str().expect("an event id");
        *per_event.entry(event).or_default() += 1;
        assert_eq!(
            events.get(event),
            alarm["enrollmentId"].as_str().map(str::to_owned).as_ref(),
            "an alarm for an event that is not one of these enrollments': {alarm}"
        );
    }
    let doubled: Vec<_> = per_event.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "alarms recorded twice: {doubled:?}");
    assert_eq!(alarms.len(), events.len(), "one alarm per event");

    // The channel: what the notifiers' logs say went out.
    let mut recorded: HashMap<String, usize> = HashMap::new();
    for alarm in &alarms {
        let message = alarm["message"].as_str().expect("a message").to_owned();
        *recorded.entry(message).or_default() += 1;
    }
    let delivered = |notifiers: &[&Ezenroll]| {
        let mut all: HashMap<String, usize> = HashMap::new();
        let mut each = Vec::new();
        for n in notifiers {
            let sent = n.delivered_alarms();
            each.push(sent.len());
            for m in sent {
                *all.entry(m).or_default() += 1;
            }
        }
        (all, each)
    };
    if delivery == Delivery::ExactlyOnce {
        eventually("every alarm delivered", || async {
            let (all, _) = delivered(notifiers);
            let n: usize = all.values().sum();
            if n >= alarms.len() {
                Ok(())
            } else {
                Err(format!("{n} of {} delivered", alarms.len()))
            }
        })
        .await;
    }
    let (all, each) = delivered(notifiers);
    for (message, n) in &all {
        let kept = recorded.get(message).copied().unwrap_or(0);
        assert!(
            *n <= kept,
            "delivered {n} times, recorded {kept} times: {message:?}"
        );
    }
    if delivery == Delivery::ExactlyOnce {
        assert_eq!(
            all.values().sum::<usize>(),
            alarms.len(),
            "each alarm delivered once"
        );
    }
    each
}

/// The type of each enrollment's last event as Redis holds it (single server only): what
/// was pending when a server died.
pub(crate) fn last_events_in_redis(
    client: &redis::Client,
    prefix: &str,
    ids: &[String],
) -> Vec<String> {
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("a connection to the test's Redis");
    ids.iter()
        .map(|id| {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*:hist:{id}"))
                .query(&mut con)
                .expect("KEYS");
            let [key] = keys.as_slice() else {
                panic!("{id}: history keys {keys:?}");
            };
            let last: Vec<String> = redis::cmd("LRANGE")
                .arg(key)
                .arg(-1)
                .arg(-1)
                .query(&mut con)
                .expect("LRANGE");
            let event: Value = serde_json::from_str(&last[0]).expect("an event");
            event["type"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

/// Entries delivered to each consumer group and not acknowledged (XPENDING), over the
/// partitions `store_args` configures.
pub(crate) fn unacknowledged_in_redis(
    client: &redis::Client,
    prefix: &str,
) -> Vec<(&'static str, u64)> {
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("a connection to the test's Redis");
    ["notifier", "mypage"]
        .into_iter()
        .map(|group| {
            let pending: u64 = (0..4)
                .map(|p| {
                    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
                        .arg(format!("{prefix}{{p{p}}}:log"))
                        .arg(group)
                        .query(&mut con)
                        .expect("XPENDING");
                    match summary.first() {
                        Some(redis::Value::Int(n)) => *n as u64,
                        _ => 0,
                    }
                })
                .sum();
            (group, pending)
        })
        .collect()
}

pub(crate) fn event_time(history: &[Value], kind: &str) -> Option<DateTime<Utc>> {
    history
        .iter()
        .find(|e| e["type"] == kind)
        .and_then(|e| e["time"].as_str())
        .and_then(|t| t.parse().ok())
}
