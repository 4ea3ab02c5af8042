//! Reading raw Redis replies (`redis::Value`) without trusting their shape: anything
//! unexpected becomes a [`StoreError::Corrupt`] naming what was read, never a panic.

use crate::store::error::StoreError;
use redis::Value;

pub fn unexpected(what: &str, value: &Value) -> StoreError {
    let mut shown = format!("{value:?}");
    if shown.len() > 200 {
        let mut cut = 200;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push('…');
    }
    StoreError::Corrupt {
        key: what.to_owned(),
        reason: format!("unexpected reply from Redis: {shown}"),
    }
}

/// The elements of an array reply (RESP3 sets too); nil is empty.
pub fn items<'v>(what: &str, value: &'v Value) -> Result<&'v [Value], StoreError> {
    match value {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => Err(unexpected(what, other)),
    }
}

/// Key/value pairs of a map reply: a RESP3 map or a RESP2 flat array.
pub fn pairs<'v>(what: &str, value: &'v Value) -> Result<Vec<(&'v Value, &'v Value)>, StoreError> {
    match value {
        Value::Map(pairs) => Ok(pairs.iter().map(|(k, v)| (k, v)).collect()),
        Value::Array(items) if items.len() % 2 == 0 => {
            Ok(items.chunks_exact(2).map(|kv| (&kv[0], &kv[1])).collect())
        }
        other => Err(unexpected(what, other)),
    }
}

/// A string-like reply as bytes.
pub fn bytes<'v>(what: &str, value: &'v Value) -> Result<&'v [u8], StoreError> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.as_bytes()),
        Value::VerbatimString { text, .. } => Ok(text.as_bytes()),
        other => Err(unexpected(what, other)),
    }
}

pub fn text<'v>(what: &str, value: &'v Value) -> Result<&'v str, StoreError> {
    std::str::from_utf8(bytes(what, value)?).map_err(|_| unexpected(what, value))
}

/// An integer reply, or a string holding one (Lua returns numbers either way).
pub fn int(what: &str, value: &Value) -> Result<i64, StoreError> {
    match value {
        Value::Int(n) => Ok(*n),
        Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => Ok(*d as i64),
        other => {
            let t = text(what, other)?;
            t.parse::<i64>()
                .or_else(|_| {
                    // Sorted-set scores come as decimal text ("1.7e+15" for some values).
                    t.parse::<f64>()
                        .ok()
                        .filter(|d| d.is_finite() && d.fract() == 0.0 && d.abs() < 9.0e15)
                        .map(|d| d as i64)
                        .ok_or(())
                })
                .map_err(|_| unexpected(what, other))
        }
    }
}

pub fn uint(what: &str, value: &Value) -> Result<u64, StoreError> {
    let n = int(what, value)?;
    u64::try_from(n).map_err(|_| unexpected(what, value))
}

/// Stream entries `[[id, [field, value, …]], …]` as (id, the value of `field`). An entry
/// without the field (deleted meanwhile) has `None`.
pub type Entry<'v> = (&'v str, Option<&'v [u8]>);

pub fn stream_entries<'v>(
    what: &str,
    value: &'v Value,
    field: &[u8],
) -> Result<Vec<Entry<'v>>, StoreError> {
    Ok(stream_fields(what, value, [field])?
        .into_iter()
        .map(|(id, [found])| (id, found))
        .collect())
}

/// (entry id, each asked-for field's value or `None`).
pub type Fields<'v, const N: usize> = (&'v str, [Option<&'v [u8]>; N]);

/// [`stream_entries`] for several fields.
pub fn stream_fields<'v, const N: usize>(
    what: &str,
    value: &'v Value,
    fields: [&[u8]; N],
) -> Result<Vec<Fields<'v, N>>, StoreError> {
    let mut out = Vec::new();
    for entry in items(what, value)? {
        let parts = items(what, entry)?;
        let [id, values] = parts else {
            return Err(unexpected(what, entry));
        };
        let id = text(what, id)?;
        let mut found = [None; N];
        if !matches!(values, Value::Nil) {
            for (k, v) in pairs(what, values)? {
                let k = bytes(what, k)?;
                if let Some(i) = fields.iter().position(|&f| f == k) {
                    found[i] = Some(bytes(what, v)?);
                }
            }
        }
        out.push((id, found));
    }
    Ok(out)
}

/// An XREAD/XREADGROUP reply: per stream key, its entries. Nil (nothing, or timed out)
/// is empty.
pub fn streams<'v>(what: &str, value: &'v Value) -> Result<Vec<(&'v str, &'v Value)>, StoreError> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| Ok((text(what, k)?, v))).collect(),
        Value::Array(items) => items
            .iter()
            .map(|stream| match stream {
                Value::Array(kv) if kv.len() == 2 => Ok((text(what, &kv[0])?, &kv[1])),
                other => Err(unexpected(what, other)),
            })
            .collect(),
        other => Err(unexpected(what, other)),
    }
}
