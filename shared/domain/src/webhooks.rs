//! Merchant webhook endpoints: which URLs an endpoint may have. Signing and delivery are the
//! edge's (`shop_edge::outbound::webhooks`); what is allowed is decided here.

use url::{Host, Url};

/// Which endpoint URLs are allowed. Both allowances are off unless a setting turns them on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// `WEBHOOKS_ALLOW_INSECURE_URLS=true` (development): plain `http` and loopback hosts.
    pub allow_insecure: bool,
    /// `WEBHOOKS_ALLOW_IP_HOSTS=true`: hosts written as IP addresses (other than loopback).
    pub allow_ip_hosts: bool,
}

/// An endpoint URL that the policy it was parsed under allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// The URL as given, or why `policy` refuses it.
    pub fn parse(url: &str, policy: UrlPolicy) -> Result<Self, &'static str> {
        if url.len() > 2000 {
            return Err("url has at most 2000 characters");
        }
        let parsed = Url::parse(url).map_err(|_| "url is not an absolute URL")?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("url may not carry credentials");
        }
        match parsed.scheme() {
            "https" => {}
            "http" if policy.allow_insecure => {}
            _ => return Err("url must be https"),
        }
        let (loopback, ip) = match parsed.host() {
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                (name == "localhost" || name.ends_with(".localhost"), false)
            }
            Some(Host::Ipv4(a)) => (a.is_loopback() || a.is_unspecified(), true),
            Some(Host::Ipv6(a)) => match a.to_canonical() {
                std::net::IpAddr::V4(v4) => (v4.is_loopback() || v4.is_unspecified(), true),
                std::net::IpAddr::V6(v6) => (v6.is_loopback() || v6.is_unspecified(), true),
            },
            None => return Err("url has no host"),
        };
        if loopback && !policy.allow_insecure {
            return Err("url may not point at this machine (loopback)");
        }
        if ip && !loopback && !policy.allow_ip_hosts {
            return Err("url must name its host, not an IP address");
        }
        Ok(EndpointUrl(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_url(url: &str, policy: UrlPolicy) -> Result<(), &'static str> {
        EndpointUrl::parse(url, policy).map(|_| ())
    }

    #[test]
    fn urls_follow_the_policy() {
        let prod = UrlPolicy::default();
        let dev = UrlPolicy {
            allow_insecure: true,
            allow_ip_hosts: false,
        };
        let ips = UrlPolicy {
            allow_insecure: false,
            allow_ip_hosts: true,
        };
        assert_eq!(check_url("https://merchant.example/hooks", prod), Ok(()));
        // Host names are ASCII (international names in their punycode form): the url crate is
        // built without Unicode tables (idna_adapter 1.0), so a Unicode name is refused.
        assert_eq!(
            check_url("https://xn--bcher-kva.example/hooks", prod),
            Ok(())
        );
        assert_eq!(
            check_url("https://bücher.example/hooks", prod),
            Err("url is not an absolute URL")
        );
        for refused in [
            "http://merchant.example/hooks",
            "https://localhost/hooks",
            "https://api.localhost/hooks",
            "https://127.0.0.1/hooks",
            "https://[::1]/hooks",
            "https://10.0.0.7/hooks",
            "https://[2001:db8::1]/hooks",
            "https://user:pw@merchant.example/hooks",
            "ftp://merchant.example/x",
            "/relative",
        ] {
            assert!(check_url(refused, prod).is_err(), "{refused}");
        }
        assert_eq!(check_url("http://127.0.0.1:9000/hook", dev), Ok(()));
        assert_eq!(check_url("http://localhost:9000/hook", dev), Ok(()));
        assert!(check_url("https://10.0.0.7/hooks", dev).is_err());
        assert_eq!(check_url("https://10.0.0.7/hooks", ips), Ok(()));
        assert!(check_url("https://127.0.0.1/hooks", ips).is_err());
        for alias in [
            "https://[::ffff:127.0.0.1]/h",
            "https://0.0.0.0/h",
            "https://[::]/h",
        ] {
            assert!(check_url(alias, ips).is_err(), "{alias} is this machine");
        }
    }
}
