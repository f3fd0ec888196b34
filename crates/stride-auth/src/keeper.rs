//! The authenticator in force, swapped whole when the file is reloaded
//! (SIGHUP): requests see the old one or the new one, never a mix, and a
//! file that fails to load leaves the old one in force.

use crate::{AuthFile, Authenticator, FileError, HttpCredentials};
use arc_swap::ArcSwap;
use std::path::PathBuf;
use std::sync::Arc;

pub struct Keeper {
    file: Option<PathBuf>,
    http: Option<HttpCredentials>,
    current: ArcSwap<Authenticator>,
}

impl Keeper {
    /// No file and no `--http-credentials`: open. Otherwise deny by
    /// default; a file that fails to load is an error (Stride refuses to
    /// start rather than start open).
    pub fn load(file: Option<PathBuf>, http: Option<HttpCredentials>) -> Result<Keeper, FileError> {
        let keeper = Keeper {
            file,
            http,
            current: ArcSwap::from_pointee(Authenticator::open()),
        };
        keeper.current.store(Arc::new(keeper.build()?));
        Ok(keeper)
    }

    fn build(&self) -> Result<Authenticator, FileError> {
        if self.file.is_none() && self.http.is_none() {
            return Ok(Authenticator::open());
        }
        let file = self.file.as_deref().map(AuthFile::load).transpose()?;
        Ok(Authenticator::new(file.as_ref(), self.http.as_ref()))
    }

    pub fn current(&self) -> Arc<Authenticator> {
        self.current.load_full()
    }

    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// Reads the file again. On error the authenticator in force stays.
    pub fn reload(&self) -> Result<Arc<Authenticator>, FileError> {
        let fresh = Arc::new(self.build()?);
        self.current.store(fresh.clone());
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Token;

    #[test]
    fn a_reload_that_fails_keeps_the_file_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.toml");
        let first = Token::generate();
        let second = Token::generate();
        let write = |token: &Token| {
            std::fs::write(
                &path,
                format!(
                    "[roles.r]\ngrants = [{{ prefix = \"/\", verbs = [\"read\"] }}]\n\
                     [[tokens]]\nname = \"t\"\nroles = [\"r\"]\nsha256 = \"{}\"\n",
                    token.hash().to_hex()
                ),
            )
            .unwrap()
        };
        let bearer = |token: &Token| format!("Bearer {}", token.secret());
        write(&first);
        let keeper = Keeper::load(Some(path.clone()), None).unwrap();
        assert!(keeper.current().authenticate(Some(&bearer(&first))).is_ok());

        write(&second);
        keeper.reload().unwrap();
        assert!(
            keeper
                .current()
                .authenticate(Some(&bearer(&first)))
                .is_err()
        );
        assert!(
            keeper
                .current()
                .authenticate(Some(&bearer(&second)))
                .is_ok()
        );

        std::fs::write(&path, "[roles.r]\ngrants = [{ prefix = \"/x\" }]\n").unwrap();
        let error = keeper.reload().unwrap_err();
        assert_eq!(error.line, Some(2), "{error}");
        assert!(
            keeper
                .current()
                .authenticate(Some(&bearer(&second)))
                .is_ok()
        );

        std::fs::remove_file(&path).unwrap();
        assert!(keeper.reload().unwrap_err().message.contains("cannot read"));
        assert!(
            keeper
                .current()
                .authenticate(Some(&bearer(&second)))
                .is_ok()
        );
    }

    #[test]
    fn no_file_is_open_and_a_missing_file_is_an_error() {
        assert!(Keeper::load(None, None).unwrap().current().is_open());
        let error = Keeper::load(Some("/nonexistent/auth.toml".into()), None)
            .err()
            .unwrap();
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent/auth.toml: cannot read"),
            "{error}"
        );
    }
}
