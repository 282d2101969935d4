//! SPEC §8: the verified-token table shared by the worker VMs of one Envoy, in proxy-wasm
//! shared data (`SharedTokens` for the core). What an entry may and may not say is the
//! core's business (`core::verification::shared`); this is the storage.
//!
//! Direct-mapped: the token's SHA-256 picks one of `SHARED_TOKEN_SLOTS` slots, each one
//! shared-data key. Shared data cannot be deleted, so a fixed set of keys is what keeps
//! the table bounded; a new token evicts whatever its slot held (the entry repeats the
//! whole token hash, so a reader never takes a neighbour's entry for its own). Writes are
//! compare-and-swap against the version the miss read (before this worker verified the
//! signature): when another worker wrote the slot in between, its entry stays and this
//! one is dropped — a lost write costs one signature verification somewhere, never a
//! wrong answer.

use super::host::Host;
use crate::core::limits::SHARED_TOKEN_SLOTS;
use crate::core::verification::cache::TokenHash;
use crate::core::verification::shared::{SharedTokens, SharedVerified};
use std::cell::Cell;

/// The table of one policy, seen from one VM.
pub(crate) struct SharedTokenTable<'h, H> {
    pub host: &'h H,
    /// `actwarden.tokens.v1|<policy id>|`: entries name providers by index, so each
    /// policy (plugin configuration) has its own table.
    pub prefix: &'h str,
    /// The slot `get` read last and the version it saw there: `put` writes against it
    /// instead of reading the slot a second time (one host call fewer per miss).
    last_read: Cell<Option<(u32, Option<u32>)>>,
}

/// The key prefix for the policy whose plugin configuration is `config`: the same bytes on
/// every worker give the same table.
pub(crate) fn prefix_for(config: &[u8]) -> String {
    let id = crate::core::verification::crypto::sha256(config);
    let id = crate::core::token::b64::hex(id.get(..12).unwrap_or_default());
    format!("actwarden.tokens.v1|{id}|")
}

impl<'h, H: Host> SharedTokenTable<'h, H> {
    pub(crate) fn new(host: &'h H, prefix: &'h str) -> Self {
        SharedTokenTable {
            host,
            prefix,
            last_read: Cell::new(None),
        }
    }

    fn slot(token: &TokenHash) -> u32 {
        let mut first = [0u8; 4];
        first.copy_from_slice(token.get(..4).unwrap_or(&[0; 4]));
        u32::from_le_bytes(first) % SHARED_TOKEN_SLOTS
    }

    fn slot_key(&self, slot: u32) -> String {
        format!("{}{slot}", self.prefix)
    }
}

