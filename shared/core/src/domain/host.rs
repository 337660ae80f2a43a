//! `Host` header values a loopback-only HTTP service answers: an IP address
//! or `localhost`. A web page that reaches 127.0.0.1 through a DNS name of
//! its own (DNS rebinding) makes the browser send that name instead.

/// True for a `Host` value that is an IP address or `localhost`, with or
/// without a port.
pub fn is_ip_or_localhost(host: &str) -> bool {
    if let Some(rest) = host.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_other_than_localhost_are_refused() {
        assert!(is_ip_or_localhost("[::1]:80") && is_ip_or_localhost("LOCALHOST"));
        assert!(is_ip_or_localhost("192.0.2.1:8080"));
        assert!(!is_ip_or_localhost("localhost.example"));
        assert!(!is_ip_or_localhost("[not-an-ip]:80"));
        assert!(!is_ip_or_localhost("127.0.0.1:x"));
    }
}
