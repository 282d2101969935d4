//! base64url without padding, strict: no padding, no whitespace, no stray trailing bits
//! (RFC 7515 §2, RFC 4648 §3.5), so that one token has exactly one encoding.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()
}

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `encode` into `buf` (no allocation); `None` when `buf` is too small.
pub(crate) fn encode_into<'b>(bytes: &[u8], buf: &'b mut [u8]) -> Option<&'b str> {
    let len = URL_SAFE_NO_PAD.encode_slice(bytes, buf).ok()?;
    std::str::from_utf8(buf.get(..len)?).ok()
}

/// Standard base64 (with padding), for PEM bodies.
pub(crate) fn decode_standard(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text.as_bytes()).ok()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    // Digit by digit: `write!("{b:02x}")` went through the formatting machinery once per
    // byte, on every cache miss (the audit `token_id`).
    fn digit(nibble: u8) -> char {
        char::from(if nibble < 10 {
            b'0' + nibble
        } else {
            b'a' + nibble - 10
        })
    }
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 0x0f));
    }
    out
}

/// Lowercase or uppercase hex to bytes; `None` on odd length or a non-hex digit.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some((hex_digit(*hi)? << 4) | hex_digit(*lo)?),
            _ => None,
        })
        .collect()
}

pub(crate) fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_into_a_buffer_is_encode() {
        let digest = [0xfbu8; 32];
        let mut buf = [0u8; 43];
        assert_eq!(
            encode_into(&digest, &mut buf),
            Some(encode(&digest).as_str())
        );
        assert_eq!(encode_into(&digest, &mut [0u8; 42]), None);
    }

    #[test]
    fn refuses_padding_and_standard_alphabet() {
        assert_eq!(decode("Zm9v"), Some(b"foo".to_vec()));
        assert_eq!(decode("Zm8="), None);
        assert_eq!(decode("+/8"), None);
        // "Zm9" decodes "fo" with trailing bits 01 that a canonical encoder never emits.
        assert_eq!(decode("Zm9"), None);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0x9f, 0x86, 0x00]), "9f8600");
        assert_eq!(unhex("9F8600"), Some(vec![0x9f, 0x86, 0x00]));
        assert_eq!(unhex("9f8"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn hex_writes_every_byte_as_two_lowercase_digits() {
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
        assert_eq!(unhex(&expected), Some(all));
    }
}
