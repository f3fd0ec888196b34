//! `stride bench auth` (its first table, alone with `--lookup-only`): how
//! long checking a bearer token takes with 1 token in the auth file and
//! with `--lookup-tokens` of them, in process, the two alternating in the
//! same run. A lookup keyed by the token's hash costs the same whatever
//! the count; a scan of every token would grow with it.

use anyhow::Context;
use std::path::Path;
use std::time::{Duration, Instant};
use stride_auth::{AuthFile, Authenticator, Token};

/// How long each round checks one kind of token, at least.
const ROUND: Duration = Duration::from_millis(300);

/// An authenticator over a file of `count` tokens, and the header of one
/// of them (the last written).
fn authenticator(count: usize) -> anyhow::Result<(Authenticator, String)> {
    let mut text =
        String::from("[roles.bench]\ngrants = [{ prefix = \"/\", verbs = [\"read\"] }]\n");
    let mut last = None;
    for i in 0..count {
        let token = Token::generate();
        text.push_str(&format!(
            "[[tokens]]\nname = \"t{i}\"\nroles = [\"bench\"]\nsha256 = \"{}\"\n",
            token.hash().to_hex()
        ));
        last = Some(token);
    }
    let file =
        AuthFile::parse(Path::new("bench-auth.toml"), &text).context("the bench's auth file")?;
    let last = last.context("at least one token")?;
    Ok((
        Authenticator::new(Some(&file), None),
        format!("Bearer {}", last.secret()),
    ))
}

/// Nanoseconds per `authenticate` of `header`, over `ROUND` (and at least
/// 10 calls).
fn per_check(auth: &Authenticator, header: &str, known: bool) -> f64 {
    let started = Instant::now();
    let mut checks = 0u32;
    while checks < 10 || started.elapsed() < ROUND {
        let found = auth.authenticate(Some(header)).is_ok();
        assert_eq!(found, known, "the bench's token is (not) in the file");
        checks += 1;
    }
    started.elapsed().as_nanos() as f64 / f64::from(checks)
}

pub fn run(many: usize, rounds: usize) -> anyhow::Result<()> {
    let unknown = format!("Bearer {}", Token::generate().secret());
    let files = [authenticator(1)?, authenticator(many)?];
    let mut samples = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for _ in 0..rounds {
        for (i, (auth, known)) in files.iter().enumerate() {
            samples[i][0].push(per_check(auth, known, true));
            samples[i][1].push(per_check(auth, &unknown, false));
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mut medians = [[0.0; 2]; 2];
    for (i, kinds) in samples.iter_mut().enumerate() {
        for (k, values) in kinds.iter_mut().enumerate() {
            medians[i][k] = median(values);
        }
    }
    println!(
        "token checks in process, medians of {rounds} alternating rounds of {} ms each\n",
        ROUND.as_millis()
    );
    println!(
        "| tokens in the file | known token | unknown token | ratio to 1 token (known, unknown) |"
    );
    println!("|---|---|---|---|");
    for (count, [known, unknown]) in [1, many].into_iter().zip(medians) {
        println!(
            "| {count} | {known:.0} ns | {unknown:.0} ns | {:.2}, {:.2} |",
            known / medians[0][0],
            unknown / medians[0][1]
        );
    }
    println!();
    Ok(())
}
