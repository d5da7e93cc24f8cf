//! The integrity of the audit chain: how an entry's hash is made, signed
//! checkpoints of a chain's head, and verification (against a kept
//! checkpoint when the operator has one).
//!
//! Each entry records in `chain` how its hash was made:
//!
//! - [`LEGACY`] (1): SHA-256 over the first encoding, the entries written
//!   before the keyed chain existed;
//! - [`UNKEYED`] (2): SHA-256 over the second encoding (which adds
//!   `actor_name`), written by a server without an audit key;
//! - [`KEYED`] (3): HMAC-SHA256 over the second encoding with the chain
//!   key, written by a server with an audit key.
//!
//! Anyone who can write the database can recompute an unkeyed hash, so
//! unkeyed entries only show accidental or naive changes. A keyed hash
//! cannot be recomputed without the key, which is not in the database: it
//! is derived from `SCIM_AUDIT_KEY`, else from `SCIM_SECRET_KEY` (with a
//! label of its own, so the credential key is never used as a MAC key).
//! Once a chain holds a keyed entry, every later entry must be keyed: an
//! unkeyed entry after a keyed one is reported as a break (a rewrite by
//! someone without the key, or a server started without it).
//!
//! What no hash chain shows on its own is the removal of the newest
//! entries together with the head: the shortened chain is still a valid
//! chain. A **checkpoint** (`SEQ:HASH` of the head, with the time and a
//! MAC over the three) is printed by every verification; kept elsewhere,
//! it is given back as `--expect-head SEQ:HASH`, and verification then
//! fails unless the chain still holds that entry with that hash.

use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::TenantId;
use super::audit::{AuditEntry, AuditRow, GENESIS_HASH, MAX_PAGE};
use crate::db::AnyConnection;
use crate::db::schema::{audit_heads, audit_log};
use crate::error::{Error, Result};

/// `chain` of the entries written before the keyed chain: SHA-256 over
/// the first encoding.
pub const LEGACY: i32 = 1;
/// `chain` of entries written without an audit key: SHA-256 over the
/// second encoding.
pub const UNKEYED: i32 = 2;
/// `chain` of entries written with an audit key: HMAC-SHA256 over the
/// second encoding.
pub const KEYED: i32 = 3;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(message);
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys of the audit chain: one for entries, one for checkpoints,
/// both derived from one master secret with labels of their own.
#[derive(Clone)]
pub struct AuditKey {
    chain: [u8; 32],
    checkpoint: [u8; 32],
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditKey({})", self.id())
    }
}

impl AuditKey {
    /// The keys derived from `master` (HMAC-SHA256 of a label under it).
    pub fn derive(master: &[u8]) -> Self {
        Self {
            chain: mac(master, b"scim-audit-chain-v2"),
            checkpoint: mac(master, b"scim-audit-checkpoint-v1"),
        }
    }

    /// The keys derived from `SCIM_SECRET_KEY` (base64 of 32 bytes), the
    /// key that also seals credentials; the labels keep the uses apart.
    pub fn from_secret_key(text: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| Error::Config("SCIM_SECRET_KEY is not valid base64".into()))?;
        if bytes.len() != 32 {
            return Err(Error::Config(format!(
                "SCIM_SECRET_KEY must decode to 32 bytes, not {}",
                bytes.len()
            )));
        }
        Ok(Self::derive(&bytes))
    }

    /// The keys derived from `SCIM_AUDIT_KEY` (base64 of at least 32
    /// bytes).
    pub fn from_audit_key(text: &str) -> Result<Self> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| Error::Config("SCIM_AUDIT_KEY is not valid base64".into()))?;
        if bytes.len() < 32 {
            return Err(Error::Config(format!(
                "SCIM_AUDIT_KEY must decode to at least 32 bytes, not {}",
                bytes.len()
            )));
        }
        Ok(Self::derive(&bytes))
    }

    /// A short public name of the key (the first 8 bytes, in hex, of a MAC
    /// of a fixed label), shown by verification so that an operator can
    /// tell which key was used; it reveals nothing about the key.
    pub fn id(&self) -> String {
        hex(&mac(&self.checkpoint, b"scim-audit-key-id")[..8])
    }
}

