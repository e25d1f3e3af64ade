//! `passwd`: manages the broker's password file, as mosquitto_passwd does
//! mosquitto's (`mqtt_broker_core::auth::PasswordFile`).
//!
//! ```text
//! passwd -c passwords alice            # create the file; prompt for the password
//! passwd passwords bob --scram         # add or change bob, with a SCRAM-SHA-256 entry
//! passwd -b passwords carol s3cret     # batch mode: the password on the command line
//! echo s3cret | passwd passwords dave  # the password from standard input
//! passwd -D passwords bob              # delete bob
//! ```
//!
//! Entries are argon2id hashes by default; `--scram` writes a
//! SCRAM-SHA-256 entry, which serves both plain password logins and MQTT 5
//! SCRAM-SHA-256 enhanced authentication. The file is replaced atomically
//! (a temporary file renamed over it), with mode 0600.

use clap::Parser;
use mqtt_broker_core::auth::PasswordFile;
use std::{
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

/// Manage a password file for the broker (like mosquitto_passwd).
#[derive(Parser, Debug)]
#[command(name = "passwd", version)]
struct Cli {
    /// Create the file, replacing an existing one.
    #[arg(short = 'c', conflicts_with = "delete")]
    create: bool,
    /// Delete USER from the file.
    #[arg(short = 'D', long = "delete", conflicts_with_all = ["batch", "password", "scram"])]
    delete: bool,
    /// Batch mode: take the password from the command line (PASSWORD).
    /// It is then visible to other users in the process list.
    #[arg(short = 'b', conflicts_with = "password")]
    batch: bool,
    /// The password (also visible in the process list; prefer the prompt
    /// or standard input).
    #[arg(long)]
    password: Option<String>,
    /// Write a SCRAM-SHA-256 entry instead of argon2id.
    #[arg(long)]
    scram: bool,
    /// PBKDF2 iterations of a SCRAM-SHA-256 entry (at least 4096).
    #[arg(long, default_value_t = 4096, requires = "scram")]
    iterations: u32,
    /// The password file.
    file: PathBuf,
    /// The user name.
    user: String,
    /// The password, in batch mode (-b).
    #[arg(value_name = "PASSWORD")]
    batch_password: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("passwd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    check_user(&cli.user)?;
    if cli.batch != cli.batch_password.is_some() {
        return Err("PASSWORD is given with -b, and only then".into());
    }
    let existing = if cli.create {
        String::new()
    } else {
        std::fs::read_to_string(&cli.file)
            .map_err(|e| format!("{}: {e} (use -c to create the file)", cli.file.display()))?
    };
    let (mut lines, at) = without_user(&existing, &cli.user);
    if cli.delete {
        if at.is_none() {
            return Err(format!("user `{}` not found", cli.user));
        }
    } else {
        let password = password(cli)?;
        let hash = if cli.scram {
            PasswordFile::hash_scram(password.as_bytes(), cli.iterations)
        } else {
            PasswordFile::hash_argon2(password.as_bytes())
        }
        .map_err(|e| e.to_string())?;
        // A changed entry stays where it was; a new one goes last.
        lines.insert(at.unwrap_or(lines.len()), format!("{}:{hash}", cli.user));
    }
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    // Never write a file the broker would refuse.
    PasswordFile::parse(&text).map_err(|e| format!("{}: {e}", cli.file.display()))?;
    write_atomically(&cli.file, text.as_bytes()).map_err(|e| format!("{}: {e}", cli.file.display()))
}

/// A user name the file format can hold.
fn check_user(user: &str) -> Result<(), String> {
    if user.is_empty() {
        return Err("empty user name".into());
    }
    if user.contains([':', '\n', '\r']) {
        return Err("a user name cannot contain `:` or a line break".into());
    }
    if user.starts_with('#') || user.trim() != user {
        return Err("a user name cannot start with `#` or with or end in white space".into());
    }
    Ok(())
}

/// The file's lines without `user`'s entries, and where the first one was.
fn without_user(text: &str, user: &str) -> (Vec<String>, Option<usize>) {
    let mut lines = Vec::new();
    let mut at = None;
    for line in text.lines() {
        let t = line.trim();
        if !t.starts_with('#') && t.split_once(':').is_some_and(|(u, _)| u == user) {
            at = at.or(Some(lines.len()));
        } else {
            lines.push(line.to_owned());
        }
    }
    (lines, at)
}

/// The password: from -b, --password, a prompt on a terminal (twice), or
/// a line of standard input.
fn password(cli: &Cli) -> Result<String, String> {
    let password = if let Some(p) = cli.batch_password.as_ref().or(cli.password.as_ref()) {
        p.clone()
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Reenter password: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords do not match".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("standard input: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        return Err("empty password".into());
    }
    Ok(password)
}

/// Writes `contents` to a temporary file beside `path` (mode 0600), then
/// renames it over `path`.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    // The rename itself, on disk.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
