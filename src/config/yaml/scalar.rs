//! Scalar resolution: what type an untagged scalar of the event builder
//! is, decided as the YAML crate's deserializer decides it with the options
//! `parse` gives it.

use std::borrow::Cow;

use granit_parser::ScalarStyle;

use super::NodeKind;

/// An untagged scalar's value, resolved as the YAML crate's
/// `deserialize_any` resolves it with the options of `parse`: quoted and
/// block scalars are strings; a plain one is null (`~`, `null`, empty),
/// a YAML 1.2 boolean, an integer (`i64` when negative, else `u64`) or a
/// float (`.inf`, `.nan` and `1e999` too), or else a string — and a string
/// too where a number would lose how it was written (`0123`, `1_000`,
/// `0X1F`, `-.nan`).
pub(super) fn scalar(value: Cow<'_, str>, style: ScalarStyle) -> NodeKind {
    if style != ScalarStyle::Plain {
        return NodeKind::Str(value.into_owned());
    }
    if matches!(&*value, "" | "~" | "null" | "Null" | "NULL") {
        return NodeKind::Null;
    }
    let t = trim(&value);
    match t {
        "true" | "True" | "TRUE" => return NodeKind::Bool(true),
        "false" | "False" | "FALSE" => return NodeKind::Bool(false),
        _ => {}
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    // Every number, and every spelling kept as text below, starts with
    // a digit or a dot after its sign: anything else is text, at once.
    if !matches!(unsigned.as_bytes().first(), Some(b'0'..=b'9' | b'.')) {
        return NodeKind::Str(value.into_owned());
    }
    let uppercase_radix = matches!(unsigned.as_bytes(), [b'0', b'X' | b'O' | b'B', ..]);
    if uppercase_radix || is_signed_nan(t) || leading_zero_decimal(t) || t.contains('_') {
        return NodeKind::Str(value.into_owned());
    }
    if t.starts_with('-') {
        if let Some(n) = signed(t) {
            return NodeKind::Int(n);
        }
    } else if let Some(n) = unsigned_int(t) {
        return NodeKind::UInt(n);
    }
    match float(t) {
        Some(f) => NodeKind::Float(f),
        None => NodeKind::Str(value.into_owned()),
    }
}

/// The padding scalar conversion ignores (ASCII, so the cuts fall
/// between characters).
fn trim(s: &str) -> &str {
    let pad = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let bytes = s.as_bytes();
    let start = bytes.iter().position(|b| !pad(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !pad(b))
        .map_or(start, |last| last + 1);
    &s[start..end]
}

fn is_signed_nan(t: &str) -> bool {
    t.strip_prefix(['+', '-'])
        .is_some_and(|unsigned| matches!(unsigned, ".nan" | ".NaN" | ".NAN"))
}

/// A decimal integer with a redundant leading zero: `0127`, `-0127`.
fn leading_zero_decimal(t: &str) -> bool {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The radix of an integer's digits (`0x`, `0o`, `0b`, else 10).
fn radix_and_digits(rest: &str) -> (u32, &str) {
    if let Some(r) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = rest.strip_prefix("0o").or_else(|| rest.strip_prefix("0O")) {
        (8, r)
    } else if let Some(r) = rest.strip_prefix("0b").or_else(|| rest.strip_prefix("0B")) {
        (2, r)
    } else {
        (10, rest)
    }
}

/// Digits in `radix`, with single underscores between them.
fn digits_u128(digits: &str, radix: u32) -> Option<u128> {
    let bytes = digits.as_bytes();
    let mut value: u128 = 0;
    let mut saw = false;
    for (i, &b) in bytes.iter().enumerate() {
        let d = match b {
            b'_' => {
                let prev_ok = i > 0 && bytes[i - 1] != b'_';
                let next_ok = i + 1 < bytes.len() && bytes[i + 1] != b'_';
                if !prev_ok || !next_ok {
                    return None;
                }
                continue;
            }
            b'0'..=b'9' => u32::from(b - b'0'),
            b'a'..=b'f' if radix > 10 => 10 + u32::from(b - b'a'),
            b'A'..=b'F' if radix > 10 => 10 + u32::from(b - b'A'),
            _ => return None,
        };
        if d >= radix {
            return None;
        }
        value = value
            .checked_mul(u128::from(radix))?
            .checked_add(u128::from(d))?;
        saw = true;
    }
    saw.then_some(value)
}

/// A trimmed integer that starts with `-`.
fn signed(t: &str) -> Option<i64> {
    let (negative, rest) = match t.strip_prefix('+') {
        Some(r) => (false, r),
        None => match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t),
        },
    };
    let (radix, digits) = radix_and_digits(rest);
    if radix == 10 && digits.starts_with('0') && digits != "0" {
        return None;
    }
    let magnitude = digits_u128(digits, radix)?;
    let value: i128 = if negative {
        if magnitude == (i128::MAX as u128) + 1 {
            i128::MIN
        } else {
            i128::try_from(magnitude).ok()?.checked_neg()?
        }
    } else {
        i128::try_from(magnitude).ok()?
    };
    i64::try_from(value).ok()
}

/// A trimmed integer that does not start with `-`.
fn unsigned_int(t: &str) -> Option<u64> {
    let rest = t.strip_prefix('+').unwrap_or(t);
    let (radix, digits) = radix_and_digits(rest);
    if radix == 10 && digits.starts_with('0') && digits != "0" {
        return None;
    }
    u64::try_from(digits_u128(digits, radix)?).ok()
}

/// A trimmed float as YAML 1.2 writes it (`.inf`, `-.inf`, `.nan` too),
/// or a numeral too large for `f64` as an infinity.
fn float(t: &str) -> Option<f64> {
    let (negative, unsigned) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    match unsigned {
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        ".inf" | ".Inf" | ".INF" if negative => return Some(f64::NEG_INFINITY),
        ".inf" | ".Inf" | ".INF" => return Some(f64::INFINITY),
        _ => {}
    }
    let parsed = t.parse::<f64>().ok()?;
    if parsed.is_finite() {
        return Some(parsed);
    }
    // `inf` and `nan` are words, not numerals: only an overflow counts.
    let numeral = t
        .strip_prefix(['+', '-'])
        .unwrap_or(t)
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_digit);
    (numeral && parsed.is_infinite()).then_some(parsed)
}
