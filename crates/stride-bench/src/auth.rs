//! What authorization costs, on against off in the same run, against two
//! `stride serve --no-mesos` children: one without an auth file, two with
//! a file of `--tokens` tokens (checked against each on every request) and
//! a Basic user. (a) The write path: forced scales of apps under `/bench/`
//! by bearer token, by Basic user (argon2 once, then remembered), and with
//! no credentials on the open server. (b) Stream fan-out: `--subscribers`
//! websockets while writers alternate apps in `/bench/` and `/other/`;
//! scoped by their token's stream grant on one server, by `app=/bench/` on
//! the other, so both deliver the same events. Rounds alternate, so drift
//! on a shared machine falls on both.

use super::metrics::{Sample, http_writes, median};
use super::percentiles;
use super::serve::ServeChild;
use super::stream::latency;
use anyhow::{Context, bail};
use futures::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[derive(clap::Args)]
pub struct AuthBench {
    /// Scratch directory, wiped first.
    #[arg(long, default_value = "target/bench-auth")]
    dir: PathBuf,
    /// Concurrent HTTP writers on the write path.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    writers: Vec<usize>,
    /// Tokens in the auth file besides the bench's own.
    #[arg(long, default_value_t = 100)]
    tokens: usize,
    /// Websocket subscribers in the fan-out runs.
    #[arg(long, default_value_t = 200)]
    subscribers: usize,
    /// Writes per second during the fan-out runs.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Rounds of on and off, alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Tokens in the file for the in-process lookup table, against 1.
    #[arg(long, default_value_t = 10_000)]
    lookup_tokens: usize,
    /// Print the in-process lookup table only (no servers).
    #[arg(long)]
    lookup_only: bool,
}

const PASSWORD: &str = "bench-password";

pub fn run(args: AuthBench) -> anyhow::Result<()> {
    println!("## stride bench auth\n");
    super::token_lookup::run(args.lookup_tokens, args.rounds.max(5))?;
    if args.lookup_only {
        return Ok(());
    }
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)
            .with_context(|| format!("--dir {}: cannot clear it", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("--dir {}: cannot create it", args.dir.display()))?;
    let (file, token, admin) = auth_file(&args.dir, args.tokens)?;
    let exe = std::env::current_exe()?;
    let off = ServeChild::start_with(&exe, &args.dir.join("serve-off"), &[])?;
    // One secured server per kind of credentials, so that every server
    // takes as many writes as the open one (a longer log is no handicap).
    let secured = ["--auth-file", file.to_str().context("a UTF-8 path")?];
    let on = ServeChild::start_with(&exe, &args.dir.join("serve-on"), &secured)?;
    let on_basic = ServeChild::start_with(&exe, &args.dir.join("serve-on-basic"), &secured)?;
    let bearer = client(Some(format!("Bearer {token}")))?;
    let admin = client(Some(format!("Bearer {admin}")))?;
    let basic = basic_client()?;
    let open = client(None)?;
    let runtime = tokio::runtime::Runtime::new()?;

    println!(
        "medians of {} alternating rounds of {} s each; the auth file holds {} tokens and a Basic user\n",
        args.rounds,
        args.seconds,
        args.tokens + 1
    );
    println!("| workload | auth | requests or events/s | p50 | p99 | rate on/off |");
    println!("|---|---|---|---|---|---|");
    for &writers in &args.writers {
        let (mut off_samples, mut token_samples, mut basic_samples) = (vec![], vec![], vec![]);
        for _ in 0..args.rounds {
            off_samples.push(runtime.block_on(http_writes(
                &open,
                &off.url,
                writers,
                args.seconds,
            ))?);
            token_samples.push(runtime.block_on(http_writes(
                &bearer,
                &on.url,
                writers,
                args.seconds,
            ))?);
            basic_samples.push(runtime.block_on(http_writes(
                &basic,
                &on_basic.url,
                writers,
                args.seconds,
            ))?);
        }
        let workload = format!("PUT /v2/apps/bench/wN, {writers} clients");
        row(&workload, "off", &off_samples, None);
        row(
            &workload,
            "bearer token",
            &token_samples,
            Some(&off_samples),
        );
        row(&workload, "Basic user", &basic_samples, Some(&off_samples));
    }
    let (mut off_samples, mut on_samples) = (vec![], vec![]);
    for _ in 0..args.rounds {
        off_samples.push(runtime.block_on(fan_out(&open, &off.url, None, &args))?);
        on_samples.push(runtime.block_on(fan_out(&admin, &on.url, Some(&token), &args))?);
    }
    let workload = format!(
        "/v1/stream, {} subscribers, {} writes/s (half delivered), latency",
        args.subscribers, args.rate
    );
    row(&workload, "off (app=/bench/)", &off_samples, None);
    row(
        &workload,
        "on (token's scope)",
        &on_samples,
        Some(&off_samples),
    );
    Ok(())
}

