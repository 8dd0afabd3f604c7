//! Digests as text: the one place bytes are written in hex.

use std::fmt::Write as _;

/// `sha256:` and the SHA-256 `digest` in lowercase hex: how every digest
/// supportctl prints or keeps is written (a config set's digest, a plan's
/// seal).
pub fn sha256_text(digest: &[u8]) -> String {
    let mut text = String::with_capacity(7 + 2 * digest.len());
    text.push_str("sha256:");
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_its_bytes_in_lowercase_hex_after_the_algorithm() {
        assert_eq!(sha256_text(&[0x00, 0x0f, 0xa0, 0xff]), "sha256:000fa0ff");
        assert_eq!(sha256_text(&[]), "sha256:");
    }
}
