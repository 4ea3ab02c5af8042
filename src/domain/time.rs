//! Serde for times that is cheap in binary snapshots: RFC 3339 text in JSON (what people
//! and clients read), an integer in bincode (chrono's own impl formats and parses text
//! even there, on every snapshot). Use with `#[serde(with = ...)]`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The current time at the precision snapshots keep (microseconds), so a state built in
/// memory equals the same state read back from the store.
pub fn now() -> DateTime<Utc> {
    // What `Utc::now()` reads, truncated before the one calendar conversion instead of
    // converting twice (this runs several times per command).
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_micros()).ok())
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .unwrap_or_else(|| {
            let t = Utc::now();
            DateTime::<Utc>::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
        })
}

/// The date in Korea (UTC+9) at `now`: the date insurance ages and quotes are counted on.
pub fn korean_date(now: DateTime<Utc>) -> NaiveDate {
    (now + chrono::Duration::hours(9)).date_naive()
}

/// `DateTime<Utc>`: RFC 3339 in JSON, microseconds since the epoch in binary.
pub mod utc {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            t.serialize(s)
        } else {
            s.serialize_i64(t.timestamp_micros())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        if d.is_human_readable() {
            DateTime::<Utc>::deserialize(d)
        } else {
            let micros = i64::deserialize(d)?;
            DateTime::<Utc>::from_timestamp_micros(micros)
                .ok_or_else(|| serde::de::Error::custom(format!("{micros} µs is out of range")))
        }
    }
}

/// `Option<DateTime<Utc>>`, the same way.
pub mod utc_opt {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Wrapped(#[serde(with = "super::utc")] DateTime<Utc>);

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        t.map(Wrapped).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(t)| t))
    }
}

/// `NaiveDate`: `YYYY-MM-DD` in JSON, days since 0001-01-01 in binary.
pub mod date {
    use super::*;
    use chrono::Datelike;

    pub fn serialize<S: Serializer>(d: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            d.serialize(s)
        } else {
            s.serialize_i32(d.num_days_from_ce())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        if d.is_human_readable() {
            NaiveDate::deserialize(d)
        } else {
            let days = i32::deserialize(d)?;
            NaiveDate::from_num_days_from_ce_opt(days)
                .ok_or_else(|| serde::de::Error::custom(format!("day {days} is out of range")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Times {
        #[serde(with = "utc")]
        at: DateTime<Utc>,
        #[serde(with = "utc_opt")]
        maybe: Option<DateTime<Utc>>,
        #[serde(with = "date")]
        day: NaiveDate,
    }

    #[test]
    fn text_in_json_integers_in_bincode() {
        let t = Times {
            at: DateTime::<Utc>::from_timestamp_micros(1_795_000_000_123_456).unwrap_or_default(),
            maybe: None,
            day: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap_or_default(),
        };
        let json = serde_json::to_string(&t).unwrap_or_default();
        assert!(json.contains("\"2026-11-24\""), "{json}");
        assert!(json.contains("T") && json.contains("Z\""), "{json}");
        assert_eq!(serde_json::from_str::<Times>(&json).ok().as_ref(), Some(&t));
        let cfg = bincode::config::standard();
        let bin = bincode::serde::encode_to_vec(&t, cfg).unwrap_or_default();
        assert!(bin.len() < 20, "{} bytes", bin.len());
        let back: Option<Times> = bincode::serde::decode_from_slice(&bin, cfg)
            .ok()
            .map(|(t, _)| t);
        assert_eq!(back.as_ref(), Some(&t));
    }
}
