//! `stride auth`: the auth file's principals. Secrets are shown once, on
//! stdout alone (`TOKEN=$(stride auth token create ...)`); the file keeps
//! only hashes. A running Stride loads the change on SIGHUP.

use anyhow::{Context, bail};
use std::io::BufRead;
use std::path::PathBuf;
use stride_auth::{AuthFile, edit};

#[derive(clap::Subcommand)]
pub enum AuthCommand {
    /// Write a starting file: roles `admin` and `viewer`, no principals.
    Init(FileArg),
    /// Bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Basic users (for Marathon clients).
    #[command(subcommand)]
    User(UserCommand),
    /// Remove a token or a user.
    Revoke(Named),
    /// Each principal with its roles (never a secret).
    List(FileArg),
    /// Check the file as `stride serve` would load it.
    Check(FileArg),
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it once.
    Create(Create),
    /// Give a token a new secret and print it once; the old one stops
    /// working when Stride reloads the file.
    Rotate(Named),
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Add a user, or replace one's password and roles; the password is
    /// read from the first line of stdin.
    Set(Create),
}

#[derive(clap::Args)]
pub struct FileArg {
    /// The auth file.
    #[arg(long, env = "STRIDE_AUTH_FILE", default_value = "stride-auth.toml")]
    auth_file: PathBuf,
}

#[derive(clap::Args)]
pub struct Named {
    #[arg(long)]
    name: String,
    #[command(flatten)]
    file: FileArg,
}

#[derive(clap::Args)]
pub struct Create {
    #[arg(long)]
    name: String,
    /// A role defined in the file's [roles]; repeat for more.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    #[command(flatten)]
    file: FileArg,
}

pub fn run(command: AuthCommand) -> anyhow::Result<()> {
    match command {
        AuthCommand::Init(FileArg { auth_file }) => {
            edit::init(&auth_file)?;
            eprintln!("wrote {}", auth_file.display());
        }
        AuthCommand::Token(TokenCommand::Create(args)) => {
            let token = edit::create_token(&args.file.auth_file, &args.name, &args.roles)?;
            shown_once(&args.name, &args.file.auth_file, token.secret());
        }
        AuthCommand::Token(TokenCommand::Rotate(args)) => {
            let token = edit::rotate_token(&args.file.auth_file, &args.name)?;
            shown_once(&args.name, &args.file.auth_file, token.secret());
        }
        AuthCommand::User(UserCommand::Set(args)) => {
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                bail!(
                    "no password on stdin: pipe one line, e.g. `printf '%s\\n' \"$PW\" | stride auth user set ...`"
                );
            }
            edit::set_user(&args.file.auth_file, &args.name, &args.roles, password)?;
            eprintln!(
                "user {} set in {}",
                args.name,
                args.file.auth_file.display()
            );
        }
        AuthCommand::Revoke(args) => {
            edit::revoke(&args.file.auth_file, &args.name)?;
            eprintln!(
                "{} revoked in {}; send SIGHUP to a running stride to load it",
                args.name,
                args.file.auth_file.display()
            );
        }
        AuthCommand::List(FileArg { auth_file }) => {
            let file = AuthFile::load(&auth_file)?;
            let anonymous = if file.anonymous.is_some() {
                "allowed"
            } else {
                "refused"
            };
            println!("anonymous\t{anonymous}");
            for (entry, _) in &file.tokens {
                println!("token {}\t{}", entry.name, entry.roles.join(","));
            }
            for (entry, _) in &file.users {
                println!("user {}\t{}", entry.name, entry.roles.join(","));
            }
        }
        AuthCommand::Check(FileArg { auth_file }) => {
            let file = AuthFile::load(&auth_file)?;
            println!(
                "{}: {} roles, {} tokens, {} users",
                auth_file.display(),
                file.roles.len(),
                file.tokens.len(),
                file.users.len()
            );
        }
    }
    Ok(())
}

fn shown_once(name: &str, file: &std::path::Path, secret: &str) {
    println!("{secret}");
    eprintln!(
        "token {name} written to {} (its hash only): the secret above is shown once; \
         send SIGHUP to a running stride to load it",
        file.display()
    );
}