fn row(workload: &str, auth: &str, samples: &[Sample], baseline: Option<&[Sample]>) {
    let sample = median(samples);
    let ratio = baseline.map_or_else(String::new, |b| {
        format!("{:.3}", sample.rate / median(b).rate)
    });
    println!(
        "| {workload} | {auth} | {:.0} | {:.3} ms | {:.3} ms | {ratio} |",
        sample.rate, sample.p50, sample.p99
    );
}

/// An auth file with `others` tokens, the bench's token (write and stream
/// under `/bench/`), a Basic user `bench` with the same role, and an admin
/// token for the fan-out's writers (they write `/other/` too).
fn auth_file(dir: &Path, others: usize) -> anyhow::Result<(PathBuf, String, String)> {
    use stride_auth::edit;
    let path = dir.join("auth.toml");
    std::fs::write(
        &path,
        "[roles.bench]\ngrants = [{ prefix = \"/bench/\", verbs = [\"read\", \"write\", \"stream\"] }]\n\
         [roles.admin]\ngrants = [{ prefix = \"/\", verbs = [\"read\", \"write\"] }]\n",
    )?;
    let bench = ["bench".to_owned()];
    for i in 0..others {
        edit::create_token(&path, &format!("other{i}"), &bench)?;
    }
    let token = edit::create_token(&path, "bench-token", &bench)?;
    let admin = edit::create_token(&path, "bench-admin", &["admin".to_owned()])?;
    edit::set_user(&path, "bench", &bench, PASSWORD)?;
    Ok((path, token.secret().to_owned(), admin.secret().to_owned()))
}

fn client(authorization: Option<String>) -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&value)?);
    }
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .build()?)
}

/// Basic credentials on every request, as Marathon clients send them.
fn basic_client() -> anyhow::Result<reqwest::Client> {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("bench:{PASSWORD}"));
    client(Some(format!("Basic {encoded}")))
}

/// Subscribers follow the stream while writers alternate `/bench/` and
/// `/other/` at `--rate`: append-to-receipt latency of what is delivered,
/// and deliveries per second over all subscribers as the rate.
async fn fan_out(
    writer: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    args: &AuthBench,
) -> anyhow::Result<Sample> {
    let ws_url = format!("{}/v1/stream?from=now", url.replacen("http", "ws", 1));
    let ws_url = match token {
        Some(_) => ws_url,
        None => format!("{ws_url}&app=/bench/"),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..args.subscribers {
        let mut request = ws_url.as_str().into_client_request()?;
        if let Some(token) = token {
            request
                .headers_mut()
                .insert(AUTHORIZATION, format!("Bearer {token}").parse()?);
        }
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .context("a subscriber cannot connect (is the open-file limit high enough?)")?;
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let next = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
                match next {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        if text.contains("\"/other/") {
                            return Err(anyhow::anyhow!("delivered outside /bench/: {text}"));
                        }
                        if let Some(micros) = latency(&text) {
                            latencies.push(micros as f64 / 1e3);
                        }
                    }
                    Ok(Some(Ok(_))) | Err(_) => {}
                    Ok(None | Some(Err(_))) => break,
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let mut next = Instant::now();
    let mut i = 0u64;
    let mut writes = Vec::new();
    while Instant::now() < deadline {
        let group = if i % 2 == 0 { "bench" } else { "other" };
        let target = format!("{url}/v2/apps/{group}/f{}?force=true", i % 16);
        let body = serde_json::json!({"cmd": "sleep 1000", "instances": i % 3});
        let http = writer.clone();
        writes.push(tokio::spawn(async move {
            let answer = http.put(&target).json(&body).send().await?;
            anyhow::Ok(answer.status())
        }));
        i += 1;
        next += interval;
        tokio::time::sleep_until(next.into()).await;
    }
    for write in writes {
        let status = write.await??;
        if !status.is_success() {
            bail!("a fan-out write answered {status}");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for reader in readers {
        all.extend(reader.await??);
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    let (p50, p99) = percentiles(&mut all);
    Ok(Sample { rate, p50, p99 })
}
