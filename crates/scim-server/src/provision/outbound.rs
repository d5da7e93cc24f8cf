//! The outbound target policy: which hosts and addresses applications'
//! base URLs may lead to. Every request to an application (the engine,
//! on-demand provisioning, reconciliation, discovery) goes through
//! [`super::Engine::session`], whose client carries this policy as its
//! [`scim_client::AddressFilter`]; creating or updating an application
//! checks its `baseUrl` with [`OutboundPolicy::check_url`].
//!
//! An address (and the host name it was reached through) is judged in
//! this order:
//!
//! 1. on `--outbound-deny` (a host name or an address range): refused;
//! 2. on `--outbound-allow`: allowed;
//! 3. in a range that is not the public internet (loopback, private
//!    RFC 1918 and ULA, link-local, CGNAT, unspecified, multicast,
//!    reserved, and the IPv4-mapped and NAT64 forms of these): refused,
//!    unless `--outbound-allow-private`;
//! 4. anything else: allowed.
//!
//! Host names `localhost` and `*.localhost` count as loopback when a URL
//! is checked, before any resolution (RFC 6761).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::error::{Error, Result};

/// One entry of `--outbound-allow` or `--outbound-deny`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// An address or a CIDR range (`10.1.2.3`, `10.0.0.0/8`, `::1`).
    Net(IpNet),
    /// A host name, compared case-insensitively.
    Host(String),
    /// `*.example.com`: every name under `example.com` (not itself).
    Suffix(String),
}

impl Entry {
    fn parse(raw: &str) -> std::result::Result<Self, String> {
        let s = raw.trim().trim_start_matches('[').trim_end_matches(']');
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self::Net(net.trunc()));
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Self::Net(IpNet::from(addr)));
        }
        let (suffix, name) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
        if !valid || name.parse::<IpAddr>().is_ok() {
            return Err(format!(
                "{raw:?} is not an address, a CIDR range, a host name or *.domain"
            ));
        }
        let name = name.to_ascii_lowercase();
        Ok(if suffix {
            Self::Suffix(name)
        } else {
            Self::Host(name)
        })
    }

    fn matches_addr(&self, addr: IpAddr) -> bool {
        match self {
            Self::Net(net) => {
                net.contains(&addr)
                    || embedded_v4(addr).is_some_and(|v4| net.contains(&IpAddr::V4(v4)))
            }
            _ => false,
        }
    }

    fn matches_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self {
            Self::Host(h) => *h == host,
            Self::Suffix(d) => host
                .strip_suffix(d.as_str())
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
            Self::Net(_) => false,
        }
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64
/// (`64:ff9b::a.b.c.d`) IPv6 address.
fn embedded_v4(addr: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = addr else {
        return None;
    };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [.., a, b, c, d] = v6.octets();
        Ipv4Addr::new(a, b, c, d)
    })
}

/// What kind of non-public address `addr` is, or `None` for a public one.
pub fn special_range(addr: IpAddr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(addr) {
        return special_v4(v4);
    }
    match addr {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o0, o1, ..] = a.octets();
    Some(match (o0, o1) {
        (0, _) => "unspecified",
        (127, _) => "loopback",
        (10, _) | (192, 168) => "private",
        (172, x) if (16..32).contains(&x) => "private",
        (169, 254) => "link-local",
        (100, x) if (64..128).contains(&x) => "shared (CGNAT)",
        (224..=239, _) => "multicast",
        (240..=255, _) => "reserved",
        _ => return None,
    })
}

fn special_v6(a: Ipv6Addr) -> Option<&'static str> {
    let first = a.segments()[0];
    Some(if a.is_unspecified() {
        "unspecified"
    } else if a.is_loopback() {
        "loopback"
    } else if first & 0xfe00 == 0xfc00 {
        "private (ULA)"
    } else if first & 0xffc0 == 0xfe80 || first & 0xffc0 == 0xfec0 {
        "link-local"
    } else if first & 0xff00 == 0xff00 {
        "multicast"
    } else {
        return None;
    })
}

