//! The ids that name enrollments and customers, and the hasher for maps keyed by them.

use super::text::quoted;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// The correlation key of every event of one enrollment. Time-ordered (UUIDv7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnrollmentId(Uuid);

impl EnrollmentId {
    pub fn new() -> EnrollmentId {
        EnrollmentId(Uuid::now_v7())
    }

    /// A time-ordered id (UUIDv7, to the millisecond) whose remaining bits are `random`.
    /// The ids [`new`](Self::new) makes within one millisecond differ only in a counter,
    /// so they all fall in one partition; ids made this way spread over the partitions.
    pub fn from_parts(unix_millis: u64, random: &[u8; 10]) -> EnrollmentId {
        EnrollmentId(uuid::Builder::from_unix_timestamp_millis(unix_millis, random).into_uuid())
    }

    /// The id of the enrollment that one keyed request creates: the same key (scoped to
    /// its caller) always names the same enrollment, so a request retried after its first
    /// try died between saving and keeping its answer finds what that try saved instead of
    /// starting a second enrollment. A name-based UUID (v5), not time-ordered; nothing
    /// relies on the order of ids.
    pub fn for_request(scoped_key: &str) -> EnrollmentId {
        const NAMESPACE: Uuid = Uuid::from_u128(0x6c1e_4f0a_9b2d_4e57_8a31_0d5c_e2b4_7f19);
        EnrollmentId(Uuid::new_v5(&NAMESPACE, scoped_key.as_bytes()))
    }

    pub fn parse(text: &str) -> Result<EnrollmentId, String> {
        Uuid::parse_str(text)
            .map(EnrollmentId)
            .map_err(|_| format!("{} is not an enrollment id (a UUID)", quoted(text)))
    }

    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The last eight hex digits (random in a v7 UUID): short references in documents
    /// and contract numbers.
    pub fn short(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = self.0.as_bytes();
        let mut short = String::with_capacity(8);
        for byte in &bytes[12..] {
            short.push(char::from(HEX[usize::from(byte >> 4)]));
            short.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        short
    }

    /// A stable 64-bit hash for partitioning (the low bits of a v7 UUID are random).
    pub fn partition_hash(&self) -> u64 {
        let bytes = self.0.as_bytes();
        u64::from_le_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15],
        ])
    }
}

crate::json_schema!(
    EnrollmentId,
    super::schema::string(
        "An enrollment's id (a UUID).",
        Some(utoipa::openapi::schema::KnownFormat::Uuid),
        None,
        "0197a3c2-5e41-7d3a-9f10-2b6c8e4d1a77",
    )
);

impl Default for EnrollmentId {
    fn default() -> Self {
        EnrollmentId::new()
    }
}

impl fmt::Display for EnrollmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A hasher for maps keyed by [`EnrollmentId`] or [`CustomerNo`]: the ids are random
/// (v7 UUIDs carry 62 random bits) or sequential, so folding their bits is enough, and
/// these maps are hashed on every command, where SipHash's DoS resistance buys nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // splitmix64's finalizer: spreads sequential customer numbers over the high bits
        // DashMap picks shards with.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(29) ^ n;
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Build hasher for [`IdHasher`].
pub type IdHash = std::hash::BuildHasherDefault<IdHasher>;

/// 고객번호: `C` and nine digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomerNo(u64);

impl CustomerNo {
    pub const fn new(n: u64) -> CustomerNo {
        CustomerNo(n)
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn parse(text: &str) -> Result<CustomerNo, String> {
        text.strip_prefix('C')
            .filter(|d| d.len() == 9 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .map(CustomerNo)
            .ok_or_else(|| {
                format!(
                    "{} is not a customer number (C and nine digits)",
                    quoted(text)
                )
            })
    }
}

crate::json_schema!(
    CustomerNo,
    super::schema::string(
        "A customer number: C and nine digits.",
        None,
        Some("^C[0-9]{9}$"),
        "C000000001",
    )
);

impl fmt::Display for CustomerNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C{:09}", self.0)
    }
}

impl Serialize for CustomerNo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for CustomerNo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let text = std::borrow::Cow::<str>::deserialize(d)?;
            CustomerNo::parse(&text).map_err(serde::de::Error::custom)
        } else {
            u64::deserialize(d).map(CustomerNo)
        }
    }
}
