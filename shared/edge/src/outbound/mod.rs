//! Every outbound HTTP call (payment providers, merchant webhooks) goes through [`send`]: it has
//! a timeout (the call is aborted when it passes), and redirects are never followed (a 3xx is
//! the answer; a redirect could lead a signed request somewhere its sender never approved).

pub mod stripe;
pub mod webhooks;

use futures_util::future::{select, Either};
use worker::{AbortController, Fetch, Request, RequestInit, RequestRedirect, Response};

/// What an outbound call came to.
pub enum Outcome {
    Answered(Response),
    TimedOut,
    Failed(worker::Error),
}

/// Send `init` to `url`, waiting at most `timeout`.
pub async fn send(url: &str, init: &mut RequestInit, timeout: std::time::Duration) -> Outcome {
    init.with_redirect(RequestRedirect::Manual);
    let request = match Request::new_with_init(url, init) {
        Ok(request) => request,
        Err(e) => return Outcome::Failed(e),
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let deadline = Box::pin(worker::Delay::from(timeout));
    let raced = select(sending, deadline).await;
    let outcome = match raced {
        Either::Left((Ok(response), _)) => Outcome::Answered(response),
        Either::Left((Err(e), _)) => Outcome::Failed(e),
        Either::Right(((), sending)) => {
            // Abort, then wait for the aborted call to settle: a rejection no one awaits would
            // fail the whole event.
            controller.abort();
            let _aborted = sending.await;
            Outcome::TimedOut
        }
    };
    outcome
}
