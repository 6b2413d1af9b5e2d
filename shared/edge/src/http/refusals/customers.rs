//! What the account and customer routes answer when they refuse: bad credentials, a token whose
//! customer is gone, the limits of an account.

use crate::http::problem::Problem;

/// 401: the email address or the password is wrong (the same answer either way).
pub fn invalid_credentials() -> Problem {
    Problem::new(
        401,
        "invalid_credentials",
        "Invalid credentials",
        "The email address or the password is wrong",
    )
}

/// 401: the refresh token is unknown, expired, revoked or used.
pub fn invalid_refresh() -> Problem {
    Problem::new(
        401,
        "invalid_refresh_token",
        "Invalid refresh token",
        "This refresh token is unknown, expired, revoked or used; log in again",
    )
}

/// 401: an access token that names no customer.
pub fn token_names_no_customer() -> Problem {
    Problem::new(
        401,
        "invalid_token",
        "Unauthorized",
        "The token names no customer",
    )
}

/// 401: the token's customer no longer exists.
pub fn customer_gone() -> Problem {
    Problem::new(
        401,
        "invalid_token",
        "Unauthorized",
        "The token's customer no longer exists",
    )
}

/// 401: the token's customer has no credentials any more.
pub fn no_such_customer() -> Problem {
    Problem::new(401, "invalid_token", "Unauthorized", "No such customer")
}

/// 409: an order of the account is still on its way, so it cannot be erased yet.
pub fn orders_in_progress() -> Problem {
    Problem::new(
            409,
            "orders_in_progress",
            "Orders in progress",
            "An order of this account is still on its way; erase the account once it is delivered or cancelled",
        )
}

/// 409: a customer keeps at most 20 addresses.
pub fn too_many_addresses() -> Problem {
    Problem::new(
        409,
        "too_many_addresses",
        "Too many addresses",
        "A customer keeps at most 20 addresses; delete one first",
    )
}
