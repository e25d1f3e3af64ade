//! Errors of the auth module's files and hash creation.

use std::{fmt, path::PathBuf};

/// A password or ACL file that could not be read or has a bad line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("{}line {line}: {message}", Where(path))]
    Syntax {
        /// The file, when read from one.
        path: Option<PathBuf>,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl FileError {
    pub(crate) fn syntax(line: usize, message: impl Into<String>) -> FileError {
        FileError::Syntax {
            path: None,
            line,
            message: message.into(),
        }
    }

    /// The same error, naming `path` as the file.
    pub(crate) fn in_file(self, path: PathBuf) -> FileError {
        match self {
            FileError::Syntax { line, message, .. } => FileError::Syntax {
                path: Some(path),
                line,
                message,
            },
            other => other,
        }
    }
}

struct Where<'a>(&'a Option<PathBuf>);

impl fmt::Display for Where<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "{}: ", p.display()),
            None => Ok(()),
        }
    }
}

/// A password hash could not be created.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot create the password hash: {0}")]
pub struct HashError(pub String);

/// Reads a whole text file.
pub(crate) fn read(path: &std::path::Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(|source| FileError::Io {
        path: path.to_owned(),
        source,
    })
}
