//! Feature unification for the function crates (see `Cargo.toml`): no code, only dependencies.
//! Not a library to use.