thread_local! {
    /// The chain key of the write running on this thread: outer None when
    /// no write is running (see [`with_chain_key`]).
    static KEY: RefCell<Option<Option<AuditKey>>> = const { RefCell::new(None) };
}

/// Runs `f` (one write transaction) with `key` chaining the audit entries
/// it appends; [`crate::store::Store::write`] calls it for every write, so
/// every path that appends an entry uses the store's key.
pub fn with_chain_key<T>(key: Option<AuditKey>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Option<AuditKey>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            KEY.with(|k| *k.borrow_mut() = previous);
        }
    }
    let previous = KEY.with(|k| k.borrow_mut().replace(key));
    let _restore = Restore(previous);
    f()
}

/// The key of the current write: an error outside [`with_chain_key`],
/// so that no path can append with the wrong kind of hash unnoticed.
pub(super) fn chain_key() -> Result<Option<AuditKey>> {
    KEY.with(|k| k.borrow().clone())
        .ok_or_else(|| Error::internal("an audit entry was appended outside Store::write"))
}

/// The hash of `e` as its `chain` says it is made; `None` for a keyed
/// entry without the key, or an unknown `chain`.
pub fn entry_hash(tenant: TenantId, e: &AuditEntry, key: Option<&AuditKey>) -> Option<String> {
    match e.chain {
        LEGACY => Some(hex(&Sha256::digest(encoding_v1(tenant, e).as_bytes()))),
        UNKEYED => Some(hex(&Sha256::digest(encoding_v2(tenant, e).as_bytes()))),
        KEYED => key.map(|k| hex(&mac(&k.chain, encoding_v2(tenant, e).as_bytes()))),
        _ => None,
    }
}

/// The first encoding: a JSON array of a format tag and every column in a
/// fixed order, `before`/`after` as the stored JSON text and `at` in
/// microseconds since the epoch. A JSON array of strings, numbers and
/// nulls has exactly one serialisation, so the encoding is unambiguous.
fn encoding_v1(tenant: TenantId, e: &AuditEntry) -> String {
    json!([
        "scim-audit-v1",
        tenant.0,
        e.seq,
        e.at.timestamp_micros(),
        e.actor,
        e.action,
        e.target_type,
        e.target_id,
        e.subject,
        e.before,
        e.after,
        e.cause,
        e.prev_hash,
    ])
    .to_string()
}

/// The second encoding: the first with its own tag, `chain` and
/// `actor_name`.
fn encoding_v2(tenant: TenantId, e: &AuditEntry) -> String {
    json!([
        "scim-audit-v2",
        tenant.0,
        e.seq,
        e.chain,
        e.at.timestamp_micros(),
        e.actor,
        e.actor_name,
        e.action,
        e.target_type,
        e.target_id,
        e.subject,
        e.before,
        e.after,
        e.cause,
        e.prev_hash,
    ])
    .to_string()
}

/// A chain's head at a time: what an operator keeps to detect later that
/// entries were removed from the end or rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The head's seq.
    pub seq: i64,
    /// The head's hash.
    pub hash: String,
    /// When it was the head.
    pub at: DateTime<Utc>,
    /// HMAC-SHA256 (hex) over tenant, seq, hash and time with the
    /// checkpoint key; none without an audit key.
    pub signature: Option<String>,
}

impl Checkpoint {
    /// The head of `tenant` at `at`, signed with `key` when there is one.
    pub fn new(
        tenant: TenantId,
        seq: i64,
        hash: String,
        at: DateTime<Utc>,
        key: Option<&AuditKey>,
    ) -> Self {
        let signature = key.map(|k| hex(&mac(&k.checkpoint, &signed_text(tenant, seq, &hash, at))));
        Self {
            seq,
            hash,
            at,
            signature,
        }
    }

    /// Whether `signature` is the checkpoint key's MAC over the rest.
    pub fn signature_holds(&self, tenant: TenantId, key: &AuditKey) -> bool {
        let expected = mac(
            &key.checkpoint,
            &signed_text(tenant, self.seq, &self.hash, self.at),
        );
        self.signature.as_deref() == Some(hex(&expected).as_str())
    }

