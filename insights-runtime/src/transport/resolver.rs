//! Sentry's address, looked up once a minute instead of once an envelope.
//!
//! ureq looks a request's host up before it looks for a pooled connection, so a kept-alive
//! connection does not spare the lookup. With a timeout set (the transport always sets one, so
//! that a silent Sentry cannot hold a sender forever) ureq's own resolver does each lookup on a
//! thread it starts for that lookup alone: under the load test that was one new thread per
//! envelope, a few hundred a second per sender. This resolver keeps what ureq's found for
//! [`TTL`], per host, and asks ureq's again only when that has run out or failed; a failed
//! lookup is never kept.
//!
//! Only the agent the transport builds uses it: an agent given to
//! [`HttpTransportFactory::agent`](super::HttpTransportFactory::agent) keeps its own resolver.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a lookup is kept: as long as the answer of a DNS server that does not say, and
/// short enough that a Sentry (or relay) that moves is followed within a minute.
const TTL: Duration = Duration::from_secs(60);

/// The most hosts kept: Sentry's, and a proxy's.
const HOSTS: usize = 4;

/// A resolver (ureq's by default) with its answers kept for [`TTL`].
#[derive(Debug)]
pub(super) struct CachingResolver<R = DefaultResolver> {
    inner: R,
    kept: Mutex<Vec<Kept>>,
}

#[derive(Debug)]
struct Kept {
    /// The scheme too: the port a scheme implies is part of the answer.
    scheme: String,
    authority: String,
    at: Instant,
    addrs: ResolvedSocketAddrs,
}

impl Kept {
    fn is_for(&self, (scheme, authority): Host<'_>) -> bool {
        self.scheme == scheme && self.authority == authority
    }
}

/// The key of a kept lookup: a URI's scheme and authority, borrowed so that a request whose
/// lookup is kept allocates nothing.
type Host<'a> = (&'a str, &'a str);

fn host_of(uri: &Uri) -> Option<Host<'_>> {
    Some((uri.scheme_str()?, uri.authority()?.as_str()))
}

impl<R> CachingResolver<R> {
    pub(super) fn new(inner: R) -> Self {
        CachingResolver {
            inner,
            kept: Mutex::new(Vec::new()),
        }
    }

    fn kept(&self, host: Host<'_>, now: Instant) -> Option<ResolvedSocketAddrs> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter()
            .find(|k| k.is_for(host) && now.saturating_duration_since(k.at) < TTL)
            .map(|k| k.addrs.clone())
    }

    fn keep(&self, host: Host<'_>, now: Instant, addrs: &ResolvedSocketAddrs) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|k| !k.is_for(host) && now.saturating_duration_since(k.at) < TTL);
        if kept.len() >= HOSTS {
            kept.remove(0);
        }
        let (scheme, authority) = host;
        kept.push(Kept {
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            at: now,
            addrs: addrs.clone(),
        });
    }
}

impl<R: Resolver> Resolver for CachingResolver<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // A URI without a scheme or host is ureq's to refuse, with its own error.
        let Some(host) = host_of(uri) else {
            return self.inner.resolve(uri, config, timeout);
        };
        let now = Instant::now();
        if let Some(addrs) = self.kept(host, now) {
            return Ok(addrs);
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        self.keep(host, now, &addrs);
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Answers `127.0.0.1:<port>` for any host but `fails.invalid`, and counts the lookups.
    #[derive(Debug, Default)]
    struct Counting {
        lookups: AtomicUsize,
    }

    impl Resolver for Counting {
        fn resolve(
            &self,
            uri: &Uri,
            _config: &Config,
            _timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            if uri.host() == Some("fails.invalid") {
                return Err(ureq::Error::HostNotFound);
            }
            let mut addrs = self.empty();
            let port = uri.port_u16().unwrap_or(80);
            addrs.push(SocketAddr::from(([127, 0, 0, 1], port)));
            Ok(addrs)
        }
    }

    fn lookup(resolver: &CachingResolver<Counting>, uri: &str) -> Result<Vec<SocketAddr>, String> {
        let uri: Uri = uri.parse().map_err(|e| format!("{e}"))?;
        resolver
            .resolve(&uri, &Config::default(), NextTimeout::default())
            .map(|addrs| addrs.to_vec())
            .map_err(|e| e.to_string())
    }

    fn lookups(resolver: &CachingResolver<Counting>) -> usize {
        resolver.inner.lookups.load(Ordering::Relaxed)
    }

    #[test]
    fn a_host_is_looked_up_once_and_its_port_kept_apart() {
        let resolver = CachingResolver::new(Counting::default());
        let sentry = vec![SocketAddr::from(([127, 0, 0, 1], 9000))];
        for _ in 0..100 {
            assert_eq!(
                lookup(&resolver, "http://sentry.test:9000/api/1/envelope/"),
                Ok(sentry.clone())
            );
        }
        assert_eq!(lookups(&resolver), 1);
        // Another port is another answer.
        assert_eq!(
            lookup(&resolver, "http://sentry.test:9001/"),
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], 9001))])
        );
        assert_eq!(lookups(&resolver), 2);
    }

    #[test]
    fn a_failed_lookup_is_not_kept() {
        let resolver = CachingResolver::new(Counting::default());
        assert!(lookup(&resolver, "http://fails.invalid/").is_err());
        assert!(lookup(&resolver, "http://fails.invalid/").is_err());
        assert_eq!(lookups(&resolver), 2);
    }

    #[test]
    fn an_old_lookup_is_done_again_and_few_hosts_are_kept() {
        let resolver = CachingResolver::new(Counting::default());
        let long_ago = Instant::now()
            .checked_sub(TTL + Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        let mut addrs = resolver.inner.empty();
        addrs.push(SocketAddr::from(([10, 0, 0, 1], 80)));
        resolver.keep(("http", "sentry.test"), long_ago, &addrs);
        assert_eq!(
            lookup(&resolver, "http://sentry.test/"),
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], 80))]),
            "the lookup older than the TTL is not used"
        );
        for port in 0..10 {
            lookup(&resolver, &format!("http://sentry.test:{port}/")).ok();
        }
        let kept = resolver.kept.lock().map(|k| k.len()).unwrap_or(usize::MAX);
        assert_eq!(kept, HOSTS);
    }
}
