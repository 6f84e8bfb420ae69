//! The lease every lock and ticket of a manager is attached to, and the keep-alive that renews
//! it: liveness across machines, as the flock is on one. A holder that dies, or is stopped or
//! cut off for longer than the TTL, loses its locks then, and not earlier: etcd deletes the
//! keys when the lease expires.
//!
//! The keep-alive also decides when *we* must take the lease for lost: when etcd says it is
//! gone, or when no renewal has been confirmed for a whole TTL counted from the last renewal
//! sent (by then etcd may have expired it, and someone else may hold our scope). Losing it is
//! told through [`Session::lost`], never found out by polling. Asked, the session answers by
//! the clock as well ([`Expiry`]): the keep-alive is a task, and on a busy machine it may run
//! its timer well after the deadline, later than etcd expires the lease and someone else takes
//! the scope; the answer must not wait for it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use etcd_client::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::retry::retrying;
use crate::error::Error;

/// One lease, kept alive until the session is dropped or lost.
#[derive(Debug)]
pub(crate) struct Session {
    lease: i64,
    lost: watch::Receiver<bool>,
    expiry: Expiry,
    keep_alive: JoinHandle<()>,
}

impl Session {
    /// Grants a lease of `ttl_secs` and starts renewing it.
    pub(crate) async fn start(
        client: &Client,
        ttl_secs: i64,
        request_timeout: Duration,
    ) -> Result<Self, Error> {
        let sent = Instant::now();
        let what = "cannot grant an etcd lease".to_owned();
        let granted = retrying(request_timeout, what, || {
            let mut leases = client.lease_client();
            async move { leases.grant(ttl_secs, None).await }
        })
        .await?;
        let lease = granted.id();
        let ttl = Duration::from_secs(u64::try_from(granted.ttl()).unwrap_or(0));
        let (tell, lost) = watch::channel(false);
        let expiry = Expiry::at(sent + ttl);
        let keep_alive = tokio::spawn(keep_alive(client.clone(), lease, ttl, expiry.clone(), tell));
        Ok(Self {
            lease,
            lost,
            expiry,
            keep_alive,
        })
    }

    /// The lease id.
    pub(crate) fn lease(&self) -> i64 {
        self.lease
    }

    /// Whether the lease is lost (or must be taken for lost).
    pub(crate) fn is_lost(&self) -> bool {
        *self.lost.borrow() || self.expiry.passed()
    }

    /// When the lease must be taken for lost if no renewal is confirmed before.
    pub(crate) fn expiry(&self) -> Expiry {
        self.expiry.clone()
    }

    /// A receiver that turns `true` when the lease is lost.
    pub(crate) fn lost(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Revokes the lease: every key on it goes at once, instead of at the TTL.
    pub(crate) async fn revoke(&self, client: &Client, request_timeout: Duration) {
        self.keep_alive.abort();
        let mut leases = client.lease_client();
        // Best effort: if it fails, the lease expires at its TTL, as if we had died.
        let _ = tokio::time::timeout(request_timeout, leases.revoke(self.lease)).await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keep_alive.abort();
    }
}

/// The instant after which a lease must be taken for lost unless a renewal was confirmed: a
/// TTL after the last renewal sent whose answer came back before it. Shared by the keep-alive,
/// which moves it, and whoever asks whether the lease is lost. Once passed it never moves again.
#[derive(Debug, Clone)]
pub(crate) struct Expiry(Arc<Mutex<Instant>>);

impl Expiry {
    fn at(expires: Instant) -> Self {
        Self(Arc::new(Mutex::new(expires)))
    }

    fn get(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the lease must be taken for lost by now.
    pub(crate) fn passed(&self) -> bool {
        Instant::now() >= self.get()
    }

    /// Moves the expiry to `expires`, unless it has passed already: a lease taken for lost
    /// stays lost, even when an answer that renewed it is read late. Returns whether it moved.
    fn renew(&self, expires: Instant) -> bool {
        let mut current = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if Instant::now() >= *current {
            return false;
        }
        *current = expires;
        true
    }
}

/// Renews `lease` about three times per TTL until it is lost; `expiry` says when it may expire
/// if no renewal is confirmed before then.
async fn keep_alive(
    client: Client,
    lease: i64,
    ttl: Duration,
    expiry: Expiry,
    tell: watch::Sender<bool>,
) {
    let mut expires = expiry.get();
    let mut leases = client.lease_client();
    let mut stream = None;
    loop {
        let next = (Instant::now() + ttl / 3).min(expires);
        sleep_until(next).await;
        if Instant::now() >= expires {
            break;
        }
        let sent = Instant::now();
        if stream.is_none() {
            stream = timeout_at(expires, leases.keep_alive(lease))
                .await
                .ok()
                .and_then(Result::ok);
        }
        let Some((keeper, responses)) = stream.as_mut() else {
            continue;
        };
        if keeper.keep_alive().await.is_err() {
            stream = None;
            continue;
        }
        match timeout_at(expires, responses.message()).await {
            Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                let granted = Duration::from_secs(u64::try_from(answer.ttl()).unwrap_or(0));
                if !expiry.renew(sent + granted) {
                    break;
                }
                expires = sent + granted;
            }
            // etcd says the lease is gone.
            Ok(Ok(Some(_))) => break,
            // The stream broke: a new one, while there is time.
            Ok(Ok(None) | Err(_)) => stream = None,
            Err(_) => break,
        }
    }
    let _ = tell.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn the_lease_is_taken_for_lost_once_its_expiry_has_passed_and_for_good() {
        let ahead = Expiry::at(Instant::now() + HOUR);
        assert!(!ahead.passed());
        assert!(ahead.renew(Instant::now() + 2 * HOUR));
        assert!(!ahead.passed());

        let passed = Expiry::at(Instant::now());
        assert!(passed.passed());
        // A renewal read after the deadline does not bring the lease back.
        assert!(!passed.renew(Instant::now() + HOUR));
        assert!(passed.passed());

        // A renewal moves the expiry where it says, earlier too.
        let renewed = Expiry::at(Instant::now() + HOUR);
        assert!(renewed.renew(Instant::now()));
        assert!(renewed.passed());
    }
}
