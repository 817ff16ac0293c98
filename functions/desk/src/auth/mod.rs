//! Who is asking: the bearer token checked as the HTTP API's JWT authorizer checks it.
pub mod jwks;
pub mod jwt;
