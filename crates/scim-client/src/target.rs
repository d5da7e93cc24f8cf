//! Which addresses a client may connect to, and which response bodies it
//! passes on.
//!
//! An [`AddressFilter`] set with [`crate::ClientBuilder::address_filter`]
//! is asked about every address before a connection is opened:
//!
//! - a URL whose host is an IP literal (`http://10.0.0.1/`,
//!   `http://[::1]/`) is checked before the request is built; a refusal
//!   fails the call with [`crate::ClientError::Connect`] and nothing is
//!   sent;
//! - a DNS name is resolved by the client's own resolver, every address
//!   is checked, the refused ones are dropped, and the connection goes only
//!   to an address that was allowed (so a name that resolves, or later
//!   re-resolves, to a refused address never reaches it); when none is
//!   left the call fails the same way.
//!
//! With a filter set the client ignores proxy settings from the
//! environment (a proxy would resolve names itself, out of the filter's
//! sight), and it never follows redirects (it never does).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::Value;

/// Decides which addresses a client may connect to.
pub trait AddressFilter: Send + Sync {
    /// `Ok(())` when the client may connect to `addr`, reached through
    /// `host` (the URL's host as written: a DNS name, or the address
    /// itself); otherwise why not, in words for an error message.
    fn check(&self, host: &str, addr: IpAddr) -> Result<(), String>;
}

/// A filter held by a client (printable, so builders stay `Debug`).
#[derive(Clone)]
pub(crate) struct FilterSlot(pub(crate) Arc<dyn AddressFilter>);

impl std::fmt::Debug for FilterSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressFilter")
    }
}

/// Checks a URL whose host is an IP literal (the resolver never sees
/// those); `Ok` for DNS names, which the resolver checks.
pub(crate) fn check_literal(filter: &dyn AddressFilter, url: &Url) -> Result<(), String> {
    // The URL parser has normalised IPv4 literals (`0x7f.1` reads
    // `127.0.0.1`) and bracketed IPv6 ones; a DNS name does not parse.
    let host = url.host_str().unwrap_or_default();
    match host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        Ok(addr) => filter.check(host, addr),
        Err(_) => Ok(()),
    }
}

/// The refusal of every address a name resolved to.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The system resolver, with the filter applied to its answers.
pub(crate) struct FilteringResolver(pub(crate) Arc<dyn AddressFilter>);

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let filter = self.0.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match filter.check(&host, a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refusal.get_or_insert(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refusal.unwrap_or_else(|| format!("{host} has no address"));
                return Err(
                    Box::new(Refused(format!("refused by the address policy: {why}")))
                        as Box<dyn std::error::Error + Send + Sync>,
                );
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Whether `body` is SCIM-shaped: a JSON object with a `schemas` array, or
/// a SCIM Error message (a JSON object with `detail` or `scimType`). Empty
/// bodies count as shaped (there is nothing to hide).
pub fn is_scim_shaped(body: &[u8]) -> bool {
    if body.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    obj.iter().any(|(k, v)| {
        (k.eq_ignore_ascii_case("schemas") && v.is_array())
            || k.eq_ignore_ascii_case("detail")
            || k.eq_ignore_ascii_case("scimType")
    })
}

/// What stands in for a body that is not SCIM-shaped, when the client
/// passes on only SCIM-shaped bodies: its content type and length.
pub fn withheld_note(content_type: Option<&str>, len: usize) -> String {
    let kind = content_type
        .map(|t| {
            t.chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
        })
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "no content type".to_owned());
    format!("[not a SCIM body, not shown: {kind}, {len} bytes]")
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoTens;

    impl AddressFilter for NoTens {
        fn check(&self, _host: &str, addr: IpAddr) -> Result<(), String> {
            match addr {
                IpAddr::V4(a) if a.octets()[0] == 10 => Err(format!("{a} is refused")),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn literals_are_checked_and_names_left_to_the_resolver() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(check_literal(&NoTens, &url("http://10.1.2.3/scim")).is_err());
        assert!(check_literal(&NoTens, &url("http://11.1.2.3/scim")).is_ok());
        assert!(check_literal(&NoTens, &url("http://[::1]:8/")).is_ok());
        assert!(check_literal(&NoTens, &url("http://ten.example/")).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        struct NoLoopback;
        impl AddressFilter for NoLoopback {
            fn check(&self, host: &str, addr: IpAddr) -> Result<(), String> {
                if addr.is_loopback() {
                    Err(format!("{host} resolves to {addr}"))
                } else {
                    Ok(())
                }
            }
        }
        let r = FilteringResolver(Arc::new(NoLoopback));
        let err = r
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("refused by the address policy: localhost resolves to"),
            "{err}"
        );
        let r = FilteringResolver(Arc::new(NoTens));
        let addrs: Vec<_> = r
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[test]
    fn scim_shapes() {
        assert!(is_scim_shaped(b""));
        assert!(is_scim_shaped(br#"{"schemas":["x"],"id":"1"}"#));
        assert!(is_scim_shaped(br#"{"detail":"no","status":"404"}"#));
        assert!(!is_scim_shaped(b"<html>secret</html>"));
        assert!(!is_scim_shaped(br#"{"secret":"value"}"#));
        assert!(!is_scim_shaped(br#"{"schemas":"not an array"}"#));
        assert!(!is_scim_shaped(br#"["schemas"]"#));
        assert_eq!(
            withheld_note(Some("text/html"), 12),
            "[not a SCIM body, not shown: text/html, 12 bytes]"
        );
        assert_eq!(
            withheld_note(None, 0),
            "[not a SCIM body, not shown: no content type, 0 bytes]"
        );
    }
}