/// Whether `host` is a name that means this machine (RFC 6761).
fn is_localhost_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

/// The policy: see the module documentation. [`Default`] is the policy of
/// a server started without any of the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundPolicy {
    allow: Vec<Entry>,
    deny: Vec<Entry>,
    allow_private: bool,
}

impl OutboundPolicy {
    /// The policy of the `--outbound-allow`, `--outbound-deny` and
    /// `--outbound-allow-private` settings; a bad entry is a configuration
    /// error naming it.
    pub fn new<S: AsRef<str>>(allow: &[S], deny: &[S], allow_private: bool) -> Result<Self> {
        let parse = |list: &[S], flag: &str| {
            list.iter()
                .map(AsRef::as_ref)
                .filter(|s| !s.trim().is_empty())
                .map(|s| Entry::parse(s).map_err(|e| Error::Config(format!("{flag}: {e}"))))
                .collect::<Result<Vec<_>>>()
        };
        Ok(Self {
            allow: parse(allow, "--outbound-allow")?,
            deny: parse(deny, "--outbound-deny")?,
            allow_private,
        })
    }

    /// A policy that allows loopback addresses (`127.0.0.0/8`, `::1`,
    /// `localhost`) besides the public internet: for tests and local
    /// walkthroughs whose downstream servers listen on this machine.
    pub fn allow_loopback() -> Self {
        match Self::new(&["127.0.0.0/8", "::1", "localhost"], &[], false) {
            Ok(p) => p,
            Err(e) => unreachable_entries(&e),
        }
    }

    /// Checks an application's base URL before it is stored: its scheme,
    /// and its host when that is an IP literal or a name this policy lists
    /// (or `localhost`). Other names are checked when connecting, against
    /// what they resolve to then.
    pub fn check_url(&self, url: &str) -> std::result::Result<(), String> {
        let parsed = url::Url::parse(url.trim()).map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("must be an http:// or https:// URL".into());
        }
        let host = parsed.host_str().unwrap_or_default();
        if host.is_empty() {
            return Err("has no host".into());
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(addr) = bare.parse::<IpAddr>() {
            return scim_client::AddressFilter::check(self, host, addr);
        }
        if let Some(e) = self.deny.iter().find(|e| e.matches_host(host)) {
            return Err(denied(host, e));
        }
        if self.allow.iter().any(|e| e.matches_host(host)) {
            return Ok(());
        }
        if is_localhost_name(host) {
            return scim_client::AddressFilter::check(self, host, IpAddr::V6(Ipv6Addr::LOCALHOST))
                .and_then(|()| {
                    scim_client::AddressFilter::check(self, host, IpAddr::V4(Ipv4Addr::LOCALHOST))
                });
        }
        Ok(())
    }
}

fn denied(host: &str, entry: &Entry) -> String {
    let what = match entry {
        Entry::Net(n) => n.to_string(),
        Entry::Host(h) => h.clone(),
        Entry::Suffix(d) => format!("*.{d}"),
    };
    format!("{host} is refused by --outbound-deny ({what})")
}

impl scim_client::AddressFilter for OutboundPolicy {
    fn check(&self, host: &str, addr: IpAddr) -> std::result::Result<(), String> {
        if let Some(e) = self
            .deny
            .iter()
            .find(|e| e.matches_addr(addr) || e.matches_host(host))
        {
            return Err(denied(host, e));
        }
        if self
            .allow
            .iter()
            .any(|e| e.matches_addr(addr) || e.matches_host(host))
        {
            return Ok(());
        }
        match special_range(addr) {
            Some(kind) if !self.allow_private => {
                let shown =
                    if host.trim_start_matches('[').trim_end_matches(']') == addr.to_string() {
                        addr.to_string()
                    } else {
                        format!("{host} ({addr})")
                    };
                Err(format!(
                    "{shown} is a {kind} address; the server's operator can allow it with \
                     --outbound-allow (SCIM_OUTBOUND_ALLOW) or --outbound-allow-private"
                ))
            }
            _ => Ok(()),
        }
    }
}

