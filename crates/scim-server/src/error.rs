//! The server's error type.
//!
//! Protocol errors are [`scim_core::Error`]s and reach the client as they
//! are. Everything else (database, pool, I/O) keeps its cause for the log
//! and reaches the client as a generic 500 or 503: see [`Error::to_scim`].
//! `api::error` is the one place that turns an [`Error`] into a response.

use scim_core::ErrorKind;

/// The result type of the server.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A bearer token that is unknown, malformed or revoked.
    InvalidToken,
    /// A valid token without the scope the operation needs.
    InsufficientScope(crate::tokens::Scope),
}

/// Everything that can go wrong in the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A SCIM protocol error, answered as is.
    #[error(transparent)]
    Scim(#[from] scim_core::Error),
    /// Authentication or authorisation failed (401 / 403).
    #[error("authentication failed: {failure:?}")]
    Auth {
        /// What was wrong.
        failure: AuthFailure,
        /// The realm for the `WWW-Authenticate` challenge.
        realm: String,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// A connection could not be opened.
    #[error("database connection error: {0}")]
    Connection(String),
    /// No pooled connection became free in time.
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A setting is invalid.
    #[error("configuration error: {0}")]
    Config(String),
    /// File or socket I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data is not what the code expects (a bug or a damaged database).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The SCIM error the client sees. Internal causes are not disclosed.
    pub fn to_scim(&self) -> scim_core::Error {
        use scim_core::Error as E;
        match self {
            Error::Scim(e) => e.clone(),
            Error::Auth {
                failure: AuthFailure::Missing,
                ..
            } => E::new(
                ErrorKind::Unauthorized,
                "authentication required: send 'Authorization: Bearer <token>'",
            ),
            Error::Auth {
                failure: AuthFailure::InvalidToken,
                ..
            } => E::new(ErrorKind::Unauthorized, "the bearer token is not valid"),
            Error::Auth {
                failure: AuthFailure::InsufficientScope(scope),
                ..
            } => E::new(
                ErrorKind::Forbidden,
                format!("the token does not have the '{scope}' scope"),
            ),
            Error::Pool(_) | Error::Connection(_) => E::new(
                ErrorKind::Unavailable,
                "the database is not available; retry later",
            ),
            _ => E::internal("internal server error"),
        }
    }

    /// The kind of SCIM error the client sees.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Scim(e) => e.kind(),
            other => other.to_scim().kind(),
        }
    }

    /// Whether this error hides a cause that must be logged (it answers 5xx).
    pub fn is_internal(&self) -> bool {
        !matches!(self, Error::Scim(_) | Error::Auth { .. })
    }

    /// Shorthand for an internal error with a cause for the log.
    pub fn internal(cause: impl Into<String>) -> Self {
        Error::Internal(cause.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_disclosed() {
        let e = Error::Database(diesel::result::Error::NotFound);
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(e.to_scim().detail(), "internal server error");
        assert!(e.is_internal());
        let e = Error::from(scim_core::Error::not_found("no such user"));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(!e.is_internal());
        assert_eq!(
            Error::Auth {
                failure: AuthFailure::InsufficientScope(crate::tokens::Scope::Write),
                realm: "scim".into()
            }
            .kind(),
            ErrorKind::Forbidden
        );
    }
}
