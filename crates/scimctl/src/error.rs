//! What can go wrong, and the exit code each failure gives.

use scim_client::ClientError;

/// A failure of a command, shown to the user as one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line asks for something that cannot be done as asked
    /// (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// An input file or standard input cannot be read as what it claims to
    /// be (exit code 2).
    #[error("{0}")]
    Input(String),
    /// The service provider refused a request, or could not be reached
    /// (exit code 1).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A command did not do what it was asked (a resource to delete was
    /// not there, some records of an import failed) (exit code 1).
    #[error("{0}")]
    Failed(String),
    /// Reading or writing a local file or stream failed (exit code 1).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The process exit code for this failure: 2 for usage and input
    /// errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Input(_) => 2,
            Error::Client(_) | Error::Failed(_) | Error::Io(_) => 1,
        }
    }
}

/// The result of a command.
pub type Result<T, E = Error> = std::result::Result<T, E>;
