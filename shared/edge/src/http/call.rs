//! One request as a handler sees it ([`Call`]: its id, time, settings, route, principal, headers,
//! query and body, and what handlers reach through it), the runtime's ids and clock, and the one
//! error log line.

use std::future::Future;

use serde::de::DeserializeOwned;
use shop_domain::kernel::ids::{CustomerId, IdSource};
use shop_domain::kernel::time::Timestamp;
use worker::{console_error, Context, Env, Headers};

use std::rc::Rc;

use crate::store::sql::{Db, KeyClaim, Tally};

use crate::config::Config;
use crate::http::auth::{self, Audience, Principal};
use crate::http::body;
use crate::http::idempotency::Key;
use crate::http::problem::Problem;
use crate::http::routing::Matched;
use crate::reply::Reply;

/// Ids drawn from the runtime's CSPRNG (`crypto.getRandomValues`, through `uuid`).
pub struct CryptoIds;

impl IdSource for CryptoIds {
    fn next_u128(&self) -> u128 {
        uuid::Uuid::new_v4().as_u128()
    }
}

pub fn now() -> Timestamp {
    Timestamp::from_millis(i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX))
}

/// One request, parsed as far as the pipeline can without knowing the endpoint.
pub struct Call<E> {
    pub request_id: String,
    pub now: Timestamp,
    pub config: Config,
    pub route: Matched<E>,
    pub env: Env,
    /// The admin who called, on `Access::Admin` routes (verified before the handler runs).
    pub principal: Option<Principal>,
    /// On a replay of a stored answer that its handler completes (see
    /// [`Reply::completed_on_replay`]): the stored answer, for the handler to complete.
    pub replayed: Option<Reply>,
    /// D1 round trips made for this request (see [`Call::db`]).
    pub(crate) tally: Rc<Tally>,
    /// The request's `Idempotency-Key`, claimed by its first D1 round trip (see
    /// [`crate::http::idempotency`]).
    pub(crate) key: Option<Rc<Key>>,
    /// The event's context: work may go on after the answer ([`Call::after_answer`]).
    pub(crate) ctx: Rc<Context>,
    pub(crate) headers: Headers,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl<E> Call<E> {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// The request's `If-Match` condition.
    pub fn precondition(&self) -> shop_domain::kernel::precondition::Precondition {
        shop_domain::kernel::precondition::Precondition::from_header(
            self.header("If-Match").as_deref(),
        )
    }

    /// Every query pair, in the request's order (repeated names included).
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reject query parameters the endpoint does not know (a typo must not silently widen a
    /// listing).
    /// `known` names are exact, or prefixes when they end in `*` (`option.*`).
    pub fn only_query_params(&self, known: &[&str]) -> Result<(), Problem> {
        let is_known = |k: &str| {
            known.iter().any(|n| match n.strip_suffix('*') {
                Some(prefix) => k.len() > prefix.len() && k.starts_with(prefix),
                None => *n == k,
            })
        };
        match self.query.iter().find(|(k, _)| !is_known(k)) {
            Some((k, _)) => Err(Problem::invalid_field(
                &format!("/query/{k}"),
                "unknown_parameter",
                format!("Unknown query parameter {k:?}; known: {}", known.join(", ")),
            )),
            None => Ok(()),
        }
    }

    /// Run `work` after the answer is sent (the runtime's `waitUntil`): for work whose time
    /// must not show in the answer (whether an address has an account), or that the caller
    /// need not wait for. It runs on its own D1 handle, outside the request's key.
    pub fn after_answer(&self, work: impl Future<Output = ()> + 'static) {
        self.ctx.wait_until(work);
    }

    /// The body's bytes exactly as received (what a signature covers).
    pub fn raw_body(&self) -> &[u8] {
        &self.body
    }

    /// The body as `T`, strictly (see [`body::parse_json`]).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        body::parse_json(
            self.header("Content-Type").as_deref(),
            &self.body,
            self.config.body_limit,
        )
    }

    /// The D1 database, its round trips counted for this request's log line.
    pub fn db(&self) -> Result<Db, Problem> {
        self.env
            .d1("DB")
            .map(|db| {
                let key = self.key.clone().map(|k| k as Rc<dyn KeyClaim>);
                Db::new(db, self.tally.clone(), key)
            })
            .map_err(|e| self.internal("D1 binding DB", &e))
    }

    /// The product image bucket (`IMAGES`), or the logged 500 when the worker has none.
    pub fn images(&self) -> Result<crate::store::images::Images, Problem> {
        self.env
            .bucket(crate::store::images::BUCKET)
            .map(crate::store::images::Images::new)
            .map_err(|e| self.internal("R2 binding IMAGES", &e))
    }

    /// The signing secret for tokens, or the logged 500 when it is unusable (missing, short,
    /// or the published example outside development).
    pub fn jwt_secret(&self) -> Result<String, Problem> {
        let secret = self
            .env
            .secret("JWT_SECRET")
            .map(|s| s.to_string())
            .unwrap_or_default();
        match auth::usable_secret(&secret, self.config.development) {
            Ok(_) => Ok(secret),
            Err(_) => Err(self.internal(
                "JWT_SECRET",
                &"missing, shorter than 32 bytes, or the example value outside development",
            )),
        }
    }

