//! `stride store export|verify` and bad command-line input.

use crate::support::{Server, app, client, run_stride};

#[tokio::test]
async fn export_prints_the_log_as_json_lines_from_a_seq() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let http = client();
    for i in 0..3 {
        let response = http
            .post(server.url("/v2/apps"))
            .json(&app(&format!("/e{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    server.kill();
    let data_dir = dir.path().to_str().unwrap();
    let (ok, stdout, stderr) =
        run_stride(&["store", "export", "--data-dir", data_dir, "--from", "3"]);
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6]);
    assert_eq!(lines[0]["type"], "AppCreated");
    assert_eq!(lines[0]["app"], "/e1");
    let (ok, stdout, _) = run_stride(&["store", "verify", "--data-dir", data_dir]);
    assert!(ok && stdout.contains("6 records, head 6"), "{stdout}");
}

#[test]
fn bad_flags_and_missing_stores_are_named() {
    let missing = tempfile::tempdir().unwrap();
    let path = missing.path().join("nothing-here");
    let (ok, _, stderr) = run_stride(&["store", "verify", "--data-dir", path.to_str().unwrap()]);
    assert!(
        !ok && stderr.contains("--data-dir") && stderr.contains("no Stride store"),
        "{stderr}"
    );
    assert!(!path.exists(), "verify must not create a store");
    let (ok, _, stderr) = run_stride(&["serve", "--listen", "not-an-address"]);
    assert!(!ok && stderr.contains("--listen"), "{stderr}");
    let (ok, _, stderr) = run_stride(&["serve", "--snapshot-every", "0"]);
    assert!(!ok && stderr.contains("--snapshot-every"), "{stderr}");
    let (ok, _, stderr) = run_stride(&["serve", "--no-mesos", "--master", "http://127.0.0.1:5050"]);
    assert!(
        !ok && stderr.contains("--no-mesos") && stderr.contains("--master"),
        "{stderr}"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let (ok, _, stderr) = run_stride(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        file.path().to_str().unwrap(),
    ]);
    assert!(
        !ok && stderr.contains(file.path().to_str().unwrap()),
        "{stderr}"
    );
}
