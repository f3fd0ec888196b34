//! Damaged storage is detected and refused, never served short: sled's
//! recovery stops at the first bad message as if it were a torn tail, so
//! Stride checks the log against its own watermark and record checksums.
//! Backups taken while serving restore the same history.

use crate::support;

use crate::support::{Server, app, client, metric, run_stride, wait_until};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The log as `stride store export` prints it, one JSON line per event.
fn export(dir: &Path) -> Vec<String> {
    let (ok, stdout, stderr) = run_stride(&["store", "export", "--data-dir", path_str(dir)]);
    assert!(ok, "export: {stderr}");
    stdout.lines().map(str::to_owned).collect()
}

fn verify(dir: &Path) -> (bool, String) {
    let (ok, stdout, stderr) = run_stride(&["store", "verify", "--data-dir", path_str(dir)]);
    (ok, format!("{stdout}{stderr}"))
}

/// Runs `stride serve` on `dir` and expects it to exit, refusing; returns
/// its stderr. Panics if it starts listening instead.
fn serve_refuses(dir: &Path) -> String {
    let mut child = Command::new(support::BIN)
        .args([
            "serve",
            "--no-mesos",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .env("STRIDE_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(!status.success(), "serve exited 0: {stdout}");
            assert!(!stdout.contains("listening"), "serve served: {stdout}");
            return String::from_utf8_lossy(&output.stderr).into_owned();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    panic!(
        "serve did not refuse {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout)
    );
}

/// Stops a server cleanly (SIGTERM), as an operator would.
fn stop(server: &mut Server) {
    let pid = nix::unistd::Pid::from_raw(server.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if server.child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
}

/// Creates `count` apps from `first` on: every fifth with a definition too
/// large for one sled value, every third with an Idempotency-Key.
async fn create_apps(server: &Server, first: usize, count: usize) {
    let http = client();
    for i in first..first + count {
        let mut definition = app(&format!("/damage/a{i}"));
        if i % 5 == 0 {
            definition["env"] = (0..8)
                .map(|v| (format!("VAR_{v}"), marker(i).repeat(150).into()))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        let mut request = http.post(server.url("/v2/apps")).json(&definition);
        if i % 3 == 0 {
            request = request.header("Idempotency-Key", format!("create-{i}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }
}

#[tokio::test]
async fn a_flipped_byte_in_the_log_is_refused_naming_the_lost_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    create_apps(&server, 0, 100).await;
    stop(&mut server);
    let db = dir.path().join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    let middle = written_len(&bytes) * 9 / 20;
    bytes[middle] ^= 0xff;
    std::fs::write(&db, bytes).unwrap();

    let (ok, out) = verify(dir.path());
    assert!(!ok, "verify must fail: {out}");
    assert!(
        out.contains("missing") && out.contains("..=200") && out.contains("watermark"),
        "verify must name the lost seqs: {out}"
    );
    let refusal = serve_refuses(dir.path());
    assert!(
        refusal.contains("..=200") && refusal.contains("stride store restore"),
        "serve must name the lost seqs and how to restore: {refusal}"
    );
}

/// How much of sled's db file holds data (sled pads its segments).
fn written_len(db: &[u8]) -> usize {
    db.iter().rposition(|b| *b != 0).map_or(0, |last| last + 1)
}

fn damage(path: &Path, how: &str, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    match how {
        "flip" => bytes[at] ^= 0x5a,
        "zero page" => {
            let start = at / 4096 * 4096;
            let end = (start + 4096).min(bytes.len());
            bytes[start..end].fill(0);
        }
        "truncate" => bytes.truncate(at),
        "flip every copy of app" => {
            let copy = marker(at).repeat(8).into_bytes();
            let starts: Vec<usize> = bytes
                .windows(copy.len())
                .enumerate()
                .filter(|(_, window)| *window == copy.as_slice())
                .map(|(start, _)| start)
                .collect();
            assert!(
                !starts.is_empty(),
                "app {at}'s definition is not in {path:?}"
            );
            for start in starts {
                bytes[start + 3] ^= 0x5a;
            }
        }
        _ => unreachable!(),
    }
    std::fs::write(path, bytes).unwrap();
}

/// Ten bytes that only the large definition of app `i` holds.
fn marker(i: usize) -> String {
    format!("<{i:03}-pad->")
}

/// `count` offsets spread over `0..len`, and the last byte.
fn offsets(len: usize, count: usize) -> Vec<usize> {
    let mut at: Vec<usize> = (0..count)
        .map(|i| i * len / count + len / (2 * count))
        .collect();
    at.push(len.saturating_sub(1));
    at.dedup();
    at.into_iter().filter(|&a| a < len).collect()
}

/// The damages to try on one store file: flips and zeroed pages spread
/// over what it holds, and cuts; more on sled's log, which is most of it.
fn damages(name: &str, bytes: &[u8]) -> Vec<(&'static str, usize)> {
    let held = if name == "db" {
        written_len(bytes)
    } else {
        bytes.len()
    };
    let (flips, pages, cuts) = match name {
        "db" => (10, 4, 4),
        "watermark" => (0, 1, 2),
        _ => (2, 1, 1),
    };
    let mut damages: Vec<_> = offsets(held, flips)
        .into_iter()
        .map(|at| ("flip", at))
        .collect();
    if name == "watermark" {
        // Each slot's mark, and a slot's padding (which nothing reads).
        damages.extend([20, 300, 512 + 20].map(|at| ("flip", at)));
    }
    if name == "db" {
        // Spread offsets may all land on dead bytes (sled rewrites a node
        // whole and leaves the old copy), so some records are damaged in
        // every copy sled holds: those must always be refused.
        damages.extend([0, 50, 95].map(|app| ("flip every copy of app", app)));
    }
    damages.extend(
        offsets(held, pages)
            .into_iter()
            .take(pages)
            .map(|at| ("zero page", at)),
    );
    damages.push(("truncate", 0));
    damages.extend(
        offsets(held, cuts)
            .into_iter()
            .skip(1)
            .map(|at| ("truncate", at)),
    );
    damages
}

#[tokio::test]
async fn every_damage_to_every_file_is_detected_or_harmless_and_a_backup_restores() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut server = Server::start(&store, &["--snapshot-every", "25"]);
    create_apps(&server, 0, 60).await;
    let backup = dir.path().join("backup");
    let (ok, stdout, stderr) = run_stride(&[
        "store",
        "backup",
        "--data-dir",
        path_str(&store),
        "--to",
        path_str(&backup),
    ]);
    assert!(ok, "live backup: {stdout}{stderr}");
    create_apps(&server, 60, 40).await;
    stop(&mut server);
    let (ok, out) = verify(&store);
    assert!(ok, "{out}");
    let pristine = export(&store);
    let backed_up = &pristine[..120];

    // sled's files, the watermark, and Stride's snapshot files.
    let mut files: Vec<PathBuf> = [store.clone(), store.join("snapshots")]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.strip_prefix(&store)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in ["conf", "db", "watermark"] {
        assert!(names.contains(&expected.to_owned()), "{names:?}");
    }
    // sled's page-table snapshot, and Stride's snapshots of the state.
    assert!(names.iter().any(|n| n.starts_with("snap.")), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("snapshots/snap-")),
        "{names:?}"
    );
    let mut outcomes = Vec::new();
    for (file, name) in files.iter().zip(&names) {
        let bytes = std::fs::read(file).unwrap();
        for (how, at) in damages(name, &bytes) {
            let case = format!("{name}: {how} at {at} of {}", bytes.len());
            let copy = dir.path().join(format!("case-{}", outcomes.len()));
            copy_dir(&store, &copy);
            damage(&copy.join(name), how, at);
            let (ok, out) = verify(&copy);
            let outcome = if out.contains("problem:") || out.contains("cannot open the store's db")
            {
                let refusal = serve_refuses(&copy);
                // An unreadable index is rebuilt from the log instead.
                assert!(
                    refusal.contains("stride store restore")
                        || refusal.contains("stride store repair"),
                    "{case}: serve must say how to recover: {refusal}"
                );
                "lost"
            } else {
                // Verify found nothing lost: the log must be exactly the
                // one written (a damaged cache is rebuilt, not served).
                assert_eq!(
                    export(&copy),
                    pristine,
                    "{case}: verify said nothing was lost ({out}), yet the log differs"
                );
                assert!(ok || out.contains("cache: "), "{case}: {out}");
                if ok { "harmless" } else { "cache" }
            };
            let (ok, stdout, stderr) = run_stride(&[
                "store",
                "restore",
                "--data-dir",
                path_str(&copy),
                "--from",
                path_str(&backup),
            ]);
            assert!(ok, "{case}: restore: {stdout}{stderr}");
            assert_eq!(
                export(&copy),
                backed_up,
                "{case}: the restored log is not the backup's"
            );
            std::fs::remove_dir_all(&copy).unwrap();
            outcomes.push((case, outcome));
        }
    }
    for (case, outcome) in &outcomes {
        println!("{outcome:>8}  {case}");
    }
    let lost = |prefix: &str| {
        outcomes
            .iter()
            .filter(|(case, outcome)| case.starts_with(prefix) && *outcome == "lost")
            .count()
    };
    // Flips in sled's log land on live and on dead bytes alike; cuts and
    // a damaged watermark must show.
    assert!(
        lost("db: flip every copy") == 3 && lost("db: truncate") >= 3,
        "{outcomes:?}"
    );
    assert!(
        lost("watermark: zero page") + lost("watermark: truncate") >= 2,
        "{outcomes:?}"
    );
    // A snapshot is a cache: damage to one costs a replay, never history.
    assert!(
        lost("snapshots/") == 0
            && outcomes
                .iter()
                .any(|(case, outcome)| { case.starts_with("snapshots/") && *outcome == "cache" }),
        "{outcomes:?}"
    );
}

/// A snapshot file is a cache: one with a flipped byte is dropped on
/// start and the state rebuilt from an older one and the log, exactly.
#[tokio::test]
async fn a_damaged_snapshot_file_is_dropped_and_the_state_rebuilt_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--snapshot-every", "20"]);
    create_apps(&server, 0, 40).await;
    let snapshots = dir.path().join("snapshots");
    let files = || -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&snapshots)
            .map(|listing| listing.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        files
    };
    wait_until("two snapshot files", Duration::from_secs(30), || async {
        files().len() == 2
    })
    .await;
    let http = client();
    let before = get_json(&http, server.url("/v2/apps")).await;
    stop(&mut server);
    let newest = files().pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&newest, bytes).unwrap();

    let (ok, out) = verify(dir.path());
    assert!(
        !ok && out.contains("cache: ") && out.contains("checksum"),
        "{out}"
    );
    let server = Server::start(dir.path(), &[]);
    assert_eq!(get_json(&http, server.url("/v2/apps")).await, before);
    assert!(!newest.exists(), "the damaged snapshot was kept");
}

async fn get_json(http: &reqwest::Client, url: String) -> Value {
    let response = http.get(&url).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Audit answers up to `head`: several filters, both orders, all pages.
async fn audit_answers(http: &reqwest::Client, server: &Server, head: u64) -> Vec<Value> {
    let mut answers = Vec::new();
    for filter in [
        "app=/live/",
        "app=/live/a3",
        "type=AppScaled",
        "type=AppDeleted&order=desc",
        "actor=api:anonymous",
        "since=5&limit=7",
    ] {
        let mut url = server.url(&format!("/v1/audit?{filter}&until={head}"));
        loop {
            let page = get_json(http, url.clone()).await;
            answers.push(page["events"].clone());
            match page["next"].as_str() {
                Some(cursor) => {
                    url = server.url(&format!("/v1/audit?{filter}&until={head}&cursor={cursor}"))
                }
                None => break,
            }
        }
    }
    answers
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_the_same_state_and_audit_answers() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let server = Server::start(&store, &["--snapshot-every", "30"]);
    let http = client();
    // Writers keep going while the backup is taken.
    let writers = {
        let url = server.url("");
        tokio::spawn(async move {
            let http = client();
            for i in 0..60 {
                let created = http
                    .post(format!("{url}/v2/apps"))
                    .header("Idempotency-Key", format!("live-{i}"))
                    .json(&app(&format!("/live/a{i}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(created.status(), 201);
                let change = if i % 4 == 0 {
                    http.delete(format!("{url}/v2/apps/live/a{i}"))
                } else {
                    http.put(format!("{url}/v2/apps/live/a{i}"))
                        .json(&serde_json::json!({"instances": 2}))
                };
                // No Mesos here: deployments never finish, so force.
                let change = change.query(&[("force", "true")]);
                assert!(change.send().await.unwrap().status().is_success());
            }
        })
    };
    // The backup starts with writes under way.
    wait_until("the first writes", Duration::from_secs(30), || async {
        metric(&server, "stride_log_head_seq").await >= 10.0
    })
    .await;
    let backup = dir.path().join("backup");
    let args = [
        "store",
        "backup",
        "--data-dir",
        path_str(&store),
        "--to",
        path_str(&backup),
    ]
    .map(str::to_owned);
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        run_stride(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    assert!(ok, "{stdout}{stderr}");
    writers.await.unwrap();
    let head: u64 = stdout
        .split("seqs 1..=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no head in {stdout}"));
    assert!(head >= 10, "{stdout}");
    let original_state = get_json(&http, server.url(&format!("/v1/state?at={head}"))).await;
    let original_audit = audit_answers(&http, &server, head).await;
    let original_events = get_json(
        &http,
        server.url(&format!("/v1/events?from=1&limit={head}")),
    )
    .await;

    let restored_dir = dir.path().join("restored");
    let (ok, stdout, stderr) = run_stride(&[
        "store",
        "restore",
        "--data-dir",
        path_str(&restored_dir),
        "--from",
        path_str(&backup),
    ]);
    assert!(ok, "{stdout}{stderr}");
    let restored = Server::start(&restored_dir, &[]);
    let state = get_json(&http, restored.url("/v1/state")).await;
    assert_eq!(state["seq"].as_u64(), Some(head));
    assert_eq!(
        state, original_state,
        "replaying the restored log gives another state"
    );
    assert_eq!(audit_answers(&http, &restored, head).await, original_audit);
    let events = get_json(
        &http,
        restored.url(&format!("/v1/events?from=1&limit={head}")),
    )
    .await;
    assert_eq!(events["events"], original_events["events"]);
    // Idempotency records came along: a retry within the backup replays.
    let retry = http
        .post(restored.url("/v2/apps"))
        .header("Idempotency-Key", "live-0")
        .json(&app("/live/a0"))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 201);
    let after = get_json(&http, restored.url("/v1/state")).await;
    assert_eq!(after["seq"].as_u64(), Some(head), "a retry appended");
}

#[tokio::test]
async fn repair_gives_up_lost_history_only_when_told_and_trusts_an_intact_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    create_apps(&server, 0, 50).await;
    stop(&mut server);
    let pristine = export(dir.path());
    let data_dir = path_str(dir.path());

    // The log loses its tail: repair keeps the intact prefix when told.
    let db = dir.path().join("db");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..written_len(&bytes) * 3 / 4]).unwrap();
    let (ok, out) = verify(dir.path());
    assert!(!ok && out.contains("missing"), "{out}");
    let (ok, stdout, stderr) = run_stride(&["store", "repair", "--data-dir", data_dir]);
    assert!(!ok && stderr.contains("--accept-loss"), "{stdout}{stderr}");
    let (ok, stdout, stderr) =
        run_stride(&["store", "repair", "--data-dir", data_dir, "--accept-loss"]);
    assert!(ok, "{stdout}{stderr}");
    let kept = export(dir.path());
    assert!(
        !kept.is_empty() && kept.len() < pristine.len(),
        "{}",
        kept.len()
    );
    assert_eq!(kept[..], pristine[..kept.len()]);
    assert!(verify(dir.path()).0);

    // The watermark is gone: nothing shows lost, but it cannot be told.
    std::fs::remove_file(dir.path().join("watermark")).unwrap();
    let refusal = serve_refuses(dir.path());
    assert!(refusal.contains("watermark file is missing"), "{refusal}");
    let (ok, stdout, stderr) = run_stride(&["store", "repair", "--data-dir", data_dir]);
    assert!(!ok && stderr.contains("--accept-loss"), "{stdout}{stderr}");
    let (ok, stdout, stderr) =
        run_stride(&["store", "repair", "--data-dir", data_dir, "--accept-loss"]);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(export(dir.path()), kept);
    assert!(verify(dir.path()).0);
    let replaced = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("replaced-")
        })
        .count();
    assert_eq!(replaced, 2, "each repair keeps the store it replaced");
    let server = Server::start(dir.path(), &[]);
    let state = get_json(&client(), server.url("/v1/state")).await;
    assert_eq!(state["seq"].as_u64(), Some(kept.len() as u64));
}
