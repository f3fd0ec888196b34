//! `GET /v1/audit` and `stride audit` against the real binary: paging by
//! app, actor, type and time returns exactly the matching events, in order,
//! with stable cursors. STRIDE_TEST_AUDIT_APPS sets the size (default 40).

use crate::support;
use crate::support::{Server, all_events, app, client, run_stride};
use serde_json::Value;

async fn get(http: &reqwest::Client, server: &Server, query: &str) -> (u16, Value) {
    let response = http
        .get(server.url(&format!("/v1/audit?{query}")))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Every page of `query`, following cursors; returns the seqs.
async fn all_pages(http: &reqwest::Client, server: &Server, query: &str) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let with_cursor = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let (status, page) = get(http, server, &with_cursor).await;
        assert_eq!(status, 200, "{with_cursor}: {page}");
        seqs.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seqs,
        }
    }
}

fn expected(events: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<u64> {
    events
        .iter()
        .filter(|e| keep(e))
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

/// Apps under /prod/ and /dev/, each created then updated by alice or bob.
async fn populate(http: &reqwest::Client, server: &Server, apps: usize) {
    for i in 0..apps {
        let group = if i % 3 == 0 { "dev" } else { "prod" };
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        let id = format!("/{group}/app{}", i % 7);
        let mut body = app(&id);
        body["cmd"] = format!("sleep {i}").into();
        let response = http
            .put(server.url(&format!("/v2/apps{id}?force=true")))
            .basic_auth(user, Some("pw"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
}

#[tokio::test]
async fn paging_by_app_actor_type_and_time_returns_exactly_the_matches_in_order() {
    let apps = std::env::var("STRIDE_TEST_AUDIT_APPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let dir = tempfile::tempdir().unwrap();
    let (_auth, auth_file) = support::users_file(&["alice", "bob"], "observer");
    let server = Server::start(dir.path(), &["--auth-file", auth_file.to_str().unwrap()]);
    let http = client();
    populate(&http, &server, apps).await;
    let events = all_events(&http, &server).await;
    let app_is = |e: &Value, id: &str| e["app"].as_str() == Some(id);

    let cases: Vec<(&str, Vec<u64>)> = vec![
        (
            "app=/prod/app1&limit=3",
            expected(&events, |e| app_is(e, "/prod/app1")),
        ),
        (
            "app=/prod/&limit=7",
            expected(&events, |e| {
                e["app"].as_str().unwrap_or("").starts_with("/prod/")
            }),
        ),
        (
            "actor=api:alice&limit=5",
            expected(&events, |e| e["actor"]["principal"] == "alice"),
        ),
        (
            "type=AppUpdated&type=AppCreated&limit=4",
            expected(&events, |e| {
                e["type"] == "AppUpdated" || e["type"] == "AppCreated"
            }),
        ),
        (
            "app=/dev/app0&type=AppUpdated&actor=api:bob",
            expected(&events, |e| {
                app_is(e, "/dev/app0")
                    && e["type"] == "AppUpdated"
                    && e["actor"]["principal"] == "bob"
            }),
        ),
        (
            "app=/prod/&type=DeploymentFailed&limit=2",
            expected(&events, |e| {
                e["app"].as_str().unwrap_or("").starts_with("/prod/")
                    && e["type"] == "DeploymentFailed"
            }),
        ),
        ("limit=1000", expected(&events, |_| true)),
        ("task=nosuch.1", Vec::new()),
    ];
    for (query, want) in &cases {
        assert!(
            !want.is_empty() || query.starts_with("task"),
            "{query} tests nothing"
        );
        assert_eq!(&all_pages(&http, &server, query).await, want, "{query}");
        let mut reversed = want.clone();
        reversed.reverse();
        let desc = all_pages(&http, &server, &format!("{query}&order=desc")).await;
        assert_eq!(desc, reversed, "{query} desc");
    }

    // A time window and a seq window over the same events agree.
    let (from, to) = (events.len() / 4, events.len() * 3 / 4);
    let at = |i: usize| events[i]["at"].as_str().unwrap().replace('+', "%2B");
    let by_time = all_pages(
        &http,
        &server,
        &format!("since={}&until={}&limit=9", at(from), at(to)),
    )
    .await;
    // The events of one command share their time, so the window holds
    // every event at its ends' times.
    let (since, until) = (
        events[from]["at"].as_str().unwrap(),
        events[to]["at"].as_str().unwrap(),
    );
    let in_window = expected(&events, |e| {
        let at = e["at"].as_str().unwrap();
        since <= at && at <= until
    });
    assert_eq!(by_time, in_window);
    let first = events[from]["seq"].as_u64().unwrap();
    let last = events[to]["seq"].as_u64().unwrap();
    let by_seq = all_pages(
        &http,
        &server,
        &format!("since={first}&until={last}&app=/prod/&limit=5"),
    )
    .await;
    let want = expected(&events, |e| {
        let seq = e["seq"].as_u64().unwrap();
        (first..=last).contains(&seq) && e["app"].as_str().unwrap_or("").starts_with("/prod/")
    });
    assert_eq!(by_seq, want);
}

#[tokio::test]
async fn cursors_are_stable_while_the_log_grows() {
    let dir = tempfile::tempdir().unwrap();
    let (_auth, auth_file) = support::users_file(&["alice", "bob"], "observer");
    let server = Server::start(dir.path(), &["--auth-file", auth_file.to_str().unwrap()]);
    let http = client();
    populate(&http, &server, 12).await;
    let (_, first) = get(&http, &server, "app=/prod/&limit=3").await;
    let cursor = first["next"].as_str().unwrap().to_owned();
    let (_, second) = get(
        &http,
        &server,
        &format!("app=/prod/&limit=3&cursor={cursor}"),
    )
    .await;
    populate(&http, &server, 12).await;
    let (_, again) = get(
        &http,
        &server,
        &format!("app=/prod/&limit=3&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["events"], again["events"]);
    assert_eq!(second["next"], again["next"]);
}

#[tokio::test]
async fn bad_audit_queries_are_400s_that_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let (_auth, auth_file) = support::users_file(&["alice", "bob"], "observer");
    let server = Server::start(dir.path(), &["--auth-file", auth_file.to_str().unwrap()]);
    let http = client();
    populate(&http, &server, 3).await;
    let (_, page) = get(&http, &server, "limit=1").await;
    let asc_cursor = page["next"].as_str().unwrap().to_owned();
    for (query, needle) in [
        ("since=yesterday", "RFC 3339"),
        ("until=2026-13-01T00:00:00Z", "RFC 3339"),
        ("cursor=bogus", "cursor"),
        (&format!("cursor={asc_cursor}&order=desc"), "other order"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("order=up", "asc or desc"),
        ("type=Nope", "known types"),
        ("app=prod", "absolute"),
        ("actor=", "empty"),
        ("app=/a&app=/b", "twice"),
        ("colour=red", "unknown query parameter"),
    ] {
        let (status, body) = get(&http, &server, query).await;
        assert_eq!(status, 400, "{query}");
        assert!(
            body["message"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn the_audit_cli_prints_a_table_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let (_auth, auth_file) = support::users_file(&["alice", "bob"], "observer");
    let server = Server::start(dir.path(), &["--auth-file", auth_file.to_str().unwrap()]);
    let http = client();
    populate(&http, &server, 14).await;
    let events = all_events(&http, &server).await;
    let want = expected(&events, |e| e["app"] == "/prod/app1");
    let (ok, out, err) = run_stride(&[
        "audit",
        "--app",
        "/prod/app1",
        "--since",
        "2h",
        "--json",
        "--stride",
        &server.url,
    ]);
    assert!(ok, "{err}");
    let seqs: Vec<u64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, want);
    let (ok, out, err) = run_stride(&[
        "audit",
        "--app",
        "/prod/app1",
        "--type",
        "AppUpdated",
        "--stride",
        &server.url,
    ]);
    assert!(ok, "{err}");
    assert!(out.lines().next().unwrap().contains("SEQ"));
    assert!(out.contains("changed: cmd"), "{out}");
    let (ok, _, err) = run_stride(&["audit", "--since", "soon", "--stride", &server.url]);
    assert!(!ok);
    assert!(err.contains("since"), "{err}");
}
