//! Fetching an image by URL without becoming a proxy into the network the sender runs in.
//!
//! Rules ([`FetchPolicy::default`]): `https` only; the host must resolve only to public
//! addresses — never loopback, private, link-local (the instance metadata service), CGNAT,
//! unique-local, multicast or unspecified — checked on the addresses actually connected to (a
//! resolver that filters, so DNS rebinding cannot slip past) and on IP-literal hosts; every
//! redirect is re-checked the same way, at most [`MAX_REDIRECTS`]; no proxy; `Content-Length`
//! over the cap is refused before reading, and the body is read in chunks and abandoned as soon
//! as it passes the cap. Not here: what the bytes are (the caller sniffs the image type).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Client, Url, redirect};

/// Most redirects followed for one image.
pub const MAX_REDIRECTS: usize = 3;

/// How image URLs may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Local runs only: allow `http://` and loopback / private addresses.
    pub allow_local: bool,
}

impl Default for FetchPolicy {
    /// https only, public addresses only.
    fn default() -> Self {
        Self { allow_local: false }
    }
}

impl FetchPolicy {
    /// The relaxed policy of local runs (`IMAGE_FETCH_LOCAL=1`).
    pub fn local() -> Self {
        Self { allow_local: true }
    }

    /// Why `url` may not be fetched, if it may not (scheme, and the host when it is an IP).
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_local => {}
            _ => return Err("must be an https URL".into()),
        }
        let host = url.host_str().ok_or_else(|| "has no host".to_owned())?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<IpAddr>().ok() {
            Some(ip) if !self.allows(ip) => Err("points at a non-public address".into()),
            _ => Ok(()),
        }
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_local || is_public(ip)
    }
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0) // IETF protocol assignments 192.0.0.0/24 (and 192.0.2.0/24)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254)
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64, may reach IPv4 private space
}

/// A resolver that drops every address the policy does not allow, failing when none is left.
struct PolicyResolver(FetchPolicy);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| policy.allows(addr.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("the image host resolves to no public address".into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for image URLs: the policy's resolver, re-checked redirects, no proxy.
pub fn image_client(policy: &FetchPolicy, timeout: Duration) -> Result<Client, reqwest::Error> {
    let policy = *policy;
    Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .dns_resolver(Arc::new(PolicyResolver(policy)))
        .redirect(redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(reason) => attempt.error(format!("redirect target {reason}")),
            }
        }))
        .build()
}

/// Fetches `url` under `policy`, reading at most `max_bytes`; errors say why, never quote the URL.
pub async fn fetch(
    client: &Client,
    policy: &FetchPolicy,
    url: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, String> {
    let parsed = Url::parse(url).map_err(|_| "is not a valid URL".to_owned())?;
    policy.check_url(&parsed)?;
    let mut resp = client
        .get(parsed)
        .send()
        .await
        .map_err(|e| format!("cannot fetch: {}", describe(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("fetch answered {}", resp.status()));
    }
    let too_large = || format!("image over {max_bytes} bytes");
    if resp
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("cannot fetch: {}", describe(&e)))?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The error without its URL, with the innermost cause (e.g. the resolver's refusal).
fn describe(err: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let outer = err.to_string();
    let outer = outer.split(" for url").next().unwrap_or_default();
    if cause.to_string() == outer {
        outer.to_owned()
    } else {
        format!("{outer}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(blocked.parse().unwrap()), "{blocked}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_must_be_https_to_a_public_host() {
        let strict = FetchPolicy::default();
        let check = |u: &str| strict.check_url(&Url::parse(u).unwrap());
        assert!(check("https://img.example.com/a.png").is_ok());
        assert_eq!(
            check("http://img.example.com/a.png").unwrap_err(),
            "must be an https URL"
        );
        assert!(check("file:///etc/passwd").is_err());
        assert!(check("https://127.0.0.1:9001/2018-06-01/runtime/invocation/next").is_err());
        assert!(check("https://[::1]/x").is_err());
        assert!(check("https://169.254.169.254/latest/meta-data/").is_err());
        let local = FetchPolicy::local();
        assert!(
            local
                .check_url(&Url::parse("http://127.0.0.1:8080/a.png").unwrap())
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_host_resolving_to_loopback_is_refused_before_connecting() {
        let policy = FetchPolicy::default();
        let client = image_client(&policy, Duration::from_secs(2)).unwrap();
        let err = fetch(&client, &policy, "https://localhost:9001/x", 1024)
            .await
            .unwrap_err();
        assert!(err.contains("no public address"), "{err}");
    }
}
