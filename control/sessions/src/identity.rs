//! From TLS hellos to session keys: what a ClientHello offers to resume
//! (looked up in the table on the lcore), and what the backend's
//! ServerHello says happened (learned by the control thread).
//!
//! | client offers | backend answers | learned |
//! |---|---|---|
//! | TLS 1.2 session ID *s* | echoes *s* | *s* → backend (resumed) |
//! | anything, TLS 1.2 | a new session ID *n* | *n* → backend (new session) |
//! | TLS 1.2 ticket *t* + session ID *s* | echoes *s* | *t* and *t*'s key name → backend (resumed) |
//! | TLS 1.3 PSK identities *i₀, i₁…* | `pre_shared_key` = *k* | *iₖ* and its key name → backend (resumed) |
//! | TLS 1.3, no PSK accepted | full handshake | nothing (tickets travel encrypted) |
//!
//! The key name — the first 16 bytes of an OpenSSL/nginx ticket, naming
//! the ticket key that sealed it — ties every later ticket of the same
//! backend to it: once one resumption on a backend has been seen, new
//! TLS 1.3 tickets from that backend (identities never seen before) still
//! find it.

use arrayvec::ArrayVec;
use qsplice_wire::tls::{ClientHello, ServerHello};

use crate::{IdentityKind, SessionKey};

/// Bytes of an OpenSSL/nginx ticket's key name.
pub const KEY_NAME_LEN: usize = 16;
/// Shortest ticket taken to carry a key name (name + IV + MAC at least).
const MIN_NAMED_TICKET: usize = 48;
/// Keys one offer yields at most.
pub const MAX_OFFER_KEYS: usize = 8;

/// What a ClientHello offers to resume, as table keys, most specific
/// first (look them up in this order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    /// Keys to look up, in order.
    pub keys: ArrayVec<SessionKey, MAX_OFFER_KEYS>,
    /// The legacy session ID's key, if the client sent one.
    pub session_id: Option<SessionKey>,
    /// TLS 1.3 PSK identities' keys and their key names', by index.
    pub psk: ArrayVec<(SessionKey, Option<SessionKey>), 4>,
    /// The TLS 1.2 ticket's key and key name's, if one was presented.
    pub ticket: Option<(SessionKey, Option<SessionKey>)>,
}

fn key_name(secret: (u64, u64), ticket: &[u8]) -> Option<SessionKey> {
    (ticket.len() >= MIN_NAMED_TICKET)
        .then(|| SessionKey::of(secret, IdentityKind::TicketKeyName, &ticket[..KEY_NAME_LEN]))
}

impl Offer {
    /// Reads what `ch` offers.
    pub fn of(secret: (u64, u64), ch: &ClientHello<'_>) -> Offer {
        let mut o = Offer::default();
        let mut names: ArrayVec<SessionKey, 4> = ArrayVec::new();
        for id in ch.psk_identities.iter().take(4) {
            let k = SessionKey::of(secret, IdentityKind::PskIdentity, id);
            let n = key_name(secret, id);
            o.psk.push((k, n));
            push(&mut o.keys, k);
            if let Some(n) = n {
                if !names.contains(&n) && !names.is_full() {
                    names.push(n);
                }
            }
        }
        if let Some(t) = ch.session_ticket.filter(|t| !t.is_empty()) {
            let k = SessionKey::of(secret, IdentityKind::Ticket, t);
            let n = key_name(secret, t);
            o.ticket = Some((k, n));
            push(&mut o.keys, k);
            if let Some(n) = n {
                if !names.contains(&n) && !names.is_full() {
                    names.push(n);
                }
            }
        }
        if !ch.session_id.is_empty() {
            let k = SessionKey::of(secret, IdentityKind::SessionId, ch.session_id);
            o.session_id = Some(k);
            push(&mut o.keys, k);
        }
        for n in names {
            push(&mut o.keys, n);
        }
        o
    }

    /// Nothing to resume: the VIP's scheduler decides.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Is `k` one of the offer's ticket key names? A key name stands for
    /// a backend's ticket key (every session it sealed), not for one
    /// session: it is never BUSY at session grain.
    pub fn is_key_name(&self, k: SessionKey) -> bool {
        self.psk.iter().any(|(_, n)| *n == Some(k))
            || self.ticket.is_some_and(|(_, n)| n == Some(k))
    }
}

fn push(v: &mut ArrayVec<SessionKey, MAX_OFFER_KEYS>, k: SessionKey) {
    if !v.contains(&k) && !v.is_full() {
        v.push(k);
    }
}

/// What the backend's ServerHello says about the offer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The backend resumed a session the client offered.
    pub resumed: bool,
    /// A HelloRetryRequest: the real answer comes later.
    pub retry: bool,
    /// Keys the backend now holds (learn them for it).
    pub learn: ArrayVec<SessionKey, 4>,
}

