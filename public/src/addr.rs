//! Client addresses as the per-address budgets count them.

use std::net::{IpAddr, Ipv6Addr};

/// The key a client address is budgeted under: an IPv4 address as it is
/// (an IPv4-mapped IPv6 one as that IPv4 address), an IPv6 address by its
/// /64. One subscriber usually gets a whole /64, so counting single IPv6
/// addresses would give one client 2^64 budgets.
pub fn budget_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        budget_key(s.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv6_counts_by_its_64_and_ipv4_as_it_is() {
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::1"), "::");
    }
}
