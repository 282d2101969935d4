//! Verified tokens shared across the worker VMs of one Envoy (SPEC §8), so that a token
//! verified on one worker is not verified again on another.
//!
//! Shared data can be written by any VM of the process, so an entry holds only what lets
//! a worker skip the *signature*, never what it must read for itself: which provider, which
//! algorithm and which key (by fingerprint) verified the token, until when — keyed by the
//! SHA-256 of the token text, which the entry repeats and a reader compares. A reader still
//! parses the token text (cheap next to a signature), checks that the provider, the
//! algorithm and the key are the ones it would pick itself now (a key that left the JWKS
//! stops every entry it verified, as in the local cache), and reads the claims itself.
//!
//! The host supplies the store (`SharedTokens`, in `Context`): the core stays pure.

use super::cache::{KeyFingerprint, TokenHash};
use crate::core::keys::alg::Alg;
use crate::core::time::UnixTime;

/// What one VM learned when a token's signature verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedVerified {
    /// `Policy::providers` index (the store is per policy: hosts key it by the policy).
    pub provider: usize,
    pub alg: Alg,
    pub key: KeyFingerprint,
    /// Not usable at or after this time (`exp` plus skew, as in the local cache).
    pub expires: UnixTime,
}

/// A store of `SharedVerified` by token hash, shared with other VMs. Both calls may fail
/// quietly: a miss or a lost write only costs a signature verification.
pub trait SharedTokens {
    fn get(&self, token: &TokenHash) -> Option<SharedVerified>;
    fn put(&self, token: &TokenHash, entry: &SharedVerified);
}

/// Format version (first byte): an entry of another layout is never read.
const VERSION: u8 = 1;
/// version, token hash, provider (u32), alg (u8), key fingerprint, expires (u64 ms).
pub(crate) const ENTRY_BYTES: usize = 1 + 32 + 4 + 1 + 32 + 8;

impl SharedVerified {
    /// The bytes of an entry for `token`.
    pub fn encode(&self, token: &TokenHash) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENTRY_BYTES);
        out.push(VERSION);
        out.extend_from_slice(token);
        let provider = u32::try_from(self.provider).unwrap_or(u32::MAX);
        out.extend_from_slice(&provider.to_le_bytes());
        out.push(alg_index(self.alg));
        out.extend_from_slice(&self.key);
        out.extend_from_slice(&self.expires.millis().to_le_bytes());
        out
    }

    /// The entry in `bytes` if it is one, of this version, for exactly `token`.
    pub fn decode(bytes: &[u8], token: &TokenHash) -> Option<SharedVerified> {
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || bytes.len() != ENTRY_BYTES {
            return None;
        }
        let (hash, rest) = rest.split_at_checked(32)?;
        if hash != token {
            return None;
        }
        let (provider, rest) = rest.split_at_checked(4)?;
        let (&alg, rest) = rest.split_first()?;
        let (key, expires) = rest.split_at_checked(32)?;
        Some(SharedVerified {
            provider: usize::try_from(u32::from_le_bytes(provider.try_into().ok()?)).ok()?,
            alg: *Alg::ALL.get(usize::from(alg))?,
            key: key.try_into().ok()?,
            expires: UnixTime::from_millis(u64::from_le_bytes(expires.try_into().ok()?)),
        })
    }
}

fn alg_index(alg: Alg) -> u8 {
    let index = Alg::ALL
        .iter()
        .position(|a| *a == alg)
        .unwrap_or(usize::MAX);
    u8::try_from(index).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> SharedVerified {
        SharedVerified {
            provider: 3,
            alg: Alg::RS256,
            key: [9; 32],
            expires: UnixTime::from_millis(1_234_567),
        }
    }

    #[test]
    fn an_entry_reads_back_for_its_token_only() {
        let bytes = entry().encode(&[1; 32]);
        assert_eq!(bytes.len(), ENTRY_BYTES);
        assert_eq!(SharedVerified::decode(&bytes, &[1; 32]), Some(entry()));
        // Another token's hash (a slot collision in a host's table): not this entry.
        assert_eq!(SharedVerified::decode(&bytes, &[2; 32]), None);
    }

    #[test]
    fn damaged_or_foreign_entries_are_not_read() {
        let bytes = entry().encode(&[1; 32]);
        for cut in 0..bytes.len() {
            assert_eq!(SharedVerified::decode(&bytes[..cut], &[1; 32]), None);
        }
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert_eq!(SharedVerified::decode(&other_version, &[1; 32]), None);
        let mut bad_alg = bytes;
        bad_alg[1 + 32 + 4] = 200;
        assert_eq!(SharedVerified::decode(&bad_alg, &[1; 32]), None);
    }
}