impl Outcome {
    /// Reads `sh`, the answer to `offer`.
    pub fn of(secret: (u64, u64), offer: &Offer, sh: &ServerHello<'_>) -> Outcome {
        let mut out = Outcome::default();
        if sh.is_hrr {
            out.retry = true;
            return out;
        }
        if sh.is_tls13() {
            if let Some((k, n)) = sh.selected_psk.and_then(|i| offer.psk.get(usize::from(i))) {
                out.resumed = true;
                out.learn.push(*k);
                if let Some(n) = n {
                    out.learn.push(*n);
                }
            }
            return out;
        }
        if sh.session_id.is_empty() {
            return out;
        }
        let sid = SessionKey::of(secret, IdentityKind::SessionId, sh.session_id);
        if offer.session_id == Some(sid) {
            out.resumed = true;
            out.learn.push(sid);
            if let Some((k, n)) = offer.ticket {
                out.learn.push(k);
                if let Some(n) = n {
                    out.learn.push(n);
                }
            }
        } else {
            out.learn.push(sid);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qsplice_wire::tls::HelloAssembler;

    const SECRET: (u64, u64) = (1, 2);

    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../dataplane/wire/tests/fixtures/tls")
            .join(name);
        let raw = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let mut a = HelloAssembler::new();
        a.push(&raw).unwrap().expect("a whole hello");
        a.message().unwrap().to_vec()
    }

    fn offer(name: &str) -> (Offer, Vec<u8>) {
        let m = fixture(name);
        let ch = ClientHello::parse(&m).unwrap();
        (Offer::of(SECRET, &ch), m.clone())
    }

    fn outcome(o: &Offer, name: &str) -> Outcome {
        let m = fixture(name);
        Outcome::of(SECRET, o, &ServerHello::parse(&m).unwrap())
    }

    #[test]
    fn tls12_session_id_resumption_is_learned() {
        let (o, m) = offer("ch-tls12-resume-sessid.bin");
        let ch = ClientHello::parse(&m).unwrap();
        assert!(!ch.session_id.is_empty());
        let sid = SessionKey::of(SECRET, IdentityKind::SessionId, ch.session_id);
        assert_eq!(o.session_id, Some(sid));
        assert_eq!(o.keys[0], sid);
        let r = outcome(&o, "sh-tls12-resumed.bin");
        assert!(r.resumed && !r.retry);
        assert_eq!(r.learn.as_slice(), &[sid]);
    }

    #[test]
    fn tls12_new_session_id_is_learned() {
        let (o, _) = offer("ch-openssl-tls12-only.bin");
        let r = outcome(&o, "sh-tls12-new-session.bin");
        assert!(!r.resumed);
        assert_eq!(r.learn.len(), 1, "the server's new session ID");
        assert_ne!(Some(r.learn[0]), o.session_id);
    }

    #[test]
    fn tls12_ticket_offer_has_ticket_and_key_name() {
        let (o, m) = offer("ch-tls12-ticket.bin");
        let ch = ClientHello::parse(&m).unwrap();
        let t = ch.session_ticket.unwrap();
        let (k, n) = o.ticket.unwrap();
        assert_eq!(k, SessionKey::of(SECRET, IdentityKind::Ticket, t));
        assert_eq!(
            n,
            Some(SessionKey::of(
                SECRET,
                IdentityKind::TicketKeyName,
                &t[..16]
            ))
        );
        assert_eq!(o.keys[0], k, "the ticket is looked up first");
        assert_eq!(*o.keys.last().unwrap(), n.unwrap(), "the key name last");
        assert!(o.is_key_name(n.unwrap()));
        assert!(!o.is_key_name(k), "the ticket itself is a session");
        assert!(o.session_id.is_none_or(|s| !o.is_key_name(s)));
    }

    #[test]
    fn tls13_psk_acceptance_learns_identity_and_key_name() {
        let (o, m) = offer("ch-tls13-psk.bin");
        let ch = ClientHello::parse(&m).unwrap();
        let id = ch.psk_identities[0];
        let (k, n) = o.psk[0];
        assert_eq!(k, SessionKey::of(SECRET, IdentityKind::PskIdentity, id));
        let r = outcome(&o, "sh-tls13-psk-accepted.bin");
        assert!(r.resumed);
        assert_eq!(r.learn[0], k);
        assert_eq!(r.learn.get(1).copied(), n);
        // A full TLS 1.3 handshake teaches nothing.
        let (o2, _) = offer("ch-curl.bin");
        let r = outcome(&o2, "sh-tls13-full.bin");
        assert!(!r.resumed && r.learn.is_empty());
    }

    #[test]
    fn different_secrets_give_different_keys() {
        let m = fixture("ch-tls12-resume-sessid.bin");
        let ch = ClientHello::parse(&m).unwrap();
        assert_ne!(Offer::of((1, 2), &ch).keys, Offer::of((3, 4), &ch).keys);
    }
}
