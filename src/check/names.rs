//! What a well-formed id and email are, and the hint for an id that is not.

use std::borrow::Cow;

/// `text` compared without regard to case: lower-cased, copied only when
/// that changes it.
pub(super) fn fold_case(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// Whether `id` is a well-formed user id (rule 3): `^[a-z0-9][a-z0-9._-]{0,62}$`.
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Whether `email` is a plausible address: one `@`, a dot-atom local part and
/// a domain of at least two labels. Deliverability is not ours to judge.
pub fn is_valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'/'
                        | b'='
                        | b'?'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'{'
                        | b'|'
                        | b'}'
                        | b'~'
                        | b'.'
                )
        });
    // Checked for every user of a large set: no allocation.
    let mut labels = 0;
    let domain_ok = domain.len() <= 253
        && domain.split('.').all(|l| {
            labels += 1;
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok && labels >= 2
}

pub(super) fn id_hint(id: &str) -> String {
    let lowered: String = id
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if lowered != id && is_valid_id(&lowered) {
        format!("ids are lowercase letters, digits, `.`, `_` and `-`: try `{lowered}`")
    } else {
        "ids are 1 to 63 lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_pattern() {
        for ok in ["alice", "a", "0", "dan.kim", "a_b-c", &"a".repeat(63)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["", "Alice", "-a", ".a", "a b", "a@b", &"a".repeat(64), "ä"] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn emails_are_plausible_addresses() {
        for ok in [
            "a@b.example",
            "dan.kim+sr@acme.co.kr",
            "A@X.EXAMPLE",
            "o'k!#$%&*/=?^_`{|}~-@x-y.example",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "@b.example",
            "a@@b.example",
            "a b@c.example",
            "a@-b.example",
            "a..b@c.example",
            "a@b..example",
            "a@b.example.",
            "a\"b@c.example",
            "a@b_c.example",
            "a@b.-example",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
