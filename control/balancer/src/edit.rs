//! Management API changes as edits of the running `[lb]` section.
//!
//! Every change the API makes (add or remove a VIP or a backend, a VIP's
//! policy or rules, a backend's weight or state) is an edit of the running
//! configuration: the control thread validates the whole edited config the
//! way a file is validated, then applies it with the same all-or-nothing
//! path as a reload ([`crate::LbRuntime::reconfigure`]). An API change is
//! therefore exactly what the same edit of the file would do, and a bad one
//! is refused with the key, the value and why. Like HAProxy's runtime API,
//! the changes live in memory: the next reload applies the file again.

use std::net::SocketAddr;

use qsplice_config::{BackendConf, BackendStateConf, ContentRuleConf, LbConf, PolicyConf, VipConf};
use qsplice_mgmt::{ApiError, BackendChange, Change};
use serde_json::{json, Value};

/// What an edit did, for the API's answer and the follow-up.
#[derive(Clone, Debug, PartialEq)]
pub struct Edit {
    /// The answer's body (what changed).
    pub summary: Value,
    /// `--force` on a removal: reset the connections of this VIP (all its
    /// backends, or the one given) once the change is applied.
    pub force: Option<(SocketAddr, Option<SocketAddr>)>,
}

/// `POST /api/v1/vips/{vip}`: the keys a VIP's settings change may give.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct VipPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    policy: Option<PolicyConf>,
    #[serde(default)]
    rules: Option<Vec<ContentRuleConf>>,
}

/// The VIP `vip` (name or `address:port`) of `l`.
fn vip_index(l: &LbConf, vip: &str) -> Result<usize, ApiError> {
    l.vips
        .iter()
        .position(|v| v.name == vip || v.address.to_string() == vip)
        .ok_or_else(|| ApiError::not_found(format!("no VIP named `{vip}`")))
}

fn backend_index(v: &VipConf, backend: &str) -> Result<usize, ApiError> {
    v.backends
        .iter()
        .position(|b| b.address.to_string() == backend)
        .ok_or_else(|| ApiError::not_found(format!("VIP `{}` has no backend {backend}", v.name)))
}

fn body<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> Result<T, ApiError> {
    serde_json::from_value(v.clone()).map_err(|e| ApiError::bad_request(format!("{what}: {e}")))
}

/// Apply `c` to `l` (not yet validated: the caller validates the whole
/// config, then reconfigures). `ReloadTls` and `RotateTickets` are not
/// edits and are refused here.
pub fn edit(l: &mut LbConf, c: &Change) -> Result<Edit, ApiError> {
    let summary = match c {
        Change::AddVip(b) => {
            let v: VipConf = body("VIP", b)?;
            if let Some(o) = l
                .vips
                .iter()
                .find(|o| o.address == v.address || o.name == v.name)
            {
                return Err(ApiError::conflict(format!(
                    "VIP `{}` ({}) exists: change it, or remove it first",
                    o.name, o.address
                )));
            }
            let s = json!({ "added": "vip", "vip": v.name, "address": v.address.to_string() });
            l.vips.push(v);
            s
        }
        Change::RemoveVip { vip, force } => {
            let i = vip_index(l, vip)?;
            let v = l.vips.remove(i);
            return Ok(Edit {
                summary: json!({ "removed": "vip", "vip": v.name, "address": v.address.to_string(), "force": force }),
                force: force.then_some((v.address, None)),
            });
        }
        Change::SetVip { vip, body: b } => {
            let i = vip_index(l, vip)?;
            let p: VipPatch = body("VIP change", b)?;
            if p.name.is_none() && p.policy.is_none() && p.rules.is_none() {
                return Err(ApiError::bad_request(
                    "nothing to change: give `name`, `policy` and/or `rules`",
                ));
            }
            let v = &mut l.vips[i];
            if let Some(n) = p.name {
                v.name = n;
            }
            if let Some(pol) = p.policy {
                v.policy = pol;
            }
            if let Some(r) = p.rules {
                v.rules = r;
            }
            json!({ "changed": "vip", "vip": v.name, "address": v.address.to_string() })
        }
        Change::AddBackend { vip, body: b } => {
            let i = vip_index(l, vip)?;
            let nb: BackendConf = body("backend", b)?;
            let v = &mut l.vips[i];
            if v.backends.iter().any(|x| x.address == nb.address) {
                return Err(ApiError::conflict(format!(
                    "VIP `{}` has backend {} already",
                    v.name, nb.address
                )));
            }
            let s = json!({ "added": "backend", "vip": v.name, "backend": nb.address.to_string() });
            v.backends.push(nb);
            s
        }
        Change::RemoveBackend {
            vip,
            backend,
            force,
        } => {
            let i = vip_index(l, vip)?;
            let v = &mut l.vips[i];
            let bi = backend_index(v, backend)?;
            let b = v.backends.remove(bi);
            // Rules naming it lose it (a rule left with no backend is
            // refused by validation, named).
            for r in &mut v.rules {
                r.backends.retain(|a| *a != b.address);
            }
            return Ok(Edit {
                summary: json!({ "removed": "backend", "vip": v.name, "backend": b.address.to_string(), "force": force }),
                force: force.then_some((v.address, Some(b.address))),
            });
        }
        Change::RotateTickets { .. } | Change::ReloadTls => {
            return Err(ApiError::bad_request("not a configuration edit"))
        }
    };
    Ok(Edit {
        summary,
        force: None,
    })
}

