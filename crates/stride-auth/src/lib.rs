//! Who may do what. A request's credentials (a bearer token or a Basic
//! user) name a [`Principal`]; the principal's roles are lists of grants,
//! each a set of [`Verb`]s under one app-id [`Prefix`]; the auth file holds
//! roles and principals, tokens and passwords only as hashes.
//!
//! Pure: no HTTP server and no storage here. The server asks an
//! [`Authenticator`] who is calling and the principal's [`Access`] whether
//! a verb is allowed on an id; the CLI edits the file with [`edit`].

mod access;
mod authenticate;
pub mod edit;
mod file;
mod keeper;
mod password;
mod prefix;
mod token;
mod verb;

pub use access::{Access, Grant, Scope};
pub use authenticate::{Authenticator, Credentials, HttpCredentials, Principal, Unauthenticated};
pub use file::{AuthFile, FileError, PrincipalEntry};
pub use keeper::Keeper;
pub use password::hash_password;
pub use prefix::{Prefix, PrefixError};
pub use token::{Token, TokenHash};
pub use verb::Verb;

/// The name the audit records for requests that carry no credentials (or,
/// with no auth file, whatever they carry: nothing is verified then).
pub const ANONYMOUS: &str = "anonymous";
