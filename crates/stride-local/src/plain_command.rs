//! Shell commands that need no shell. `sh -c 'sleep 60'` under dash forks
//! and execs `sleep` as a second process, which costs as much again as the
//! task itself. When a command is one plain program with plain words (no
//! expansion, quoting, redirection, globbing or builtins), exec'ing it
//! directly is what the shell would end up running, so the task starts at
//! about twice the rate, as bash's own single-command exec does.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// dash's builtins and reserved words made only of word characters: these
/// mean something else (or nothing) outside a shell.
const SHELL_WORDS: &[&str] = &[
    ".", ":", "alias", "bg", "break", "case", "cd", "chdir", "command", "continue", "do", "done",
    "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "false", "fc", "fg", "fi",
    "for", "getopts", "hash", "if", "in", "jobs", "kill", "local", "printf", "pwd", "read",
    "readonly", "return", "set", "shift", "test", "then", "times", "trap", "true", "type",
    "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
];

/// dash's search path when `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The program and its words, when `script` would run exactly one program
/// with these arguments under `sh -c`. `path` is the `PATH` the shell would
/// search. `None` means: let the shell run it.
pub(crate) fn plain_command(script: &str, path: Option<&str>) -> Option<(PathBuf, Vec<String>)> {
    if !script.chars().all(|c| is_word_char(c) || c == ' ') {
        return None;
    }
    let words: Vec<String> = script
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    let program = words.first()?;
    // `NAME=value cmd` assigns; a builtin does what only a shell can.
    if program.contains('=') || SHELL_WORDS.contains(&program.as_str()) {
        return None;
    }
    let resolved = resolve(program, path.unwrap_or(DEFAULT_PATH))?;
    Some((resolved, words))
}

/// Characters that no shell treats specially inside a word.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '/' | ':' | ',' | '+' | '@' | '%' | '=')
}

/// The executable the shell would find, or `None` where its answer could
/// differ from ours (relative paths and relative `PATH` entries depend on
/// the task's working directory) or where it finds nothing (so its own
/// "not found" message and status 127 stay as they are).
fn resolve(program: &str, path: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let program = Path::new(program);
        return (program.is_absolute() && is_executable(program)).then(|| program.to_owned());
    }
    for dir in path.split(':') {
        if !dir.starts_with('/') {
            return None;
        }
        let candidate = Path::new(dir).join(program);
        if is_executable(&candidate) {
            return Some(candidate);
        }
    }
    None
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_program_with_plain_words_runs_directly() {
        let (program, words) = plain_command("sleep 60", Some("/usr/bin:/bin")).expect("plain");
        assert!(
            program.ends_with("sleep") && program.is_absolute(),
            "{program:?}"
        );
        assert_eq!(words, ["sleep", "60"]);
        let (_, words) =
            plain_command("  /bin/sleep  --  1.5 a=b x,y:z+w@v%u ", None).expect("plain");
        assert_eq!(words, ["/bin/sleep", "--", "1.5", "a=b", "x,y:z+w@v%u"]);
    }

    #[test]
    fn anything_a_shell_would_interpret_goes_to_the_shell() {
        for script in [
            "",
            "   ",
            "python3 -m http.server $PORT0",
            "sleep 1; true",
            "sleep 1 && true",
            "sleep 1 | cat",
            "sleep 100 &",
            "echo hi > out",
            "ls *",
            "ls ~",
            "sleep '1'",
            "sleep \"1\"",
            "sleep\t1",
            "sleep 1\nsleep 2",
            "sleep \\1",
            "ls #comment",
            "ls {a,b}",
            "ls [ab]",
            "ls a?",
            "FOO=1 sleep 1",
            "exit 1",
            "echo hi",
            "true",
            "false",
            "kill -9 1",
            "test -f x",
            ". ./script",
            "cd /tmp",
            "exec sleep 1",
            "if",
            "sleep 1 (x)",
        ] {
            assert_eq!(plain_command(script, None), None, "{script:?}");
        }
    }

    #[test]
    fn programs_the_shell_would_not_find_the_same_way_go_to_the_shell() {
        // Not on PATH: the shell's own "not found" and status 127.
        assert_eq!(plain_command("no-such-program-here 1", None), None);
        // Relative to the task's sandbox, which the shell resolves after cd.
        assert_eq!(plain_command("./run.sh", None), None);
        assert_eq!(plain_command("bin/sleep 1", None), None);
        // A relative PATH entry depends on the working directory.
        assert_eq!(plain_command("sleep 1", Some("relative:/bin")), None);
        // Not executable.
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let script = file.path().display().to_string();
        assert_eq!(plain_command(&script, None), None);
        // Found in a later PATH entry.
        let (program, _) = plain_command("sleep 1", Some("/nonexistent:/bin")).expect("found");
        assert_eq!(program, Path::new("/bin/sleep"));
    }
}
