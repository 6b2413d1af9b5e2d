//! The request pipeline every worker shares: request id, configuration, CORS, routing, body
//! limits, `Idempotency-Key`, the handler, problem+json mapping, headers and one log line.

use std::future::Future;

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use shop_domain::ids::{CustomerId, IdSource};
use shop_domain::time::Timestamp;
use worker::{console_error, console_log, Context, Env, Headers, Request, Response};

use std::rc::Rc;

use crate::store::sql::{Db, Tally};

use crate::config::Config;
use crate::http::auth::{self, Audience, Principal, CUSTOMER_SCOPE};
use crate::http::body;
use crate::http::cors;
use crate::http::idempotency::{self, Key, Refusal, State};
use crate::http::problem::Problem;
use crate::http::reply::Reply;
use crate::http::routing::{is_mutation, resolve, Access, Matched, Route};

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
    tally: Rc<Tally>,
    /// The request's `Idempotency-Key`, claimed by its first D1 round trip (see
    /// [`crate::http::idempotency`]).
    key: Option<Rc<Key>>,
    /// The event's context: work may go on after the answer ([`Call::after_answer`]).
    ctx: Rc<Context>,
    headers: Headers,
    query: Vec<(String, String)>,
    body: Vec<u8>,
}

impl<E> Call<E> {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reject query parameters the endpoint does not know (a typo must not silently widen a
    /// listing).
    pub fn only_query_params(&self, known: &[&str]) -> Result<(), Problem> {
        match self
            .query
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
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
            .map(|db| Db::new(db, self.tally.clone(), self.key.clone()))
            .map_err(|e| self.internal("D1 binding DB", &e))
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

    /// Require a bearer token for `audience` with `scope`.
    pub fn require_token(
        &self,
        audience: Audience,
        scope: &'static str,
    ) -> Result<Principal, Problem> {
        let secret = self.jwt_secret()?;
        auth::verify(
            self.header("Authorization").as_deref(),
            secret.as_bytes(),
            self.now,
            audience,
            scope,
        )
        .map_err(auth::AuthError::into_problem)
    }

    /// The customer named by the request's access token, on a route anyone may call: a token
    /// of another audience (an admin's, an order's) or other credentials name no customer
    /// (`None`); a bearer token that is not valid (expired, forged) is 401, never a guest.
    fn signed_in_customer(&self) -> Result<Option<Principal>, Problem> {
        let secret = self.jwt_secret()?;
        match auth::verify(
            self.header("Authorization").as_deref(),
            secret.as_bytes(),
            self.now,
            Audience::Customer,
            CUSTOMER_SCOPE,
        ) {
            Ok(principal) => Ok(Some(principal)),
            // Not a bearer token (a proxy's Basic credentials), or another audience's.
            Err(auth::AuthError::Missing | auth::AuthError::WrongAudience) => Ok(None),
            Err(e) => Err(e.into_problem()),
        }
    }

    /// The caller of an [`Access::OwnerOrAdmin`] route: an admin token with `admin_scope`, or
    /// a token of `audience` with `scope` for the resource named by the first path parameter
    /// (403 `wrong_resource` for another one's).
    fn owner_or_admin(
        &self,
        audience: Audience,
        scope: &'static str,
        admin_scope: &'static str,
    ) -> Result<Principal, Problem> {
        let secret = self.jwt_secret()?;
        let header = self.header("Authorization");
        let verify = |audience, scope| {
            auth::verify(
                header.as_deref(),
                secret.as_bytes(),
                self.now,
                audience,
                scope,
            )
        };
        match verify(audience, scope) {
            Ok(owner) if owner.sub == self.route.param(0) => Ok(owner),
            Ok(_) => Err(Problem::new(
                403,
                "wrong_resource",
                "Forbidden",
                "This token opens another resource, not this one",
            )),
            Err(auth::AuthError::WrongAudience) => {
                verify(Audience::Admin, admin_scope).map_err(auth::AuthError::into_problem)
            }
            Err(e) => Err(e.into_problem()),
        }
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

fn request_id(incoming: Option<String>) -> String {
    incoming
        .filter(|id| {
            (8..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .unwrap_or_else(|| format!("req_{}", uuid::Uuid::new_v4().simple()))
}

thread_local! {
    static CONFIG: std::cell::OnceCell<Config> = const { std::cell::OnceCell::new() };
}

/// Settings are fixed for the life of an isolate (a deploy makes new isolates), so they are
/// parsed once per isolate; a bad setting is reported on every request until fixed.
pub fn config(env: &Env) -> Result<Config, crate::config::ConfigError> {
    if let Some(config) = CONFIG.with(|c| c.get().cloned()) {
        return Ok(config);
    }
    let config = Config::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()))?;
    CONFIG.with(|c| {
        let _ = c.set(config.clone());
    });
    Ok(config)
}

/// Serve one request with `routes` and `handler`. Never returns an error response that is not
/// problem+json; never panics on request data.
pub async fn serve<E, F, Fut>(
    req: Request,
    env: Env,
    ctx: Context,
    routes: &[Route<E>],
    handler: F,
) -> worker::Result<Response>
where
    E: Copy,
    F: Fn(Call<E>) -> Fut,
    Fut: Future<Output = Result<Reply, Problem>>,
{
    let started = worker::Date::now().as_millis();
    let tally = Rc::new(Tally::default());
    // A second handle on the same JS object (worker's `Headers::clone` copies every header).
    let headers = Headers(req.headers().0.clone());
    let header = |name: &str| headers.get(name).ok().flatten();
    let request_id = request_id(header("X-Request-Id"));
    let method = req.inner().method().to_ascii_uppercase();
    let path = req.path();
    let origin = header("Origin");

    let config = config(&env);
    let (reply, template) = match config {
        Err(e) => {
            log_error(&request_id, "configuration", &e);
            (Problem::internal().into_reply(&request_id), None)
        }
        Ok(config) => {
            let cors_headers = cors::response_headers(&config.cors_origins, origin.as_deref());
            let (reply, template) = if method == "OPTIONS" {
                let reply = cors::preflight(
                    &config.cors_origins,
                    origin.as_deref(),
                    header("Access-Control-Request-Method").as_deref(),
                );
                (reply.unwrap_or_else(|p| p.into_reply(&request_id)), None)
            } else {
                let routed_method = if method == "HEAD" {
                    "GET"
                } else {
                    method.as_str()
                };
                match resolve(routes, routed_method, &path) {
                    Err(problem) => (problem.into_reply(&request_id), None),
                    Ok(route) => {
                        let template = route.template;
                        let reply = run(
                            req,
                            env,
                            Rc::new(ctx),
                            config,
                            route,
                            &request_id,
                            &method,
                            &path,
                            tally.clone(),
                            handler,
                        )
                        .await;
                        (reply, Some(template))
                    }
                }
            };
            let mut reply = reply;
            if method != "OPTIONS" {
                reply.headers.extend(cors_headers);
            }
            (reply, template)
        }
    };

    let status = reply.status;
    let response = to_response(reply, &request_id)?;
    let duration_ms = worker::Date::now().as_millis().saturating_sub(started);
    let line = serde_json::json!({
        "level": "info",
        "request_id": request_id,
        "method": method,
        "route": template.unwrap_or(path.as_str()),
        "status": status,
        "duration_ms": duration_ms,
        "d1_round_trips": tally.round_trips(),
        "d1_statements": tally.statements(),
    });
    console_log!("{}", line);
    Ok(response)
}

#[allow(clippy::too_many_arguments)]
async fn run<E, F, Fut>(
    mut req: Request,
    env: Env,
    ctx: Rc<Context>,
    config: Config,
    route: Matched<E>,
    request_id: &str,
    method: &str,
    path: &str,
    tally: Rc<Tally>,
    handler: F,
) -> Reply
where
    E: Copy,
    F: Fn(Call<E>) -> Fut,
    Fut: Future<Output = Result<Reply, Problem>>,
{
    let headers = Headers(req.headers().0.clone());
    let query = req
        .url()
        .map(|u| {
            u.query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut body_bytes = Vec::new();
    if is_mutation(method) {
        let declared = headers.get("Content-Length").ok().flatten();
        if let Err(p) = body::check_declared_length(declared.as_deref(), config.body_limit) {
            return p.into_reply(request_id);
        }
        match read_body(&mut req, config.body_limit).await {
            Ok(Some(bytes)) => body_bytes = bytes,
            Ok(None) => return body::too_large(config.body_limit).into_reply(request_id),
            Err(e) => {
                log_error(request_id, "reading body", &e);
                return Problem::new(
                    400,
                    "unreadable_body",
                    "Bad request",
                    "The body could not be read",
                )
                .into_reply(request_id);
            }
        }
    }
    let mut call = Call {
        request_id: request_id.to_owned(),
        now: now(),
        config,
        route,
        env,
        principal: None,
        replayed: None,
        tally,
        key: None,
        ctx,
        headers,
        query,
        body: body_bytes,
    };

    // Authorization comes first: nothing is read, claimed or replayed for a caller who may
    // not call this route.
    match call.route.access {
        Access::Admin(scope) => match call.require_token(Audience::Admin, scope) {
            Ok(principal) => call.principal = Some(principal),
            Err(p) => return p.into_reply(request_id),
        },
        Access::OwnerOrAdmin {
            audience,
            scope,
            admin_scope,
        } => match call.owner_or_admin(audience, scope, admin_scope) {
            Ok(principal) => call.principal = Some(principal),
            Err(p) => return p.into_reply(request_id),
        },
        Access::Bearer { audience, scope } => match call.require_token(audience, scope) {
            Ok(principal) => call.principal = Some(principal),
            Err(p) => return p.into_reply(request_id),
        },
        Access::Shopper | Access::Capability if call.header("Authorization").is_some() => {
            match call.signed_in_customer() {
                Ok(principal) => call.principal = principal,
                Err(p) => return p.into_reply(request_id),
            }
        }
        _ => {}
    }

    let key = match call.header("Idempotency-Key") {
        Some(raw) if is_mutation(method) && call.route.access != Access::Signed => {
            match shop_domain::idempotency::IdempotencyKey::parse(&raw) {
                Ok(key) => Some(key),
                Err(e) => {
                    return Problem::new(
                        400,
                        "invalid_idempotency_key",
                        "Bad request",
                        e.to_string(),
                    )
                    .into_reply(request_id)
                }
            }
        }
        _ => None,
    };
    let Some(key) = key else {
        return settle(handler(call).await, request_id, None);
    };

    let scope = idempotency_scope(&call);
    let fingerprint = idempotency::fingerprint(method, path, &call.body);
    let key = Rc::new(Key::new(scope, &key, fingerprint, call.now));
    call.key = Some(key.clone());
    // For a replay that its handler completes (below).
    let again = call.without_key();
    let reply = settle(handler(call).await, request_id, Some(&key));
    match key.state() {
        State::Refused(Refusal::Problem(problem)) => problem.into_reply(request_id),
        State::Refused(Refusal::Replay(stored)) => {
            let mut reply = if stored.completed_on_replay {
                // The stored answer lacks credentials shown once; the handler issues them again
                // (without the key: nothing it does is claimed or stored).
                let mut again = again;
                again.replayed = Some(stored);
                settle(handler(again).await, request_id, None)
            } else {
                stored
            };
            reply
                .headers
                .push(("Idempotent-Replayed".into(), "true".into()));
            reply
        }
        // Stored with the change (a later failure keeps it: the change happened, and a retry
        // gets the answer it made).
        State::Answered => reply,
        State::Unclaimed | State::Held => {
            let db = match again.db() {
                Ok(db) => db,
                Err(p) => return p.into_reply(request_id),
            };
            let done = if (200..300).contains(&reply.status) {
                key.complete(&db, &reply).await
            } else {
                key.release(&db).await
            };
            if let Err(e) = done {
                log_error(request_id, "idempotency record", &e);
            }
            reply
        }
    }
}

/// A handler's result as the reply. An internal problem's cause is logged here, once, with the
/// request id, unless the request's key proved to be an earlier request's (D1 refused the
/// request on purpose, and the pipeline answers instead).
fn settle(result: Result<Reply, Problem>, request_id: &str, key: Option<&Key>) -> Reply {
    result.unwrap_or_else(|problem| {
        if let Some(cause) = &problem.cause {
            if !key.is_some_and(Key::refused) {
                log_error(request_id, "handler", cause);
            }
        }
        problem.into_reply(request_id)
    })
}

impl<E: Copy> Call<E> {
    /// The same request, not holding its `Idempotency-Key` (round trips go straight to D1).
    fn without_key(&self) -> Call<E> {
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

/// Who an `Idempotency-Key` belongs to (see [`Access`]): the admin token's subject, the
/// capability resource, or for anonymous routes the client's address.
fn idempotency_scope<E>(call: &Call<E>) -> String {
    match call.route.access {
        Access::Admin(_) | Access::OwnerOrAdmin { .. } | Access::Bearer { .. } => {
            match &call.principal {
                Some(p) => format!("principal:{}", p.identity()),
                None => "principal:".to_owned(),
            }
        }
        Access::Capability => match &call.principal {
            Some(p) => format!(
                "resource:{}:principal:{}",
                call.route.param(0),
                p.identity()
            ),
            None => format!("resource:{}", call.route.param(0)),
        },
        Access::Shopper => match &call.principal {
            Some(p) => format!("principal:{}", p.identity()),
            None => format!(
                "client:{}",
                call.header("CF-Connecting-IP").unwrap_or_default()
            ),
        },
        Access::Public => format!(
            "client:{}",
            call.header("CF-Connecting-IP").unwrap_or_default()
        ),
        Access::Handler | Access::Signed => format!("route:{}", call.route.template),
    }
}

/// Read the body as a stream, stopping as soon as it passes `limit` (`Ok(None)`): a chunked
/// upload of any size costs at most `limit` bytes of memory.
async fn read_body(req: &mut Request, limit: usize) -> worker::Result<Option<Vec<u8>>> {
    if req.inner().body().is_none() {
        return Ok(Some(Vec::new()));
    }
    let mut stream = req.stream()?;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if bytes.len().saturating_add(chunk.len()) > limit {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// Hand the request, untouched, to another worker through the service binding `binding`
/// (used where production routes, being path prefixes, cannot separate two workers).
pub async fn forward(req: Request, env: &Env, binding: &str) -> worker::Result<Response> {
    let forwarded = match env.service(binding) {
        Ok(service) => service.fetch_request(req).await,
        Err(e) => Err(e),
    };
    match forwarded {
        Ok(response) => Ok(response),
        Err(e) => {
            let request_id = request_id(None);
            log_error(&request_id, &format!("forwarding to {binding}"), &e);
            to_response(
                Problem::new(
                    503,
                    "service_unavailable",
                    "Service unavailable",
                    "Retry shortly",
                )
                .with_header("Retry-After", "1")
                .into_reply(&request_id),
                &request_id,
            )
        }
    }
}

fn to_response(reply: Reply, request_id: &str) -> worker::Result<Response> {
    let headers = Headers::new();
    if !reply.content_type.is_empty() {
        headers.set("Content-Type", &reply.content_type)?;
    }
    let mut cache_control_set = false;
    for (name, value) in &reply.headers {
        cache_control_set |= name.eq_ignore_ascii_case("Cache-Control");
        headers.append(name, value)?;
    }
    if !cache_control_set {
        headers.set("Cache-Control", "no-store")?;
    }
    headers.set("X-Request-Id", request_id)?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    let response = if reply.body.is_empty() {
        Response::empty()?
    } else {
        Response::from_bytes(reply.body.into_bytes())?
    };
    Ok(response.with_status(reply.status).with_headers(headers))
}
