//! An `Idempotency-Key` is bound to the request that first used it (a
//! digest of its method, path and body): the same request again replays
//! the first answer; any other request with that key is a 422 naming the
//! header, appends nothing, and is never a 500. Keys recorded by store
//! format 2, without a digest, still replay.

use crate::support::{Server, app, client};
use serde_json::Value;
use std::path::Path;

async fn head(http: &reqwest::Client, server: &Server) -> u64 {
    let page: Value = http
        .get(server.url("/v1/events?from=1&limit=10000"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["events"]
        .as_array()
        .unwrap()
        .last()
        .map_or(0, |e| e["seq"].as_u64().unwrap())
}

async fn assert_names_the_key(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 422, "{what}");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"),
        "{what}: {body}"
    );
    assert_eq!(
        body["details"][0]["path"], "Idempotency-Key",
        "{what}: {body}"
    );
}

#[tokio::test]
async fn a_key_reused_on_another_request_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let post = |id: &str, key: &str| {
        http.post(server.url("/v2/apps"))
            .header("Idempotency-Key", key)
            .json(&app(id))
            .send()
    };
    let first = post("/idem-a", "key-a").await.unwrap();
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    let after_first = head(&http, &server).await;

    // The same request again: the first answer, nothing appended.
    let retry = post("/idem-a", "key-a").await.unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(head(&http, &server).await, after_first);

    // Another body, another method, another route: 422, nothing appended.
    assert_names_the_key(post("/idem-b", "key-a").await.unwrap(), "another body").await;
    let missing = http
        .get(server.url("/v2/apps/idem-b"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "/idem-b must not exist");
    let delete = http
        .delete(server.url("/v2/apps/idem-a"))
        .header("Idempotency-Key", "key-a")
        .send()
        .await
        .unwrap();
    assert_names_the_key(delete, "a DELETE with a create's key").await;
    let kept = http
        .get(server.url("/v2/apps/idem-a"))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.status(), 200, "/idem-a must not be deleted");
    let subscribed = http
        .post(server.url("/v2/eventSubscriptions?callbackUrl=http://127.0.0.1:9/hook"))
        .header("Idempotency-Key", "key-sub")
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 200);
    let after_subscribe = head(&http, &server).await;
    let put = http
        .put(server.url("/v2/apps/x"))
        .header("Idempotency-Key", "key-sub")
        .json(&app("/x"))
        .send()
        .await
        .unwrap();
    assert_names_the_key(put, "a PUT with a subscription's key").await;
    // The query is part of the request too.
    let other_url = http
        .post(server.url("/v2/eventSubscriptions?callbackUrl=http://127.0.0.1:9/other"))
        .header("Idempotency-Key", "key-sub")
        .send()
        .await
        .unwrap();
    assert_names_the_key(other_url, "a subscription of another URL").await;
    assert_eq!(head(&http, &server).await, after_subscribe);

    // Two different requests racing with one new key: one wins, the other
    // is refused (whichever the committer decides first).
    let (a, b) = tokio::join!(post("/race-a", "key-race"), post("/race-b", "key-race"));
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 422]);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// `fixtures/store-v2` holds the record of key `retry-1` for seqs 1..=2
/// (an app created and its deployment), written without a digest.
#[tokio::test]
async fn a_key_recorded_without_a_digest_still_replays() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-v2"),
        dir.path(),
    );
    let server = Server::start(dir.path(), &[]);
    let http = client();
    let before = head(&http, &server).await;
    let retry = http
        .post(server.url("/v2/apps"))
        .header("Idempotency-Key", "retry-1")
        .json(&app("/prod/web"))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 201);
    assert_eq!(
        retry.headers()["marathon-deployment-id"],
        "00000000-0000-0000-0000-00000000000d"
    );
    assert_eq!(head(&http, &server).await, before);
    // Without a digest the record cannot be told from another request's;
    // whatever it replays, never a 500.
    let scale = http
        .put(server.url("/v2/apps/prod/web"))
        .header("Idempotency-Key", "retry-1")
        .json(&serde_json::json!({"instances": 5}))
        .send()
        .await
        .unwrap();
    assert!(!scale.status().is_server_error(), "{}", scale.status());
}