impl<H: Host> SharedTokens for SharedTokenTable<'_, H> {
    fn get(&self, token: &TokenHash) -> Option<SharedVerified> {
        let slot = Self::slot(token);
        let (bytes, cas) = self.host.shared_data(&self.slot_key(slot));
        self.last_read.set(Some((slot, cas)));
        SharedVerified::decode(&bytes?, token)
    }

    fn put(&self, token: &TokenHash, entry: &SharedVerified) {
        let slot = Self::slot(token);
        let key = self.slot_key(slot);
        let cas = match self.last_read.take() {
            Some((read, cas)) if read == slot => cas,
            _ => self.host.shared_data(&key).1,
        };
        // A CAS mismatch: another worker filled this slot since; its entry stays.
        let _written = self.host.set_shared_data(&key, &entry.encode(token), cas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::alg::Alg;
    use crate::core::time::UnixTime;
    use crate::hosts::envoy::fake::FakeHost;

    fn entry(key: u8) -> SharedVerified {
        SharedVerified {
            provider: 0,
            alg: Alg::ES256,
            key: [key; 32],
            expires: UnixTime::from_secs(1000),
        }
    }

    fn table<'h>(host: &'h FakeHost, prefix: &'h str) -> SharedTokenTable<'h, FakeHost> {
        SharedTokenTable::new(host, prefix)
    }

    /// Two token hashes that fall in the same slot.
    fn colliding() -> (TokenHash, TokenHash) {
        let a = [1u8; 32];
        let mut b = [2u8; 32];
        b[..4].copy_from_slice(&a[..4]);
        (a, b)
    }

    #[test]
    fn an_entry_written_by_one_worker_is_read_by_another() {
        let host = FakeHost::default();
        let prefix = prefix_for(b"{}");
        let vm1 = table(&host, &prefix);
        let vm2 = table(&host, &prefix);
        vm1.put(&[1; 32], &entry(7));
        assert_eq!(vm2.get(&[1; 32]), Some(entry(7)));
        assert_eq!(vm2.get(&[3; 32]), None);
    }

    #[test]
    fn a_slot_holds_one_token_and_never_lends_it_to_another() {
        let host = FakeHost::default();
        let prefix = prefix_for(b"{}");
        let table = table(&host, &prefix);
        let (a, b) = colliding();
        table.put(&a, &entry(1));
        assert_eq!(table.get(&b), None, "same slot, other token");
        // Eviction: the newer token takes the slot.
        table.put(&b, &entry(2));
        assert_eq!(table.get(&a), None);
        assert_eq!(table.get(&b), Some(entry(2)));
        let slots = host.state().shared.len();
        assert_eq!(slots, 1, "bounded: one key per slot");
    }

    #[test]
    fn policies_do_not_share_a_table() {
        let host = FakeHost::default();
        let (p1, p2) = (prefix_for(b"{\"a\":1}"), prefix_for(b"{\"a\":2}"));
        table(&host, &p1).put(&[1; 32], &entry(1));
        assert_eq!(table(&host, &p2).get(&[1; 32]), None);
    }

    #[test]
    fn a_write_that_loses_the_race_keeps_the_other_workers_entry() {
        let host = FakeHost::default();
        let prefix = prefix_for(b"{}");
        let table = table(&host, &prefix);
        let (a, b) = colliding();
        let key = table.slot_key(SharedTokenTable::<FakeHost>::slot(&a));
        table.put(&a, &entry(1));
        // This worker reads the slot's version; another worker writes before it does.
        let (_, stale) = host.shared_data(&key);
        host.set_shared(&key, &entry(9).encode(&b));
        assert!(!host.set_shared_data(&key, &entry(1).encode(&a), stale));
        assert_eq!(table.get(&b), Some(entry(9)));
        // Through `put`: it reads the current version, so its write lands.
        table.put(&a, &entry(1));
        assert_eq!(table.get(&a), Some(entry(1)));
    }

    #[test]
    fn a_miss_reads_its_slot_once_and_keeps_what_another_worker_wrote_since() {
        use crate::hosts::envoy::fake::Call;
        let host = FakeHost::default();
        let prefix = prefix_for(b"{}");
        let (a, b) = colliding();
        let reads = |host: &FakeHost| {
            let state = host.state();
            state
                .calls
                .iter()
                .filter(|c| matches!(c, Call::SharedData(_)))
                .count()
        };
        // An empty slot: read once, written unconditionally.
        let table1 = table(&host, &prefix);
        assert_eq!(table1.get(&a), None);
        table1.put(&a, &entry(1));
        assert_eq!(reads(&host), 1);
        assert_eq!(table1.get(&a), Some(entry(1)));
        // Another token of the same slot misses; while it is verified another worker
        // writes the slot: that entry stays.
        let table2 = table(&host, &prefix);
        assert_eq!(table2.get(&b), None);
        let key = table2.slot_key(SharedTokenTable::<FakeHost>::slot(&a));
        host.set_shared(&key, &entry(9).encode(&a));
        table2.put(&b, &entry(2));
        assert_eq!(reads(&host), 3, "no second read before the write");
        assert_eq!(table2.get(&a), Some(entry(9)));
        assert_eq!(table2.get(&b), None);
        // Unchanged since the read: the write lands.
        table2.put(&b, &entry(2));
        assert_eq!(table2.get(&b), Some(entry(2)));
    }

    #[test]
    fn damaged_slots_read_as_empty() {
        let host = FakeHost::default();
        let prefix = prefix_for(b"{}");
        let table = table(&host, &prefix);
        host.set_shared(
            &table.slot_key(SharedTokenTable::<FakeHost>::slot(&[1; 32])),
            b"garbage",
        );
        assert_eq!(table.get(&[1; 32]), None);
    }
}