#[cold]
fn unreachable_entries(e: &Error) -> OutboundPolicy {
    // Only reachable if the fixed entries above stop parsing: a build
    // defect that the tests of this module catch.
    panic!("fixed outbound entries do not parse: {e}")
}

#[cfg(test)]
mod tests {
    use scim_client::AddressFilter;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_ranges_are_refused_by_default() {
        let p = OutboundPolicy::default();
        for a in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let err = p.check(a, ip(a)).unwrap_err();
            assert!(err.contains("--outbound-allow"), "{a}: {err}");
        }
        for a in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2001:db8::1",
            "2606:4700::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(p.check(a, ip(a)).is_ok(), "{a}");
        }
    }

    #[test]
    fn allow_and_deny_lists() {
        let p = OutboundPolicy::new(
            &["127.0.0.0/8", "::1", "*.corp.example"],
            &["127.0.0.2"],
            false,
        )
        .unwrap();
        assert!(p.check("127.0.0.1", ip("127.0.0.1")).is_ok());
        assert!(p.check("::ffff:127.0.0.1", ip("::ffff:127.0.0.1")).is_ok());
        assert!(p.check("[::1]", ip("::1")).is_ok());
        let err = p.check("127.0.0.2", ip("127.0.0.2")).unwrap_err();
        assert!(err.contains("--outbound-deny"), "{err}");
        assert!(p.check("10.0.0.1", ip("10.0.0.1")).is_err());
        // A name on the allowlist may resolve to a private address.
        assert!(p.check("hr.corp.example", ip("10.0.0.1")).is_ok());
        assert!(p.check("corp.example", ip("10.0.0.1")).is_err());
        assert!(p.check("evilcorp.example", ip("10.0.0.1")).is_err());
        let p = OutboundPolicy::new(&[] as &[&str], &["8.8.0.0/16", "bad.example"], true).unwrap();
        assert!(p.check("10.0.0.1", ip("10.0.0.1")).is_ok());
        assert!(p.check("dns", ip("8.8.8.8")).is_err());
        assert!(p.check("BAD.example.", ip("1.1.1.1")).is_err());
        assert!(OutboundPolicy::new(&["10.0.0.0/33"], &[], false).is_err());
        assert!(OutboundPolicy::new(&["http://x/"], &[], false).is_err());
        assert!(OutboundPolicy::new(&["", " "], &[], false).unwrap() == OutboundPolicy::default());
    }

    #[test]
    fn urls_are_checked_before_storing() {
        let p = OutboundPolicy::default();
        for u in [
            "http://127.0.0.1:8080/scim/v2",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://0x7f.1/",
            "http://localhost/",
            "http://LocalHost./",
            "http://app.localhost:9/",
        ] {
            let err = p.check_url(u).unwrap_err();
            assert!(err.contains("--outbound-allow"), "{u}: {err}");
        }
        assert!(p.check_url("https://scim.example.com/v2").is_ok());
        assert!(p.check_url("ftp://scim.example.com/").is_err());
        let p = OutboundPolicy::allow_loopback();
        for u in [
            "http://127.0.0.1:8080/scim/v2",
            "http://[::1]/",
            "http://localhost/",
        ] {
            assert!(p.check_url(u).is_ok(), "{u}");
        }
        assert!(p.check_url("http://10.0.0.1/").is_err());
        let p = OutboundPolicy::new(&[] as &[&str], &["*.internal.example"], true).unwrap();
        assert!(p.check_url("https://hr.internal.example/").is_err());
        assert!(p.check_url("http://10.0.0.1/").is_ok());
    }
}