    /// `SEQ:HASH`, the form `--expect-head` takes.
    pub fn head(&self) -> String {
        format!("{}:{}", self.seq, self.hash)
    }

    /// The checkpoint as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "head": self.head(),
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "signature": self.signature,
        })
    }
}

fn signed_text(tenant: TenantId, seq: i64, hash: &str, at: DateTime<Utc>) -> Vec<u8> {
    json!([
        "scim-audit-checkpoint-v1",
        tenant.0,
        seq,
        hash,
        at.timestamp_micros()
    ])
    .to_string()
    .into_bytes()
}

/// A head the operator kept: `SEQ:HASH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadRef {
    /// The entry's seq.
    pub seq: i64,
    /// Its hash (64 lowercase hex digits).
    pub hash: String,
}

impl FromStr for HeadRef {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::from(scim_core::Error::invalid_value(format!(
                "a kept head is SEQ:HASH (a checkpoint's `head`, such as 42:{}), not '{}'",
                "0".repeat(64),
                text.chars().take(100).collect::<String>()
            )))
        };
        let (seq, hash) = text.trim().split_once(':').ok_or_else(bad)?;
        let seq: i64 = seq.parse().map_err(|_| bad())?;
        let hash = hash.to_ascii_lowercase();
        if seq < 0 || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self { seq, hash })
    }
}

impl fmt::Display for HeadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// How the chain relates to a kept head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadRelation {
    /// The kept head is still the head.
    Head,
    /// The chain holds the kept head and this many entries after it.
    Extends(i64),
    /// The chain's head is below the kept head's seq: entries were removed
    /// from the end (or the head was moved back).
    Truncated {
        /// The chain's head seq now.
        head_seq: i64,
    },
    /// The chain has no entry at the kept head's seq, below its head: it
    /// was deleted.
    Missing,
    /// The entry at the kept head's seq has another hash: it, or an entry
    /// before it, was rewritten.
    Rewritten {
        /// The hash found.
        found: String,
    },
}

/// A verification's check against a kept head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedHead {
    /// The kept head.
    pub expected: HeadRef,
    /// How the chain relates to it.
    pub relation: HeadRelation,
}

impl ExpectedHead {
    /// Whether the chain still holds the kept head.
    pub fn holds(&self) -> bool {
        matches!(self.relation, HeadRelation::Head | HeadRelation::Extends(_))
    }

    /// The relation as a word for JSON.
    pub fn kind(&self) -> &'static str {
        match self.relation {
            HeadRelation::Head => "head",
            HeadRelation::Extends(_) => "extends",
            HeadRelation::Truncated { .. } => "truncated",
            HeadRelation::Missing => "missing",
            HeadRelation::Rewritten { .. } => "rewritten",
        }
    }

    /// What the relation means, in a sentence.
    pub fn describe(&self) -> String {
        let seq = self.expected.seq;
        match &self.relation {
            HeadRelation::Head => format!("the kept head {seq} is still the head"),
            HeadRelation::Extends(n) => {
                format!("the chain holds the kept head {seq} and {n} entries after it")
            }
            HeadRelation::Truncated { head_seq } => format!(
                "the chain's head is at seq {head_seq}, below the kept head {seq}: entries were removed from the end"
            ),
            HeadRelation::Missing => {
                format!("entry {seq} of the kept head is missing: it was deleted")
            }
            HeadRelation::Rewritten { found } => format!(
                "entry {seq} has hash {found}, not the kept head's: it or an entry before it was rewritten"
            ),
        }
    }
}

/// The first problem found by verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first seq that does not verify.
    pub seq: i64,
    /// What is wrong there.
    pub reason: String,
}