/// `POST /api/v1/vips/{vip}/backends/{address}` (state and/or weight) as an
/// edit of `l`.
pub fn set_backend(
    l: &mut LbConf,
    vip: &str,
    backend: &str,
    change: &BackendChange,
) -> Result<Edit, ApiError> {
    let state = match change.state.as_deref() {
        None => None,
        Some("up") => Some(BackendStateConf::Up),
        Some("down") => Some(BackendStateConf::Down),
        Some("draining" | "drain") => Some(BackendStateConf::Draining),
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "state `{o}`: expected up, down or draining"
            )))
        }
    };
    let i = vip_index(l, vip)?;
    let v = &mut l.vips[i];
    let bi = backend_index(v, backend)?;
    let b = &mut v.backends[bi];
    if let Some(st) = state {
        b.state = st;
    }
    if let Some(w) = change.weight {
        b.weight = w;
    }
    Ok(Edit {
        summary: json!({
            "vip": v.name,
            "backend": b.address.to_string(),
            "admin": format!("{:?}", b.state).to_lowercase(),
            "weight": b.weight,
        }),
        force: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> LbConf {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../conf/lb.toml"))
                .unwrap();
        qsplice_config::parse(&text).unwrap().lb.unwrap()
    }

    #[test]
    fn add_and_remove_a_backend_and_a_vip() {
        let mut l = running();
        let n = l.vips[0].backends.len();
        let vip = l.vips[0].name.clone();
        edit(
            &mut l,
            &Change::AddBackend {
                vip: vip.clone(),
                body: json!({ "address": "10.10.2.99:80", "weight": 3 }),
            },
        )
        .unwrap();
        assert_eq!(l.vips[0].backends.len(), n + 1);
        assert_eq!(l.vips[0].backends[n].weight, 3);
        let again = edit(
            &mut l,
            &Change::AddBackend {
                vip: vip.clone(),
                body: json!({ "address": "10.10.2.99:80" }),
            },
        );
        assert_eq!(again.unwrap_err().status, 409);
        let e = edit(
            &mut l,
            &Change::RemoveBackend {
                vip: vip.clone(),
                backend: "10.10.2.99:80".into(),
                force: true,
            },
        )
        .unwrap();
        assert_eq!(l.vips[0].backends.len(), n);
        assert_eq!(
            e.force,
            Some((l.vips[0].address, Some("10.10.2.99:80".parse().unwrap())))
        );
        // Unknown keys are refused with the key.
        let bad = edit(
            &mut l,
            &Change::AddBackend {
                vip: vip.clone(),
                body: json!({ "address": "10.10.2.98:80", "wieght": 3 }),
            },
        )
        .unwrap_err();
        assert_eq!(bad.status, 400);
        assert!(bad.message.contains("wieght"), "{}", bad.message);
        // A VIP: added, then removed by address.
        let vips = l.vips.len();
        edit(
            &mut l,
            &Change::AddVip(json!({
                "name": "extra", "address": "10.10.1.1:8080",
                "backends": [{ "address": "10.10.2.11:80" }],
            })),
        )
        .unwrap();
        assert_eq!(l.vips.len(), vips + 1);
        assert_eq!(l.vips[vips].policy, PolicyConf::RoundRobin);
        let e = edit(
            &mut l,
            &Change::RemoveVip {
                vip: "10.10.1.1:8080".into(),
                force: false,
            },
        )
        .unwrap();
        assert_eq!(l.vips.len(), vips);
        assert_eq!(e.force, None);
        assert_eq!(
            edit(
                &mut l,
                &Change::RemoveVip {
                    vip: "nope".into(),
                    force: false
                }
            )
            .unwrap_err()
            .status,
            404
        );
    }

    #[test]
    fn vip_settings_and_backend_state() {
        let mut l = running();
        let vip = l.vips[0].name.clone();
        edit(
            &mut l,
            &Change::SetVip {
                vip: vip.clone(),
                body: json!({ "policy": "least-connections" }),
            },
        )
        .unwrap();
        assert_eq!(l.vips[0].policy, PolicyConf::LeastConnections);
        let e = edit(
            &mut l,
            &Change::SetVip {
                vip: vip.clone(),
                body: json!({ "address": "10.0.0.1:1" }),
            },
        )
        .unwrap_err();
        assert!(e.message.contains("address"), "{}", e.message);
        let b = l.vips[0].backends[0].address.to_string();
        set_backend(
            &mut l,
            &vip,
            &b,
            &BackendChange {
                state: Some("drain".into()),
                weight: Some(9),
            },
        )
        .unwrap();
        assert_eq!(l.vips[0].backends[0].state, BackendStateConf::Draining);
        assert_eq!(l.vips[0].backends[0].weight, 9);
    }
}
