//! Test builds only: what Envoy's `verify_signature` does, with ring standing in for
//! BoringSSL, for `FakeHost`. Like Envoy it reads the key as DER SPKI (BadArgument when it
//! cannot), takes the hash by name without checking it against the key, and answers
//! `VerifySignatureResult`.

#![allow(clippy::indexing_slicing)]

use super::super::host::HostStatus;
use super::proto::decode_arguments;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

const BAD_ARGUMENT: HostStatus = HostStatus(2);

/// One DER TLV (short or long length): (tag, content, rest).
fn tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        let len = rest
            .get(..n)?
            .iter()
            .fold(0usize, |a, b| a << 8 | usize::from(*b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

enum Key<'a> {
    P256(&'a [u8]),
    P384(&'a [u8]),
    Rsa(&'a [u8]),
}

const EC_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

fn import(spki: &[u8]) -> Option<Key<'_>> {
    let (_, body, _) = tlv(spki)?;
    let (_, algorithm, rest) = tlv(body)?;
    let (_, bits, _) = tlv(rest)?;
    let key = bits.get(1..)?;
    let (_, oid, params) = tlv(algorithm)?;
    let (_, param, _) = tlv(params)?;
    match (oid, param) {
        (EC_OID, P256_OID) => Some(Key::P256(key)),
        (EC_OID, P384_OID) => Some(Key::P384(key)),
        (RSA_OID, _) => Some(Key::Rsa(key)),
        _ => None,
    }
}

fn algorithm(key: &Key<'_>, hash: &str) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match (key, hash) {
        (Key::P256(_), "sha256") => &signature::ECDSA_P256_SHA256_ASN1,
        (Key::P256(_), "sha384") => &signature::ECDSA_P256_SHA384_ASN1,
        (Key::P384(_), "sha256") => &signature::ECDSA_P384_SHA256_ASN1,
        (Key::P384(_), "sha384") => &signature::ECDSA_P384_SHA384_ASN1,
        (Key::Rsa(_), "sha256") => &signature::RSA_PKCS1_2048_8192_SHA256,
        (Key::Rsa(_), "sha384") => &signature::RSA_PKCS1_2048_8192_SHA384,
        (Key::Rsa(_), "sha512") => &signature::RSA_PKCS1_2048_8192_SHA512,
        _ => return None,
    })
}

pub(crate) fn verify_signature(arguments: &[u8]) -> Result<Vec<u8>, HostStatus> {
    let fields = decode_arguments(arguments).map_err(|_| BAD_ARGUMENT)?;
    let field = |n: u64| {
        fields
            .iter()
            .rev()
            .find(|(f, _)| *f == n)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    };
    let hash = std::str::from_utf8(field(1)).map_err(|_| BAD_ARGUMENT)?;
    let key = import(field(2)).ok_or(BAD_ARGUMENT)?;
    let ok = algorithm(&key, hash).is_some_and(|alg| {
        let point = match key {
            Key::P256(k) | Key::P384(k) | Key::Rsa(k) => k,
        };
        UnparsedPublicKey::new(alg, point)
            .verify(field(4), field(3))
            .is_ok()
    });
    Ok(if ok {
        vec![0x08, 0x01]
    } else {
        let error = b"Failed to verify digest. Error code: 0";
        let mut out = vec![0x12, error.len() as u8];
        out.extend_from_slice(error);
        out
    })
}
