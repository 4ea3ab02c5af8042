//! How to reach Redis and lay out the keys: [`RedisConfig`], with the retention of
//! alarms and views taken from the environment when set.

use crate::store::error::{StoreResult, rejected};
use crate::store::read_model::{ALARM_INDEX_LEN, ALARMS_PER_CUSTOMER, VIEW_INDEX_LEN};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://host:port/db` for one server; `redis+cluster://host:port,host:port,…` (or
    /// several comma-separated `redis://` URLs) for a cluster.
    pub url: String,
    /// Starts every key; no braces (they would change the hash slots).
    pub prefix: String,
    /// Partitions of the event log (default 16). Every process sharing the prefix must
    /// use the same count.
    pub partitions: u16,
    /// Approximate cap per partition stream (`XADD MAXLEN ~`).
    pub stream_max_len: u64,
    /// A command that takes longer fails as unavailable.
    pub response_timeout: Duration,
    pub connect_timeout: Duration,
    /// Alarms kept per customer (the oldest go first beyond it); at least 1.
    pub alarms_per_customer: u64,
    /// Entries of the index of every customer's alarms (`GET /alarms` as admin); at least 1.
    pub alarm_index_len: u64,
    /// Entries of the index of every MyPage view (`GET /mypage` as admin); the views
    /// themselves and the per-customer indexes are kept. At least 1.
    pub view_index_len: u64,
    /// A retention setting from the environment that did not parse (`connect` refuses it).
    env_error: Option<String>,
}

/// A retention setting: the default, or the environment variable `name` when it is set.
fn retention_from_env(name: &str, default: u64, errors: &mut Option<String>) -> u64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errors.get_or_insert_with(|| {
                    format!("{name}={text:?}: expected a whole number of at least 1")
                });
                default
            }
        },
    }
}

impl RedisConfig {
    /// The defaults, with the retention of alarms and indexes taken from the environment
    /// when set: `EZENROLL_REDIS_ALARMS_PER_CUSTOMER` (default 100),
    /// `EZENROLL_REDIS_ALARM_INDEX` (100,000) and `EZENROLL_REDIS_VIEW_INDEX` (100,000).
    pub fn new(url: impl Into<String>) -> RedisConfig {
        let mut env_error = None;
        RedisConfig {
            url: url.into(),
            prefix: "ez:".to_owned(),
            partitions: 16,
            stream_max_len: 1_000_000,
            response_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            alarms_per_customer: retention_from_env(
                "EZENROLL_REDIS_ALARMS_PER_CUSTOMER",
                ALARMS_PER_CUSTOMER,
                &mut env_error,
            ),
            alarm_index_len: retention_from_env(
                "EZENROLL_REDIS_ALARM_INDEX",
                ALARM_INDEX_LEN,
                &mut env_error,
            ),
            view_index_len: retention_from_env(
                "EZENROLL_REDIS_VIEW_INDEX",
                VIEW_INDEX_LEN,
                &mut env_error,
            ),
            env_error,
        }
    }

    /// How much history of alarms and views is kept (each at least 1).
    pub fn with_retention(
        mut self,
        alarms_per_customer: u64,
        alarm_index_len: u64,
        view_index_len: u64,
    ) -> RedisConfig {
        self.alarms_per_customer = alarms_per_customer;
        self.alarm_index_len = alarm_index_len;
        self.view_index_len = view_index_len;
        self
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> RedisConfig {
        self.prefix = prefix.into();
        self
    }

    pub fn with_partitions(mut self, partitions: u16) -> RedisConfig {
        self.partitions = partitions;
        self
    }

    pub fn with_stream_max_len(mut self, max_len: u64) -> RedisConfig {
        self.stream_max_len = max_len;
        self
    }

    /// Refuses settings the store cannot run with: a retention setting from the
    /// environment that did not parse, a retention of 0, braces in the prefix.
    pub(super) fn check(&self) -> StoreResult<()> {
        if let Some(e) = &self.env_error {
            return Err(rejected(e.clone()));
        }
        if self.alarms_per_customer == 0 || self.alarm_index_len == 0 || self.view_index_len == 0 {
            return Err(rejected(
                "alarms per customer and the alarm and view index lengths must be at least 1",
            ));
        }
        if self.prefix.contains(['{', '}']) {
            return Err(rejected(format!(
                "the key prefix {:?} may not contain braces (they pick hash slots)",
                self.prefix
            )));
        }
        Ok(())
    }

    /// The node URLs when this names a cluster.
    pub(super) fn cluster_nodes(&self) -> Option<Vec<String>> {
        let url = self.url.trim();
        let (cluster, rest) = match url.strip_prefix("redis+cluster://") {
            Some(rest) => (true, rest),
            None => (url.contains(','), url),
        };
        if !cluster {
            return None;
        }
        Some(
            rest.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    if n.contains("://") {
                        n.to_owned()
                    } else {
                        format!("redis://{n}")
                    }
                })
                .collect(),
        )
    }
}
