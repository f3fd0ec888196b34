//! The agent's `GET /files/read`, as a Mesos 1.11 agent answers it, for
//! the virtual paths it attaches to each executor's newest run
//! (`/frameworks/<f>/executors/<e>/runs/latest/<file>`): `offset=-1` gives
//! the size, otherwise up to `length` bytes (at most 16 pages) from
//! `offset` (an empty read past the end); a missing file is a 404, a
//! directory or a bad number a 400 (apache/mesos `src/files/files.cpp`).

use super::master::Master;
use super::sandbox::latest_run;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stride_mesos::sandbox::MAX_READ;

pub(crate) async fn read(
    State(master): State<Arc<Master>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(path) = query.get("path").filter(|path| !path.is_empty()).cloned() else {
        return bad_request("Expecting 'path=value' in query.");
    };
    let offset = match number(&query, "offset") {
        Ok(None) => -1,
        Ok(Some(offset)) if offset >= -1 => offset,
        Ok(Some(offset)) => return bad_request(&format!("Negative offset provided: {offset}.")),
        Err(message) => return bad_request(&message),
    };
    // `-1`, as absent: to the end of the file.
    let length = match number(&query, "length") {
        Ok(None | Some(-1)) => MAX_READ,
        Ok(Some(length)) => match u64::try_from(length) {
            Ok(length) => length.min(MAX_READ),
            Err(_) => return bad_request(&format!("Negative length provided: {length}.")),
        },
        Err(message) => return bad_request(&message),
    };
    let work_dir = master.settings.work_dir.clone();
    let read = tokio::task::spawn_blocking(move || {
        let file = resolve(&work_dir, &path).ok_or(Failure::NotFound)?;
        read_range(&file, offset, length)
    })
    .await
    .unwrap_or(Err(Failure::NotFound));
    match read {
        Ok((data, offset)) => Json(json!({"data": data, "offset": offset})).into_response(),
        Err(Failure::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(Failure::Directory) => bad_request("Cannot read a directory."),
        Err(Failure::Io(error)) => {
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    }
}

enum Failure {
    NotFound,
    Directory,
    Io(std::io::Error),
}

/// The real file behind a virtual path; never outside a run directory.
fn resolve(work_dir: &Path, virtual_path: &str) -> Option<PathBuf> {
    let mut parts = virtual_path.trim_start_matches('/').split('/');
    let framework = match (parts.next(), parts.next()) {
        (Some("frameworks"), Some(framework)) => framework,
        _ => return None,
    };
    let executor = match (parts.next(), parts.next()) {
        (Some("executors"), Some(executor)) => executor,
        _ => return None,
    };
    if (parts.next(), parts.next()) != (Some("runs"), Some("latest")) {
        return None;
    }
    let mut file = latest_run(work_dir, framework, executor)?;
    for part in parts.filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return None;
        }
        file.push(part);
    }
    Some(file)
}

fn read_range(file: &Path, offset: i64, length: u64) -> Result<(String, u64), Failure> {
    let metadata = std::fs::metadata(file).map_err(|_| Failure::NotFound)?;
    if metadata.is_dir() {
        return Err(Failure::Directory);
    }
    let size = metadata.len();
    let Ok(offset) = u64::try_from(offset) else {
        return Ok((String::new(), size));
    };
    let mut bytes = Vec::new();
    if offset < size {
        let mut handle = std::fs::File::open(file).map_err(Failure::Io)?;
        handle.seek(SeekFrom::Start(offset)).map_err(Failure::Io)?;
        handle
            .take(length.min(size - offset))
            .read_to_end(&mut bytes)
            .map_err(Failure::Io)?;
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), offset))
}

/// A query number, or the agent's message for one that is not.
fn number(query: &HashMap<String, String>, name: &str) -> Result<Option<i64>, String> {
    query
        .get(name)
        .map(|value| {
            value.parse::<i64>().map_err(|_| {
                format!("Failed to parse {name}: Failed to convert '{value}' to number.")
            })
        })
        .transpose()
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}
