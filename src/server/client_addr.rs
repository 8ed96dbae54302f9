//! The client's address, for rate limits: the peer's, or — only when the peer is a
//! configured trusted proxy — the one the proxy reports in `X-Forwarded-For` or
//! `Forwarded` (RFC 7239). A client cannot pick its own budget by sending those
//! headers: from an untrusted peer they are ignored, and behind a trusted proxy the
//! list is read from the right, skipping trusted hops, so entries the client wrote
//! itself (on the left) are never reached.
//!
//! (The module's example is its `example` test, below: the module is private.)

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The address the request's budgets are charged to.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = if let Some(xff) = header(headers, "x-forwarded-for") {
        xff.split(',').map(|h| parse_hop(h.trim())).collect()
    } else if let Some(fwd) = header(headers, "forwarded") {
        fwd.split(',')
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.eq_ignore_ascii_case("for").then(|| parse_hop(v))
                })
            })
            .collect()
    } else {
        return peer;
    };
    let mut last = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if trusted.contains(&ip) => last = ip,
            Some(ip) => return ip,
            // Garbage a trusted proxy passed on: charge the last hop we can name.
            None => return last,
        }
    }
    last
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `1.2.3.4`, `1.2.3.4:80`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let proxy = ip("10.0.0.2");
        let inner = ip("10.0.0.3");
        let h = headers(&[("x-forwarded-for", "203.0.113.5, 198.51.100.9, 10.0.0.3")]);
        assert_eq!(client_addr(proxy, &h, &[proxy, inner]), ip("198.51.100.9"));
        assert_eq!(client_addr(ip("192.0.2.1"), &h, &[proxy]), ip("192.0.2.1"));
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
        )]);
        assert_eq!(client_addr(proxy, &h, &[proxy]), ip("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(client_addr(proxy, &h, &[proxy]), proxy);
        assert_eq!(client_addr(proxy, &HeaderMap::new(), &[proxy]), proxy);
    }
}

#[cfg(test)]
mod example {
    use super::client_addr;
    use axum::http::HeaderMap;
    use std::net::IpAddr;

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 198.51.100.9".parse().unwrap());
        assert_eq!(
            client_addr(proxy, &headers, &[proxy]),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_addr(proxy, &headers, &[]), proxy); // not trusted: headers ignored
    }
}