/// The result of verifying a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Whether an audit key was given (keyed entries' MACs checked).
    pub keyed: bool,
    /// The key's public id ([`AuditKey::id`]).
    pub key_id: Option<String>,
    /// Entries checked.
    pub checked: i64,
    /// The head's seq (the last entry appended).
    pub head_seq: i64,
    /// The head's hash.
    pub head_hash: String,
    /// The first keyed entry, if any.
    pub keyed_from: Option<i64>,
    /// Entries whose hash is unkeyed (anyone with database access could
    /// have recomputed them).
    pub unkeyed_entries: i64,
    /// Keyed entries whose MAC was not checked, for want of the key
    /// (only their links to each other were).
    pub unchecked_macs: i64,
    /// The first break, if the chain does not verify.
    pub first_break: Option<ChainBreak>,
    /// The check against a kept head, when one was given.
    pub expected_head: Option<ExpectedHead>,
    /// The head now, signed: given when the chain verifies.
    pub checkpoint: Option<Checkpoint>,
}

impl Verification {
    /// The chain verifies and holds the kept head, if one was given.
    pub fn valid(&self) -> bool {
        self.first_break.is_none() && self.expected_head.as_ref().is_none_or(ExpectedHead::holds)
    }

    /// The verification as JSON (the API's and scimctl's form).
    pub fn to_json(&self) -> Value {
        let (first_bad, reason) = match &self.first_break {
            Some(b) => (Some(b.seq), Some(b.reason.clone())),
            None => (None, None),
        };
        json!({
            "valid": self.valid(),
            "keyed": self.keyed,
            "keyId": self.key_id,
            "checked": self.checked,
            "headSeq": self.head_seq,
            "headHash": self.head_hash,
            "keyedFrom": self.keyed_from,
            "unkeyedEntries": self.unkeyed_entries,
            "uncheckedMacs": self.unchecked_macs,
            "firstBadSeq": first_bad,
            "reason": reason,
            "expectedHead": self.expected_head.as_ref().map(|e| json!({
                "head": e.expected.to_string(),
                "holds": e.holds(),
                "relation": e.kind(),
                "detail": e.describe(),
            })),
            "checkpoint": self.checkpoint.as_ref().map(Checkpoint::to_json),
        })
    }
}

