//! Table-driven routing. Each worker declares its routes once (method, path template, who may
//! call it, endpoint); the same table drives dispatch, authorization (before anything else is
//! answered, idempotent replays included), the 405 `Allow` header, and the test that the
//! OpenAPI document lists every route.

use crate::http::problem::Problem;

/// Who may call a route. The pipeline checks it before reading any record or replaying any
/// answer, and scopes `Idempotency-Key` records to the caller it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone. An `Idempotency-Key` is scoped to the client's address (`CF-Connecting-IP`).
    Public,
    /// Anyone; a customer's access token (`aud` = `shop-customer`), when sent, is verified
    /// first and names the customer calling (a 401 when it is not valid; a token of another
    /// audience names no customer). An `Idempotency-Key` is scoped to that customer, or else to
    /// the client's address.
    Shopper,
    /// Whoever holds the resource id in the first path parameter (an unguessable capability,
    /// such as a cart id); a customer's access token, when sent, is verified first and names
    /// the customer calling, whose own resources answer only to it. An `Idempotency-Key` is
    /// scoped to that resource and that customer.
    Capability,
    /// An admin bearer token (`aud` = `shop-admin`) with this scope. An `Idempotency-Key` is
    /// scoped to the token's subject.
    Admin(&'static str),
    /// The resource's own bearer token (`audience`, with `scope`, whose subject is the first
    /// path parameter: a token of one resource never opens another), or an admin token with
    /// `admin_scope`. An `Idempotency-Key` is scoped to the token's subject.
    OwnerOrAdmin {
        audience: crate::http::auth::Audience,
        scope: &'static str,
        admin_scope: &'static str,
    },
    /// A bearer token of `audience` with `scope` (a customer's access token): the caller is its
    /// subject. An `Idempotency-Key` is scoped to that subject.
    Bearer {
        audience: crate::http::auth::Audience,
        scope: &'static str,
    },
    /// The handler authorizes (reads that accept more than one kind of token). Never used for
    /// a mutation: a stored answer must never be replayed before authorization.
    Handler,
    /// A provider's signed delivery (a payment webhook): the handler verifies the signature on
    /// the raw body before it reads or writes anything. Deliveries are deduplicated by the
    /// provider's event id, so `Idempotency-Key` is not used.
    Signed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<E> {
    pub method: &'static str,
    /// e.g. `/v1/carts/{cart_id}/items/{line_id}`
    pub path: &'static str,
    pub access: Access,
    pub endpoint: E,
}

/// Is `method` one that changes state (and so takes an `Idempotency-Key`)?
pub fn is_mutation(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

/// Mutations whose access the pipeline cannot check itself (`Access::Handler`), as
/// `"METHOD /path"`.
fn mutations_authorized_late<E>(routes: &[Route<E>]) -> Vec<String> {
    routes
        .iter()
        .filter(|r| is_mutation(r.method) && r.access == Access::Handler)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// A matched route with its path parameters, in template order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched<E> {
    pub endpoint: E,
    pub template: &'static str,
    pub access: Access,
    pub params: Vec<String>,
}

impl<E> Matched<E> {
    pub fn param(&self, index: usize) -> &str {
        self.params.get(index).map_or("", String::as_str)
    }
}

fn match_template(template: &str, path: &str) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return Some(params),
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') => {
                if g.is_empty() {
                    return None;
                }
                params.push(g.to_owned());
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
}

/// Find the route for `method` and `path`: 404 when no template matches the path, 405 (with
/// `Allow`) when templates match but none for this method.
pub fn resolve<E: Copy>(
    routes: &[Route<E>],
    method: &str,
    path: &str,
) -> Result<Matched<E>, Problem> {
    let mut allowed: Vec<&str> = Vec::new();
    for route in routes {
        if let Some(params) = match_template(route.path, path) {
            if route.method == method {
                return Ok(Matched {
                    endpoint: route.endpoint,
                    template: route.path,
                    access: route.access,
                    params,
                });
            }
            if !allowed.contains(&route.method) {
                allowed.push(route.method);
            }
        }
    }
    if allowed.is_empty() {
        Err(Problem::route_not_found())
    } else {
        allowed.push("OPTIONS");
        Err(Problem::method_not_allowed(&allowed))
    }
}

/// The test every worker carries, written once: its `ROUTES` against the checked-in OpenAPI
/// document (`schema/openapi.json`), by [`route_table_faults`]. `shop_edge::route_table_test!();`
/// in a worker's `lib.rs`.
#[macro_export]
macro_rules! route_table_test {
    () => {
        #[cfg(test)]
        mod route_table {
            #[test]
            fn every_route_is_documented_and_authorized_by_the_pipeline() {
                const OPENAPI: &str = include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../schema/openapi.json"
                ));
                assert_eq!(
                    $crate::http::routing::route_table_faults(super::ROUTES, OPENAPI),
                    Vec::<String>::new()
                );
            }
        }
    };
}

