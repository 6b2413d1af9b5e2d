//! Every outbound HTTP call (payment providers, merchant webhooks) goes through [`send`]: it has
//! a timeout (the call is aborted when it passes), and redirects are never followed (a 3xx is
//! the answer; a redirect could lead a signed request somewhere its sender never approved).

pub mod account_mail;
pub mod providers;
pub mod stripe;
pub mod webhooks;

use futures_util::future::{select, Either};
use shop_domain::kernel::standard_webhooks::sign;
use shop_domain::kernel::time::Timestamp;
use worker::{
    AbortController, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response,
};

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

/// A POST of `body` signed with Standard Webhooks by the `whsec_` `secret`: `webhook-id` is
/// `id`, `webhook-timestamp` is `now`. `Err` says why it cannot be made (a secret that is not a
/// `whsec_` secret).
pub fn standard_webhooks_post(
    secret: &str,
    id: &str,
    now: Timestamp,
    body: &str,
    user_agent: &str,
) -> Result<RequestInit, String> {
    let timestamp = now.seconds();
    let signature = sign(secret, id, timestamp, body).ok_or("the secret is not a whsec_ secret")?;
    let headers = Headers::new();
    for (k, v) in [
        ("Content-Type", "application/json"),
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string().as_str()),
        ("webhook-signature", signature.as_str()),
        ("User-Agent", user_agent),
    ] {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    Ok(init)
}
