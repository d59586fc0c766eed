//! The targets a server lets its clients choose (`--allow`): nothing unless listed.
//!
//! A list is rules separated by commas (or given as repeated `--allow` flags), each
//! `HOST:PORTS`:
//!
//! - `HOST` is `*` (any host), an IP address (IPv6 in brackets), a network in CIDR form
//!   (`10.0.0.0/8`, `[fd00::/8]`), a host name (`example.org`, matched whole, any case) or a
//!   suffix (`*.example.org`: any name ending in `.example.org`);
//! - `PORTS` is `*`, a port (`443`) or a range (`8000-8100`).
//!
//! A target given by name is allowed if a name rule matches it; otherwise it is resolved and
//! only the addresses that an IP rule allows are connected to, so a name cannot lead past the
//! address rules (for instance to a host on the server's own network).

use std::net::IpAddr;
use std::ops::RangeInclusive;

use ipnet::IpNet;

/// What `--allow` takes, for errors.
pub const ALLOW_FORM: &str = "HOST:PORTS rules separated by commas, HOST one of *, an IP \
     address ([v6] in brackets), a CIDR network (10.0.0.0/8, [fd00::/8]), a host name or \
     *.suffix, PORTS one of *, N or N-M (e.g. 10.0.0.0/8:*,example.org:443)";

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostRule {
    Any,
    Net(IpNet),
    Name(String),
    /// `.example.org` for `*.example.org`.
    Suffix(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    host: HostRule,
    ports: RangeInclusive<u16>,
}

/// A server's allowed targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    rules: Vec<Rule>,
}

impl AllowList {
    /// Parses a comma-separated list of rules; the error names the rule and the form.
    pub fn parse(text: &str) -> Result<AllowList, String> {
        let rules = text
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| rule(r).map_err(|why| format!("rule {r:?}: {why}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList { rules })
    }

    /// True when no rule is listed (nothing is allowed).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether some rule is for addresses (or `*`): only then is a name that no name rule
    /// allows resolved, to check its addresses.
    pub fn has_address_rules(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.host, HostRule::Any | HostRule::Net(_)))
    }

    /// Whether a rule for names (or `*`) allows `name` (lower case) and `port`.
    pub fn allows_name(&self, name: &str, port: u16) -> bool {
        self.rules.iter().any(|r| {
            r.ports.contains(&port)
                && match &r.host {
                    HostRule::Any => true,
                    HostRule::Name(n) => n == name,
                    HostRule::Suffix(s) => name.ends_with(s.as_str()),
                    HostRule::Net(_) => false,
                }
        })
    }

    /// Whether a rule for addresses (or `*`) allows `ip` and `port`.
    pub fn allows_ip(&self, ip: IpAddr, port: u16) -> bool {
        let ip = ip.to_canonical();
        self.rules.iter().any(|r| {
            r.ports.contains(&port)
                && match &r.host {
                    HostRule::Any => true,
                    HostRule::Net(net) => net.contains(&ip),
                    HostRule::Name(_) | HostRule::Suffix(_) => false,
                }
        })
    }
}

fn rule(text: &str) -> Result<Rule, &'static str> {
    let (host, ports) = text.rsplit_once(':').ok_or("no :PORTS")?;
    Ok(Rule {
        host: host_rule(host)?,
        ports: port_range(ports)?,
    })
}

fn host_rule(text: &str) -> Result<HostRule, &'static str> {
    if text == "*" {
        return Ok(HostRule::Any);
    }
    let inner = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    if inner.is_none() && text.contains(':') {
        return Err("an IPv6 address or network goes in brackets");
    }
    let net_text = inner.unwrap_or(text);
    if let Ok(net) = net_text.parse::<IpNet>() {
        return Ok(HostRule::Net(net.trunc()));
    }
    if let Ok(ip) = net_text.parse::<IpAddr>() {
        return Ok(HostRule::Net(IpNet::from(ip)));
    }
    if inner.is_some() || text.contains(':') {
        return Err("not an IPv6 address or network");
    }
    let (suffix, name) = match text.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let name = name.to_ascii_lowercase();
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || !name.chars().all(valid) {
        return Err("not *, an address, a network or a host name");
    }
    Ok(match suffix {
        true => HostRule::Suffix(format!(".{name}")),
        false => HostRule::Name(name),
    })
}

fn port_range(text: &str) -> Result<RangeInclusive<u16>, &'static str> {
    const BAD: &str = "PORTS must be *, N or N-M with ports in 1..=65535";
    if text == "*" {
        return Ok(1..=u16::MAX);
    }
    let port = |t: &str| match t.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(BAD),
    };
    match text.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (port(low)?, port(high)?);
            if low > high {
                return Err(BAD);
            }
            Ok(low..=high)
        }
        None => port(text).map(|p| p..=p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn nothing_is_allowed_unless_listed() {
        let none = AllowList::parse("").unwrap();
        assert!(none.is_empty());
        assert!(!none.allows_ip(ip("127.0.0.1"), 80));
        assert!(!none.allows_name("example.org", 80));
    }

    #[test]
    fn rules_match_hosts_networks_names_and_ports() {
        let list = AllowList::parse(
            "10.0.0.0/8:*, [fd00::/8]:22, 192.0.2.7:8000-8100, example.org:443, *.corp.example:80",
        )
        .unwrap();
        assert!(list.allows_ip(ip("10.200.3.4"), 1));
        assert!(
            list.allows_ip(ip("::ffff:10.0.0.1"), 5),
            "IPv4-mapped addresses count as IPv4"
        );
        assert!(!list.allows_ip(ip("11.0.0.1"), 80));
        assert!(list.allows_ip(ip("fd12::1"), 22));
        assert!(!list.allows_ip(ip("fd12::1"), 23));
        assert!(list.allows_ip(ip("192.0.2.7"), 8050));
        assert!(!list.allows_ip(ip("192.0.2.7"), 8101));
        assert!(list.allows_name("example.org", 443));
        assert!(!list.allows_name("www.example.org", 443));
        assert!(!list.allows_name("example.org", 80));
        assert!(list.allows_name("db.corp.example", 80));
        assert!(!list.allows_name("corp.example", 80));
        assert!(
            !list.allows_name("10.0.0.1", 80),
            "names never match address rules"
        );
        let any = AllowList::parse("*:443").unwrap();
        assert!(any.allows_name("anything", 443) && any.allows_ip(ip("::1"), 443));
        assert!(!any.allows_ip(ip("::1"), 444));
    }

    #[test]
    fn bad_rules_are_named() {
        for bad in [
            "10.0.0.0/8",
            "host:0",
            "host:9-3",
            "[fd00::/8:22",
            "a b:1",
            "x:70000",
            "fd00::1:22",
        ] {
            let e = AllowList::parse(bad).unwrap_err();
            assert!(e.starts_with(&format!("rule {bad:?}")), "{e}");
        }
    }
}
