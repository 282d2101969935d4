//! The two protobuf messages of Envoy's `verify_signature` foreign function
//! (`source/extensions/common/wasm/ext/verify_signature.proto`), encoded and decoded by
//! hand: four length-delimited fields out, one varint and one string back. A protobuf
//! crate would cost more code in the module than these messages take.
//!
//! ```text
//! message VerifySignatureArguments { string hash_function = 1; bytes public_key = 2;
//!                                    bytes signature = 3; bytes text = 4;
//!                                    string public_key_pem = 5; }
//! message VerifySignatureResult    { bool result = 1; string error = 2; }
//! ```

/// Wire types (protobuf encoding guide, "Message Structure").
const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LENGTH_DELIMITED: u64 = 2;
const FIXED32: u64 = 5;

/// A varint is at most 10 bytes (64 bits, 7 per byte).
const MAX_VARINT_BYTES: usize = 10;

/// The arguments: DER SubjectPublicKeyInfo in `public_key` (never `public_key_pem`: Envoy
/// refuses a call that sets both).
pub(crate) struct Arguments<'a> {
    pub hash_function: &'a str,
    pub public_key_der: &'a [u8],
    pub signature: &'a [u8],
    pub text: &'a [u8],
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn push_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    // proto3 leaves out a field at its default (empty) value.
    if bytes.is_empty() {
        return;
    }
    push_varint(out, (field << 3) | LENGTH_DELIMITED);
    push_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl Arguments<'_> {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let size = self.public_key_der.len() + self.signature.len() + self.text.len() + 32;
        let mut out = Vec::with_capacity(size);
        push_bytes_field(&mut out, 1, self.hash_function.as_bytes());
        push_bytes_field(&mut out, 2, self.public_key_der);
        push_bytes_field(&mut out, 3, self.signature);
        push_bytes_field(&mut out, 4, self.text);
        out
    }
}

/// `VerifySignatureResult`. A message without `result` is `false` (proto3 default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct VerifyResult {
    pub result: bool,
    pub error: String,
}

/// Bytes that are not a `VerifySignatureResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum DecodeError {
    Truncated,
    VarintTooLong,
    /// Wire types 3 and 4 (groups) or 6 and 7 (undefined).
    UnsupportedWireType(u64),
    /// `result` sent as something other than a varint, or `error` not length-delimited
    /// or not UTF-8.
    WrongFieldType(u64),
}

/// A cursor over the bytes of one message.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, byte) in self.bytes.iter().take(MAX_VARINT_BYTES).enumerate() {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.bytes = self.bytes.get(i + 1..).unwrap_or_default();
                return Ok(value);
            }
        }
        if self.bytes.len() < MAX_VARINT_BYTES {
            Err(DecodeError::Truncated)
        } else {
            Err(DecodeError::VarintTooLong)
        }
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        let taken = self.bytes.get(..len).ok_or(DecodeError::Truncated)?;
        self.bytes = self.bytes.get(len..).unwrap_or_default();
        Ok(taken)
    }

    /// Skips a field of another number (protobuf readers must ignore unknown fields).
    fn skip(&mut self, wire_type: u64) -> Result<(), DecodeError> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LENGTH_DELIMITED => {
                let len = self.varint()?;
                self.take(len).map(drop)
            }
            FIXED32 => self.take(4).map(drop),
            other => Err(DecodeError::UnsupportedWireType(other)),
        }
    }
}

impl VerifyResult {
    /// Decodes the host's answer; for a field repeated, the last one wins (protobuf's rule).
    pub(crate) fn decode(bytes: &[u8]) -> Result<VerifyResult, DecodeError> {
        let mut reader = Reader { bytes };
        let mut out = VerifyResult::default();
        while !reader.bytes.is_empty() {
            let key = reader.varint()?;
            let (field, wire_type) = (key >> 3, key & 0x7);
            match (field, wire_type) {
                (1, VARINT) => out.result = reader.varint()? != 0,
                (2, LENGTH_DELIMITED) => {
                    let len = reader.varint()?;
                    let text = reader.take(len)?;
                    out.error = std::str::from_utf8(text)
                        .map_err(|_| DecodeError::WrongFieldType(2))?
                        .to_owned();
                }
                (1 | 2, _) => return Err(DecodeError::WrongFieldType(field)),
                (_, wire_type) => reader.skip(wire_type)?,
            }
        }
        Ok(out)
    }
}