/// Walks the tenant's chain in seq order: reports the first seq that is
/// missing, out of place, whose hash does not match its content or its
/// predecessor, or that is unkeyed after keyed entries; checks `expect`;
/// and signs the head as a checkpoint when all is well.
pub(super) fn verify(
    conn: &mut AnyConnection,
    tenant: TenantId,
    key: Option<&AuditKey>,
    expect: Option<&HeadRef>,
) -> Result<Verification> {
    let head: Option<(i64, String)> = audit_heads::table
        .filter(audit_heads::tenant_id.eq(tenant.0))
        .select((audit_heads::seq, audit_heads::hash))
        .first(conn)
        .optional()?;
    let (head_seq, head_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    let mut v = Verification {
        keyed: key.is_some(),
        key_id: key.map(AuditKey::id),
        checked: 0,
        head_seq,
        head_hash: head_hash.clone(),
        keyed_from: None,
        unkeyed_entries: 0,
        unchecked_macs: 0,
        first_break: None,
        expected_head: None,
        checkpoint: None,
    };
    v.first_break = walk(conn, tenant, key, &mut v)?;
    if v.first_break.is_none() {
        v.checkpoint = Some(Checkpoint::new(
            tenant,
            head_seq,
            head_hash,
            super::now(),
            key,
        ));
    }
    if let Some(expected) = expect {
        let found: Option<String> = audit_log::table
            .filter(audit_log::tenant_id.eq(tenant.0))
            .filter(audit_log::seq.eq(expected.seq))
            .select(audit_log::hash)
            .first(conn)
            .optional()?;
        let relation = if expected.seq > head_seq {
            HeadRelation::Truncated { head_seq }
        } else if expected.seq == 0 {
            // The empty chain's head: every chain holds it.
            match head_seq {
                0 => HeadRelation::Head,
                n => HeadRelation::Extends(n),
            }
        } else {
            match found {
                None => HeadRelation::Missing,
                Some(found) if found != expected.hash => HeadRelation::Rewritten { found },
                Some(_) if expected.seq == head_seq => HeadRelation::Head,
                Some(_) => HeadRelation::Extends(head_seq - expected.seq),
            }
        };
        v.expected_head = Some(ExpectedHead {
            expected: expected.clone(),
            relation,
        });
    }
    Ok(v)
}

/// The chain walk of [`verify`]: counts into `v`, returns the first break.
fn walk(
    conn: &mut AnyConnection,
    tenant: TenantId,
    key: Option<&AuditKey>,
    v: &mut Verification,
) -> Result<Option<ChainBreak>> {
    let head_seq = v.head_seq;
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let fail = |seq: i64, reason: String| Ok(Some(ChainBreak { seq, reason }));
    // Rows appended after the head was read are not looked at: every
    // batch stops at the head's seq.
    loop {
        let rows: Vec<AuditRow> = audit_log::table
            .filter(audit_log::tenant_id.eq(tenant.0))
            .filter(audit_log::seq.ge(expected_seq))
            .filter(audit_log::seq.le(head_seq))
            .order(audit_log::seq.asc())
            .limit(MAX_PAGE)
            .select(AuditRow::as_select())
            .load(conn)?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            let (_, entry) = row.into_entry();
            if entry.seq != expected_seq {
                return fail(expected_seq, format!("entry {expected_seq} is missing"));
            }
            if entry.prev_hash != prev_hash {
                return fail(
                    entry.seq,
                    "its prev_hash is not the previous entry's hash (an entry before it was removed or reordered)"
                        .into(),
                );
            }
            if entry.chain != KEYED && v.keyed_from.is_some() {
                return fail(
                    entry.seq,
                    "it is not keyed but follows keyed entries (it was written or rewritten without the audit key)"
                        .into(),
                );
            }
            match entry_hash(tenant, &entry, key) {
                Some(hash) if hash == entry.hash => {}
                Some(_) => {
                    return fail(
                        entry.seq,
                        "its content does not match its hash (the entry was altered)".into(),
                    );
                }
                None if entry.chain == KEYED => v.unchecked_macs += 1,
                None => {
                    return fail(
                        entry.seq,
                        format!("its hash kind {} is unknown", entry.chain),
                    );
                }
            }
            if entry.chain == KEYED {
                v.keyed_from.get_or_insert(entry.seq);
            } else {
                v.unkeyed_entries += 1;
            }
            v.checked += 1;
            expected_seq += 1;
            prev_hash = entry.hash;
        }
    }
    if expected_seq <= head_seq {
        return fail(
            expected_seq,
            format!("entry {expected_seq} is missing (the chain head is at {head_seq})"),
        );
    }
    if prev_hash != v.head_hash {
        return fail(
            head_seq,
            "the last entry's hash is not the chain head's".into(),
        );
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn entry(chain: i32) -> AuditEntry {
        AuditEntry {
            seq: 1,
            at: DateTime::from_timestamp_micros(1_700_000_000_000_001).unwrap(),
            actor: "token:1".into(),
            actor_name: Some("hr-feed".into()),
            action: "user.create".into(),
            target_type: "User".into(),
            target_id: "u1".into(),
            subject: Some("u1".into()),
            before: None,
            after: Some(r#"{"userName":"a"}"#.into()),
            cause: None,
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
            chain,
        }
    }

    fn variants(base: &AuditEntry) -> Vec<AuditEntry> {
        vec![
            AuditEntry {
                seq: 2,
                ..base.clone()
            },
            AuditEntry {
                actor: "token:2".into(),
                ..base.clone()
            },
            AuditEntry {
                action: "user.patch".into(),
                ..base.clone()
            },
            AuditEntry {
                target_type: "Group".into(),
                ..base.clone()
            },
            AuditEntry {
                target_id: "u2".into(),
                ..base.clone()
            },
            AuditEntry {
                subject: None,
                ..base.clone()
            },
            AuditEntry {
                subject: Some("u2".into()),
                ..base.clone()
            },
            AuditEntry {
                before: Some("{}".into()),
                ..base.clone()
            },
            AuditEntry {
                after: Some(r#"{"userName":"b"}"#.into()),
                ..base.clone()
            },
            AuditEntry {
                cause: Some(1),
                ..base.clone()
            },
            AuditEntry {
                prev_hash: "1".repeat(64),
                ..base.clone()
            },
            AuditEntry {
                at: base.at + chrono::Duration::microseconds(1),
                ..base.clone()
            },
        ]
    }

    #[test]
    fn every_kind_of_hash_covers_every_field() {
        let key = AuditKey::from_secret_key(KEY).unwrap();
        for chain in [LEGACY, UNKEYED, KEYED] {
            let base = entry(chain);
            let h = entry_hash(TenantId(1), &base, Some(&key)).unwrap();
            assert_eq!(h.len(), 64);
            for v in variants(&base) {
                assert_ne!(entry_hash(TenantId(1), &v, Some(&key)).unwrap(), h, "{v:?}");
            }
            assert_ne!(entry_hash(TenantId(2), &base, Some(&key)).unwrap(), h);
        }
        // The second encoding covers the actor's name; the first predates it.
        for chain in [UNKEYED, KEYED] {
            let base = entry(chain);
            let renamed = AuditEntry {
                actor_name: Some("mallory".into()),
                ..base.clone()
            };
            assert_ne!(
                entry_hash(TenantId(1), &base, Some(&key)),
                entry_hash(TenantId(1), &renamed, Some(&key))
            );
        }
    }

    #[test]
    fn a_keyed_hash_needs_the_key_and_differs_from_the_unkeyed_one() {
        let key = AuditKey::from_secret_key(KEY).unwrap();
        let other = AuditKey::from_audit_key(&STANDARD.encode([7u8; 40])).unwrap();
        let keyed = entry(KEYED);
        assert_eq!(entry_hash(TenantId(1), &keyed, None), None);
        let with_key = entry_hash(TenantId(1), &keyed, Some(&key)).unwrap();
        assert_ne!(
            Some(with_key.clone()),
            entry_hash(TenantId(1), &keyed, Some(&other))
        );
        // What someone without the key would compute for the same content.
        let unkeyed = AuditEntry {
            chain: UNKEYED,
            ..keyed.clone()
        };
        assert_ne!(
            Some(with_key),
            entry_hash(TenantId(1), &unkeyed, Some(&key))
        );
        assert_eq!(entry_hash(TenantId(1), &entry(9), Some(&key)), None);
    }

    #[test]
    fn the_audit_key_is_derived_never_the_secret_itself() {
        let key = AuditKey::from_secret_key(KEY).unwrap();
        let raw = STANDARD.decode(KEY).unwrap();
        assert_ne!(key.chain.as_slice(), raw.as_slice());
        assert_ne!(key.chain, key.checkpoint);
        assert_eq!(key.id().len(), 16);
        assert!(!format!("{key:?}").contains(&hex(&key.chain)));
        assert!(AuditKey::from_secret_key("AAEC").is_err());
        assert!(AuditKey::from_audit_key(&STANDARD.encode([1u8; 31])).is_err());
        assert!(AuditKey::from_audit_key("not base64!").is_err());
    }

    #[test]
    fn checkpoints_are_signed_and_heads_parse() {
        let key = AuditKey::from_secret_key(KEY).unwrap();
        let at = DateTime::from_timestamp_micros(1_700_000_000_000_001).unwrap();
        let c = Checkpoint::new(TenantId(1), 5, "a".repeat(64), at, Some(&key));
        assert!(c.signature_holds(TenantId(1), &key));
        assert!(!c.signature_holds(TenantId(2), &key));
        let moved = Checkpoint {
            seq: 4,
            ..c.clone()
        };
        assert!(!moved.signature_holds(TenantId(1), &key));
        assert_eq!(
            Checkpoint::new(TenantId(1), 5, "a".repeat(64), at, None).signature,
            None
        );
        let head: HeadRef = c.head().parse().unwrap();
        assert_eq!(
            head,
            HeadRef {
                seq: 5,
                hash: "a".repeat(64)
            }
        );
        assert_eq!(head.to_string(), c.head());
        for bad in [
            "",
            "5",
            "x:aa",
            "-1:aa",
            "5:abc",
            &format!("5:{}", "g".repeat(64)),
        ] {
            assert!(bad.parse::<HeadRef>().is_err(), "{bad}");
        }
    }
}
