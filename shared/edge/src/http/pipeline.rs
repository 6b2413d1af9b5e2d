//! The request pipeline every worker shares (`serve`): request id, configuration, CORS,
//! routing, body limits, authorization ([`crate::http::access`]), `Idempotency-Key`, the handler,
//! problem+json mapping, headers and one log line; and `forward` to another worker.

use std::future::Future;

use futures_util::StreamExt;
use worker::{console_log, Context, Env, Headers, Request, Response};

use std::rc::Rc;

use crate::store::sql::Tally;

use crate::config::Config;
use crate::http::body;
use crate::http::cors;
use crate::http::idempotency::{self, Key, Refusal, State};
use crate::http::problem::Problem;
use crate::http::routing::{is_mutation, resolve, Access, Matched, Route};
use crate::reply::Reply;

use crate::http::access;
use crate::http::call::{log_error, now, Call};

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
                        let runtime = Runtime {
                            env,
                            ctx: Rc::new(ctx),
                            config,
                            tally: tally.clone(),
                        };
                        let incoming = Incoming {
                            request_id: &request_id,
                            method: &method,
                            path: &path,
                        };
                        let reply = run(req, runtime, incoming, route, handler).await;
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

/// What a routed request runs with: the worker's bindings, its context, the settings and the
/// tally of its D1 round trips.
struct Runtime {
    env: Env,
    ctx: Rc<Context>,
    config: Config,
    tally: Rc<Tally>,
}

/// What the pipeline read of the request before routing it.
struct Incoming<'a> {
    request_id: &'a str,
    method: &'a str,
    path: &'a str,
}

async fn run<E, F, Fut>(
    mut req: Request,
    runtime: Runtime,
    incoming: Incoming<'_>,
    route: Matched<E>,
    handler: F,
) -> Reply
where
    E: Copy,
    F: Fn(Call<E>) -> Fut,
    Fut: Future<Output = Result<Reply, Problem>>,
{
    let Runtime {
        env,
        ctx,
        config,
        tally,
    } = runtime;
    let Incoming {
        request_id,
        method,
        path,
    } = incoming;
    let headers = Headers(req.headers().0.clone());
    let query = query_pairs(&req.inner().url());
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
        body: Vec::new(),
    };

    // Authorization comes first: nothing is claimed or replayed for a caller who may not call
    // this route, and such a caller's body is read only as far as the default limit (so the
    // connection stays usable for an ordinary client, and a large body is never read for one).
    if let Err(p) = access::authorize(&mut call) {
        if is_mutation(method) {
            let _ = read_body(&mut req, body::DEFAULT_BODY_LIMIT).await;
        }
        return p.into_reply(request_id);
    }
    if is_mutation(method) {
        let limit = call.config.body_limit;
        let declared = call.headers.get("Content-Length").ok().flatten();
        if let Err(p) = body::check_declared_length(declared.as_deref(), limit) {
            return p.into_reply(request_id);
        }
        match read_body(&mut req, limit).await {
            Ok(Some(bytes)) => call.body = bytes,
            Ok(None) => return body::too_large(limit).into_reply(request_id),
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

    let key = match call.header("Idempotency-Key") {
        Some(raw) if is_mutation(method) && call.route.access != Access::Signed => {
            match shop_domain::kernel::idempotency::IdempotencyKey::parse(&raw) {
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

    let scope = access::idempotency_scope(&call);
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
    let response = match reply.bytes {
        Some(bytes) => Response::from_bytes(bytes)?,
        None if reply.body.is_empty() => Response::empty()?,
        None => Response::from_bytes(reply.body.into_bytes())?,
    };
    Ok(response.with_status(reply.status).with_headers(headers))
}

/// The query of `url` (as the runtime gives it: already parsed and normalised), decoded as
/// `application/x-www-form-urlencoded` pairs. Read from the string, not through `Url::parse`,
/// which would link a whole URL parser into every worker for this.
fn query_pairs(url: &str) -> Vec<(String, String)> {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let Some((_, query)) = url.split_once('?') else {
        return Vec::new();
    };
    worker::url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::query_pairs;

    #[test]
    fn the_query_reads_as_the_url_parser_reads_it() {
        for url in [
            "https://api.example.com/v1/products?limit=2&cursor=x%20y",
            "https://api.example.com/p?a=1&a=2&b=+plus&c=%2B",
            "https://api.example.com/p",
            "https://api.example.com/p?",
            "https://api.example.com/p?x=%E2%82%AC#frag?no=1",
            "https://api.example.com/p?novalue&=empty&k=v=w",
            "http://127.0.0.1:8787/v1/me/orders?limit=1",
        ] {
            let parsed = worker::Url::parse(url).unwrap();
            let expected: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(query_pairs(url), expected, "{url}");
        }
    }
}