/// Test builds only: the arguments back from bytes (what the fake host reads).
#[cfg(test)]
pub(crate) fn decode_arguments(bytes: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, DecodeError> {
    let mut reader = Reader { bytes };
    let mut fields = Vec::new();
    while !reader.bytes.is_empty() {
        let key = reader.varint()?;
        if key & 0x7 != LENGTH_DELIMITED {
            return Err(DecodeError::WrongFieldType(key >> 3));
        }
        let len = reader.varint()?;
        fields.push((key >> 3, reader.take(len)?.to_vec()));
    }
    Ok(fields)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        for (value, want) in [
            (0u64, vec![0x00]),
            (1, vec![0x01]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
            (
                u64::MAX,
                vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            ),
        ] {
            let mut out = Vec::new();
            push_varint(&mut out, value);
            assert_eq!(out, want, "{value}");
            assert_eq!(Reader { bytes: &out }.varint(), Ok(value));
        }
    }

    #[test]
    fn arguments_encoding() {
        let text = vec![7u8; 200];
        let bytes = Arguments {
            hash_function: "sha256",
            public_key_der: &[0x30, 0x00],
            signature: &[1, 2, 3],
            text: &text,
        }
        .encode();
        let mut want = vec![0x0a, 6];
        want.extend_from_slice(b"sha256");
        want.extend_from_slice(&[0x12, 2, 0x30, 0x00, 0x1a, 3, 1, 2, 3, 0x22, 0xc8, 0x01]);
        want.extend_from_slice(&text);
        assert_eq!(bytes, want);
        let fields = decode_arguments(&bytes).unwrap();
        assert_eq!(fields.len(), 4);
        assert_eq!(fields[3], (4, text));
    }

    #[test]
    fn result_decoding() {
        let ok = VerifyResult {
            result: true,
            error: String::new(),
        };
        assert_eq!(VerifyResult::decode(&[0x08, 0x01]), Ok(ok.clone()));
        assert_eq!(VerifyResult::decode(&[]), Ok(VerifyResult::default()));
        let mut failed = vec![0x12, 5];
        failed.extend_from_slice(b"nope!");
        assert_eq!(
            VerifyResult::decode(&failed),
            Ok(VerifyResult {
                result: false,
                error: "nope!".into()
            })
        );
        // Unknown fields of every wire type are skipped; the last `result` wins.
        let mut extra = vec![0x08, 0x00, 0x18, 0x96, 0x01, 0x21];
        extra.extend_from_slice(&[0; 8]);
        extra.extend_from_slice(&[0x2d, 0, 0, 0, 0, 0x32, 1, b'x', 0x08, 0x01]);
        assert_eq!(VerifyResult::decode(&extra), Ok(ok));
    }

    #[test]
    fn result_garbage_is_an_error() {
        for (bytes, want) in [
            (&[0x08][..], DecodeError::Truncated),
            (&[0x12, 5, b'a'][..], DecodeError::Truncated),
            (&[0x0a, 0][..], DecodeError::WrongFieldType(1)),
            (&[0x10, 0x01][..], DecodeError::WrongFieldType(2)),
            (&[0x12, 1, 0xff][..], DecodeError::WrongFieldType(2)),
            (&[0x0b][..], DecodeError::WrongFieldType(1)),
            (&[0x1b][..], DecodeError::UnsupportedWireType(3)),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ][..],
                DecodeError::VarintTooLong,
            ),
        ] {
            assert_eq!(VerifyResult::decode(bytes), Err(want), "{bytes:02x?}");
        }
    }
}