/// What is wrong with a worker's route table, as `"METHOD /path: why"`: a mutation the pipeline
/// cannot authorize itself, or a route the OpenAPI document `openapi` (JSON) does not list.
/// Each worker's tests assert this is empty.
pub fn route_table_faults<E>(routes: &[Route<E>], openapi: &str) -> Vec<String> {
    let late = mutations_authorized_late(routes)
        .into_iter()
        .map(|r| format!("{r}: a mutation authorized by its handler, not the pipeline"));
    let undocumented = undocumented_routes(routes, openapi)
        .into_iter()
        .map(|r| format!("{r}: not in the OpenAPI document"));
    late.chain(undocumented).collect()
}

/// Routes of `routes` that the OpenAPI document `openapi` (JSON) does not list, as
/// `"METHOD /path"`.
fn undocumented_routes<E>(routes: &[Route<E>], openapi: &str) -> Vec<String> {
    let document: serde_json::Value = serde_json::from_str(openapi).unwrap_or_default();
    routes
        .iter()
        .filter(|r| {
            document
                .pointer(&format!(
                    "/paths/{}/{}",
                    r.path.replace('~', "~0").replace('/', "~1"),
                    r.method.to_ascii_lowercase()
                ))
                .is_none()
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &[Route<u8>] = &[
        Route {
            method: "GET",
            path: "/v1/carts/{id}",
            access: Access::Handler,
            endpoint: 1,
        },
        Route {
            method: "PATCH",
            path: "/v1/carts/{id}/items/{line}",
            access: Access::Capability,
            endpoint: 2,
        },
        Route {
            method: "DELETE",
            path: "/v1/carts/{id}/items/{line}",
            access: Access::Handler,
            endpoint: 3,
        },
    ];

    #[test]
    fn finds_mutations_the_pipeline_cannot_authorize() {
        assert_eq!(
            mutations_authorized_late(ROUTES),
            vec!["DELETE /v1/carts/{id}/items/{line}"]
        );
    }

    #[test]
    fn finds_undocumented_routes() {
        let doc = r#"{"paths": {"/v1/carts/{id}": {"get": {}}}}"#;
        assert_eq!(
            undocumented_routes(ROUTES, doc),
            vec![
                "PATCH /v1/carts/{id}/items/{line}",
                "DELETE /v1/carts/{id}/items/{line}"
            ]
        );
    }

    #[test]
    fn matches_and_extracts_params() {
        let m = resolve(ROUTES, "PATCH", "/v1/carts/c1/items/l1").unwrap();
        assert_eq!((m.endpoint, m.param(0), m.param(1)), (2, "c1", "l1"));
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        assert_eq!(resolve(ROUTES, "GET", "/v1/cart").unwrap_err().status, 404);
        assert_eq!(
            resolve(ROUTES, "GET", "/v1/carts/").unwrap_err().status,
            404
        );
        assert_eq!(
            resolve(ROUTES, "GET", "/v1/carts/c1/").unwrap_err().status,
            404
        );
        let p = resolve(ROUTES, "POST", "/v1/carts/c1/items/l1").unwrap_err();
        assert_eq!(p.status, 405);
        assert_eq!(p.headers[0].1, "PATCH, DELETE, OPTIONS");
    }
}
