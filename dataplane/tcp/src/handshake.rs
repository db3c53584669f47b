//! Passive open: what a SYN offers, the SYN-ACK we answer, and the
//! [`Handshake`] an endpoint is created from once the peer's ACK completes
//! it.
//!
//! The lcore answers SYNs itself — from a SYN cache or statelessly with a
//! SYN cookie — and creates the [`Endpoint`](crate::Endpoint) only when the
//! final ACK of the three-way handshake is validated. These helpers keep
//! the SYN-ACK and the endpoint consistent:
//!
//! ```
//! use qsplice_tcp::{Config, Endpoint, Now, Segment, SynAck, SynOptions};
//! # let syn_bytes = {
//! #   let o = qsplice_tcp::OutOptions { mss: Some(1460), ws: Some(7), sack_ok: true, ts: Some((1000, 0)), sack: [None; 4] };
//! #   let s = qsplice_tcp::SegmentOut { seq: 5000, ack: None, flags: qsplice_wire::TcpFlags::SYN, window: 64240, options: o, payload: (&[], &[]) };
//! #   let mut b = vec![0u8; s.len()]; s.write(&mut b, 40000, 443).unwrap(); b };
//! let cfg = Config::default();
//! let syn = Segment::parse(&syn_bytes).unwrap();
//! let offer = SynOptions::from_segment(&syn);
//! let our_tsval = 77;
//! let answer = SynAck::answer(&cfg, &offer, our_tsval);
//! let mut opts = [0u8; 40];
//! let n = answer.write_options(&mut opts); // the SYN-ACK's options
//! assert_eq!(n, answer.options_len());
//! // ... SYN-ACK sent with seq = iss, ack = syn.seq + 1, window = cfg.syn_window() ...
//! // The peer's ACK arrives (seq = syn.seq + 1, ack = iss + 1):
//! let iss = 9000;
//! let hs = answer.handshake(&offer, iss, syn.seq, 502, Some((1001, our_tsval)));
//! let ep = Endpoint::accept(&cfg, hs, Now { us: 1_000, tsval: 78 });
//! assert!(ep.may_send());
//! ```

use crate::config::Config;
use crate::segment::{OutOptions, SegOptions, Segment};

/// The peer's timestamps as of the ACK that completed the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsInfo {
    /// The peer's latest TSval (becomes TS.Recent, echoed in our TSecr).
    pub ts_recent: u32,
    /// The TSecr of that ACK (our SYN-ACK's TSval echoed): with the
    /// current TSval it gives a first RTT sample. 0: none.
    pub tsecr: u32,
}

/// What the two ends agreed in the three-way handshake (passive side:
/// from the SYN and what we answered in the SYN-ACK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Our initial sequence number (the SYN-ACK's).
    pub iss: u32,
    /// The peer's initial sequence number (the SYN's).
    pub irs: u32,
    /// The MSS the peer announced (536 when it announced none, RFC 9293).
    pub peer_mss: u16,
    /// The peer's window-scale shift; `None`: no scaling either way.
    pub peer_ws: Option<u8>,
    /// The shift we announced (meaningful only with `peer_ws`).
    pub local_ws: u8,
    /// SACK agreed (both sent SACK-permitted).
    pub sack: bool,
    /// Timestamps agreed: the peer's.
    pub ts: Option<TsInfo>,
    /// The raw window field of the ACK that completed the handshake (scaled
    /// by `peer_ws`: it is not a SYN).
    pub peer_window: u16,
    /// RTT of the SYN-ACK, if the caller measured it (µs).
    pub rtt_us: Option<u64>,
}

/// What a SYN offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynOptions {
    /// MSS option.
    pub mss: Option<u16>,
    /// Window-scale option (shift).
    pub ws: Option<u8>,
    /// SACK-permitted option.
    pub sack_ok: bool,
    /// TSval, when the SYN carries timestamps.
    pub tsval: Option<u32>,
}

impl SynOptions {
    /// From parsed options.
    pub fn from_options(o: &SegOptions) -> SynOptions {
        SynOptions {
            mss: o.mss,
            ws: o.ws,
            sack_ok: o.sack_ok,
            tsval: o.ts.map(|(v, _)| v),
        }
    }

    /// From a parsed SYN.
    pub fn from_segment(s: &Segment<'_>) -> SynOptions {
        Self::from_options(&s.options)
    }

    /// From a raw options area.
    pub fn parse(area: &[u8]) -> SynOptions {
        Self::from_options(&SegOptions::parse(area))
    }
}

/// The SYN-ACK answering a SYN: what we announce, given our [`Config`]
/// and the SYN's offer (window scaling, SACK and timestamps only if the SYN
/// offered them and the config enables them, RFC 7323 / RFC 2018).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynAck {
    /// Our MSS (`cfg.mss`).
    pub mss: u16,
    /// Our window-scale shift, announced iff the SYN offered scaling.
    pub ws: Option<u8>,
    /// SACK-permitted announced.
    pub sack: bool,
    /// Timestamps `(our TSval, the SYN's TSval)` announced.
    pub ts: Option<(u32, u32)>,
}

impl SynAck {
    /// The answer to `syn` under `cfg`; `tsval` is our TSval for the
    /// SYN-ACK (a SYN-cookie path may encode bits in it).
    pub fn answer(cfg: &Config, syn: &SynOptions, tsval: u32) -> SynAck {
        SynAck {
            mss: cfg.mss.max(1),
            ws: (cfg.window_scaling && syn.ws.is_some()).then(|| cfg.window_shift()),
            sack: cfg.sack && syn.sack_ok,
            ts: if cfg.timestamps {
                syn.tsval.map(|v| (tsval, v))
            } else {
                None
            },
        }
    }

    /// The options as [`OutOptions`].
    pub fn out_options(&self) -> OutOptions {
        OutOptions {
            mss: Some(self.mss),
            ws: self.ws,
            sack_ok: self.sack,
            ts: self.ts,
            sack: [None; 4],
        }
    }

    /// Length of the SYN-ACK's options (≤ 20).
    pub fn options_len(&self) -> usize {
        self.out_options().len()
    }

    /// Writes the SYN-ACK's options; returns the bytes written (0 if `buf`
    /// is shorter than [`options_len`](Self::options_len)).
    pub fn write_options(&self, buf: &mut [u8]) -> usize {
        self.out_options().write(buf)
    }

    /// The [`Handshake`] once the peer's ACK (window field `peer_window`,
    /// timestamps `ack_ts` = its `(TSval, TSecr)` if any) completed it.
    pub fn handshake(
        &self,
        syn: &SynOptions,
        iss: u32,
        irs: u32,
        peer_window: u16,
        ack_ts: Option<(u32, u32)>,
    ) -> Handshake {
        let ts = match (self.ts, ack_ts, syn.tsval) {
            (Some(_), Some((v, e)), _) => Some(TsInfo {
                ts_recent: v,
                tsecr: e,
            }),
            // Agreed, but the ACK carries none: keep the SYN's.
            (Some(_), None, Some(v)) => Some(TsInfo {
                ts_recent: v,
                tsecr: 0,
            }),
            _ => None,
        };
        Handshake {
            iss,
            irs,
            peer_mss: syn.mss.unwrap_or(536),
            peer_ws: self.ws.and(syn.ws),
            local_ws: self.ws.unwrap_or(0),
            sack: self.sack,
            ts,
            peer_window,
            rtt_us: None,
        }
    }
}
