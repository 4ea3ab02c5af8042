//! Whole numbers written with a fraction of zeros or an exponent (`345.0`, `1e+16`,
//! `3.45e2`) are the same JSON values as `345`, `10000000000000000` and `345`, and JSON
//! Schema's `integer` says so; serde's integer fields refuse them. [`whole_numbers`]
//! rewrites such numbers as plain integers before a body is parsed, exactly (by moving
//! digits, never through `f64`), so an amount in won or a number of years arrives as the
//! client meant it. Numbers with a real fraction are left alone.

use std::borrow::Cow;

/// Digits beyond which a number is left as written: it is out of every integer field's
/// range anyway, and the parser names the field.
const MAX_DIGITS: usize = 40;

/// `json` with every whole number in integer form. Borrows when there is nothing to
/// rewrite, which is the common case and costs one pass over the bytes.
pub fn whole_numbers(json: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0; // bytes of `json` already in `out`
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => i = skip_string(json, i),
            b'-' | b'0'..=b'9' => {
                let end = number_end(json, i);
                let token = &json[i..end];
                if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'))
                    && let Some(integer) = as_integer(token)
                {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(json.len()));
                    out.extend_from_slice(&json[copied..i]);
                    out.extend_from_slice(integer.as_bytes());
                    copied = end;
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(json),
        Some(mut out) => {
            out.extend_from_slice(&json[copied..]);
            Cow::Owned(out)
        }
    }
}

/// The index after the string that starts at `start` (a `"`), or the end of the input.
fn skip_string(json: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < json.len() {
        match json[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    json.len()
}

fn number_end(json: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < json.len() && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
        i += 1;
    }
    i
}

/// The integer a JSON number token stands for, when it is whole; `None` when it has a
/// real fraction, is not a well-formed number (the parser will say so) or is huge.
fn as_integer(token: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(token).ok()?;
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let well_formed = !whole.is_empty()
        && (whole == "0" || !whole.starts_with('0'))
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && (mantissa.len() == whole.len() || !fraction.is_empty());
    if !well_formed {
        return None;
    }
    let mut digits: String = format!("{whole}{fraction}");
    // The value is digits × 10^shift.
    let shift = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    if shift >= 0 {
        let zeros = usize::try_from(shift).ok()?;
        if digits.len().checked_add(zeros)? > MAX_DIGITS {
            return None;
        }
        digits.extend(std::iter::repeat_n('0', zeros));
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).ok()?;
        if cut > digits.len() {
            // Only zeros would be left of a whole number: it is 0 if the digits are.
            if !digits.bytes().all(|b| b == b'0') {
                return None;
            }
            digits.clear();
        } else {
            let (kept, dropped) = digits.split_at(digits.len() - cut);
            if !dropped.bytes().all(|b| b == b'0') {
                return None;
            }
            digits.truncate(kept.len());
        }
    }
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some("0".to_owned());
    }
    if digits.len() > MAX_DIGITS {
        return None;
    }
    Some(if negative {
        format!("-{digits}")
    } else {
        digits.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(text: &str) -> String {
        String::from_utf8_lossy(&whole_numbers(text.as_bytes())).into_owned()
    }

    #[test]
    fn whole_numbers_become_integers_and_nothing_else_changes() {
        assert_eq!(
            rewrite(r#"{"a":345.0,"b":1e+16}"#),
            r#"{"a":345,"b":10000000000000000}"#
        );
        assert_eq!(
            rewrite("[3.45e2, 2.50E1, -7.000, 0.0, -0.0, 1200e-2]"),
            "[345, 25, -7, 0, 0, 12]"
        );
        assert_eq!(
            rewrite("[0.025, 1.5, 1e-3, 12.5e0]"),
            "[0.025, 1.5, 1e-3, 12.5e0]"
        );
        assert_eq!(
            rewrite(r#"{"s":"345.0 and 1e5","n":1}"#),
            r#"{"s":"345.0 and 1e5","n":1}"#
        );
        assert_eq!(
            rewrite(r#"{"s":"a\"1.0","n":2.0}"#),
            r#"{"s":"a\"1.0","n":2}"#
        );
        // Too big, or not JSON at all: left for the parser to refuse.
        assert_eq!(
            rewrite("[1e308, 1.0e-400, 01.0, 1., .5, 1e, --1.0, 1e99999999999999999999]"),
            "[1e308, 1.0e-400, 01.0, 1., .5, 1e, --1.0, 1e99999999999999999999]"
        );
        assert!(matches!(
            whole_numbers(b"{\"a\": 1, \"b\": 0.5}"),
            Cow::Borrowed(_)
        ));
    }
}
