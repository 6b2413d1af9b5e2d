//! Who may call a route: the pipeline's authorization step by the route's [`Access`] (tokens
//! verified before anything is read, claimed or replayed), and whose `Idempotency-Key` a request
//! holds.

use crate::http::auth::{self, Audience, Principal, CUSTOMER_SCOPE};
use crate::http::call::Call;
use crate::http::problem::Problem;
use crate::http::routing::Access;

/// Authorize `call` by its route's [`Access`], before anything is read, claimed or replayed:
/// the verified principal is set on the call, or the problem to answer.
pub(crate) fn authorize<E>(call: &mut Call<E>) -> Result<(), Problem> {
    call.principal = match call.route.access {
        Access::Admin(scope) => Some(call.require_token(Audience::Admin, scope)?),
        Access::OwnerOrAdmin {
            audience,
            scope,
            admin_scope,
        } => Some(call.owner_or_admin(audience, scope, admin_scope)?),
        Access::Bearer { audience, scope } => Some(call.require_token(audience, scope)?),
        Access::Shopper | Access::Capability if call.header("Authorization").is_some() => {
            call.signed_in_customer()?
        }
        _ => return Ok(()),
    };
    Ok(())
}

/// Who an `Idempotency-Key` belongs to (see [`Access`]): the admin token's subject, the
/// capability resource, or for anonymous routes the client's address.
pub(crate) fn idempotency_scope<E>(call: &Call<E>) -> String {
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

/// Verifying the bearer tokens a route's access asks for.
impl<E> Call<E> {
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
    pub(crate) fn signed_in_customer(&self) -> Result<Option<Principal>, Problem> {
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
    pub(crate) fn owner_or_admin(
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
}