    /// A token for `subject` with `audience` and `scopes`, valid for `ttl` from now, signed with
    /// `JWT_SECRET`: the one place a worker mints a token (customer access, order, tracking and
    /// ticket tokens).
    pub fn mint(
        &self,
        subject: &str,
        audience: Audience,
        scopes: &[&str],
        ttl: shop_domain::kernel::time::Duration,
    ) -> Result<String, Problem> {
        let principal = Principal {
            sub: subject.to_owned(),
            audience,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        };
        let secret = self.jwt_secret()?;
        auth::issue(&principal, secret.as_bytes(), self.now, self.now.plus(ttl)).map_err(|e| {
            self.internal(
                &format!("issuing a {} token", audience.as_str()),
                &format!("{e:?}"),
            )
        })
    }

    /// The signed-in customer calling: the subject of the customer access token the pipeline
    /// verified (on `Shopper`, `Capability` and customer `Bearer` routes).
    pub fn customer(&self) -> Option<CustomerId> {
        self.principal
            .as_ref()
            .filter(|p| p.audience == Audience::Customer)
            .and_then(|p| CustomerId::parse(&p.sub).ok())
    }

    /// The admin principal the pipeline verified for this route.
    pub fn admin(&self) -> Result<&Principal, Problem> {
        self.principal
            .as_ref()
            .ok_or_else(|| self.internal("route access", &"no admin principal on this route"))
    }

    /// Count this request against the limiter bound as `binding` under `key`: 429 with
    /// `Retry-After` when the limit is reached.
    pub async fn rate_limit(&self, binding: &str, key: &str) -> Result<(), Problem> {
        match crate::http::rate_limit::check(&self.env, binding, key).await {
            Ok(crate::http::rate_limit::Verdict::Allowed) => Ok(()),
            Ok(crate::http::rate_limit::Verdict::Limited) => Err(Problem::new(
                429,
                "rate_limited",
                "Too many requests",
                "Too many requests of this kind; retry after the time in Retry-After",
            )
            .with_header("Retry-After", "60")),
            Err(e) => Err(self.internal(&format!("rate limiter {binding}"), &e)),
        }
    }

    /// The secrets of a wrangler secret holding several, comma-separated (a rotation); none when
    /// it is unset or blank.
    pub fn secrets(&self, setting: &str) -> Vec<String> {
        self.env
            .secret(setting)
            .map(|s| shop_domain::payments::secrets_from(&s.to_string()))
            .unwrap_or_default()
    }

    /// [`Call::rate_limit`] keyed by the client's address (`CF-Connecting-IP`).
    pub async fn rate_limit_client(&self, binding: &str) -> Result<(), Problem> {
        let client = self.header("CF-Connecting-IP").unwrap_or_default();
        self.rate_limit(binding, &format!("client:{client}")).await
    }

    /// [`Call::rate_limit`] keyed by an email address, case-insensitively (the limiter sees its
    /// SHA-256, never the address).
    pub async fn rate_limit_email(&self, binding: &str, email: &str) -> Result<(), Problem> {
        let key = crate::http::rate_limit::digest(&email.to_lowercase());
        self.rate_limit(binding, &format!("email:{key}")).await
    }

    /// Require an `Idempotency-Key` on this mutation (where a retry without one could repeat
    /// an effect that matters: an order, a stock adjustment).
    pub fn require_idempotency_key(&self) -> Result<String, Problem> {
        self.header("Idempotency-Key").ok_or_else(|| {
            Problem::new(
                400,
                "idempotency_key_required",
                "Idempotency-Key required",
                "This request must carry an Idempotency-Key header, so that a retry can never apply it twice",
            )
        })
    }

    /// Log an internal failure with its cause and return the opaque 500.
    pub fn internal(&self, context: &str, cause: &dyn std::fmt::Display) -> Problem {
        // Once the key proved to be an earlier request's, D1 refuses this one on purpose and
        // the pipeline answers instead: not a failure.
        if !self.key.as_ref().is_some_and(|k| k.refused()) {
            log_error(&self.request_id, context, cause);
        }
        Problem::internal()
    }
}

pub fn log_error(request_id: &str, context: &str, cause: impl std::fmt::Display) {
    let line = serde_json::json!({
        "level": "error",
        "request_id": request_id,
        "context": context,
        "error": cause.to_string(),
    });
    console_error!("{}", line);
}

impl<E: Copy> Call<E> {
    /// The same request, not holding its `Idempotency-Key` (round trips go straight to D1).
    pub(crate) fn without_key(&self) -> Call<E> {
        Call {
            request_id: self.request_id.clone(),
            now: self.now,
            config: self.config.clone(),
            route: self.route.clone(),
            env: self.env.clone(),
            principal: self.principal.clone(),
            replayed: None,
            tally: self.tally.clone(),
            key: None,
            ctx: self.ctx.clone(),
            headers: Headers(self.headers.0.clone()),
            query: self.query.clone(),
            body: self.body.clone(),
        }
    }
}

impl<E> Call<E> {
    /// Send the events a store operation wrote to the queue: the one publish step of every
    /// handler. Nothing is written to D1 on the request's path: the consumer marks a row sent
    /// and applied in its effect batch, and until then the cron sends it again
    /// (`resend_after` after it was written). A failure is logged, not answered.
    pub async fn publish(&self, events: &[shop_domain::events::Event]) {
        if let Err(e) = crate::store::outbox::send(&self.env, events).await {
            self.internal("publishing events", &e);
        }
    }
}
