//! Asking etcd again while a member restarts or elects a leader: what the session, the shared
//! client and the state reads all go through (its own module, so they need not import each
//! other for it).

use std::future::Future;

use crate::error::Error;

/// Calls `call` until it succeeds, fails for good, or `timeout` is over: a member that is
/// restarting or electing a leader answers for a moment with errors that mean "ask again",
/// and a client with several endpoints then asks another.
pub(crate) async fn retrying<T, F, Fut>(
    timeout: std::time::Duration,
    what: String,
    mut call: F,
) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    // A request sent while the cluster elects a leader can hang inside etcd for longer than
    // our whole timeout (the member drops the proposal and waits for its own timeout): each
    // try gets a part of the time, and a hung one is sent again.
    let per_try = (timeout / 4).max(std::time::Duration::from_millis(500));
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        let try_until = deadline.min(tokio::time::Instant::now() + per_try);
        match tokio::time::timeout_at(try_until, call()).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(err)) if transient(&err) && tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(500));
            }
            Ok(Err(err)) => return Err(Error::etcd(what, err)),
            Err(_) if tokio::time::Instant::now() < deadline => {}
            Err(elapsed) => return Err(Error::etcd(what, elapsed)),
        }
    }
}

/// Whether etcd's answer means "not now" rather than "no": the transport, a member without a
/// leader, a leader that changed, a request that timed out inside the cluster.
fn transient(err: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    match err {
        E::TransportError(_) | E::IoError(_) => true,
        E::GRpcStatus(status) => {
            matches!(
                status.code(),
                tonic::Code::Unavailable
                    | tonic::Code::Unknown
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Aborted
            ) || status.message().contains("leader")
                || status.message().contains("timed out")
        }
        _ => false,
    }
}
