//! Plain HTTP on the WebSocket listeners: the status page, Prometheus
//! metrics and a folder of static files (web pages that speak MQTT over
//! WebSocket to this same port).
//!
//! One request per connection (`connection: close`); only `GET` and
//! `HEAD`. Paths are matched segment by segment: anything that could leave
//! the folder (`..`, hidden names, backslashes, escapes) is not found.

use crate::{broker::Shared, metrics};
use mqtt_transport_ws::RequestHead;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest file served; bigger ones are refused rather than read.
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// A response: status line, content type, body.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn text(status: &'static str, body: String) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into_bytes(),
        }
    }
}

/// Answers one HTTP request and closes the connection.
pub(crate) async fn respond(
    shared: &Arc<Shared>,
    mut stream: tokio::net::TcpStream,
    head: &RequestHead,
) {
    let head_only = head.method == "HEAD";
    let response = if head.method != "GET" && !head_only {
        Response::text("405 Method Not Allowed", "only GET and HEAD\n".into())
    } else {
        route(shared, head.path_only()).await
    };
    let mut reply = format!(
        "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {}\r\ncache-control: no-cache\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    )
    .into_bytes();
    if !head_only {
        reply.extend_from_slice(&response.body);
    }
    // Read the request first so that closing does not reset the reply.
    let mut discard = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut discard)).await;
    let _ = stream.write_all(&reply).await;
    let _ = stream.shutdown().await;
}

async fn route(shared: &Arc<Shared>, path: &str) -> Response {
    match path {
        "/status" => return Response::text("200 OK", metrics::status(shared)),
        "/metrics" => {
            return Response {
                status: "200 OK",
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: metrics::prometheus(shared).into_bytes(),
            };
        }
        _ => {}
    }
    match &shared.config.web_root {
        Some(root) => match file_path(root, path) {
            Some(file) => serve_file(&file).await,
            None => not_found(),
        },
        None if path == "/" => Response::text("200 OK", metrics::status(shared)),
        None => not_found(),
    }
}

fn not_found() -> Response {
    Response::text("404 Not Found", "not found\n".into())
}

/// The file under `root` that `path` names, if `path` is a plain one:
/// segments of letters, digits, `-`, `_` and `.`, none starting with a dot.
/// A path ending in `/` names that folder's `index.html`.
pub(crate) fn file_path(root: &Path, path: &str) -> Option<PathBuf> {
    let rest = path.strip_prefix('/')?;
    let mut file = root.to_path_buf();
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segment.is_empty() {
            // "/" or "dir/": only allowed at the end.
            if segments.peek().is_some() {
                return None;
            }
            file.push("index.html");
            return Some(file);
        }
        let plain = !segment.starts_with('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain {
            return None;
        }
        file.push(segment);
    }
    Some(file)
}

async fn serve_file(file: &Path) -> Response {
    let mut file = file.to_path_buf();
    let Ok(mut meta) = tokio::fs::metadata(&file).await else {
        return not_found();
    };
    if meta.is_dir() {
        file.push("index.html");
        let Ok(m) = tokio::fs::metadata(&file).await else {
            return not_found();
        };
        meta = m;
    }
    if !meta.is_file() {
        return not_found();
    }
    if meta.len() > MAX_FILE {
        return Response::text("413 Content Too Large", "file too large\n".into());
    }
    match tokio::fs::read(&file).await {
        Ok(body) => Response {
            status: "200 OK",
            content_type: content_type(&file),
            body,
        },
        Err(_) => not_found(),
    }
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/srv/web");
        assert_eq!(
            file_path(root, "/"),
            Some(PathBuf::from("/srv/web/index.html"))
        );
        assert_eq!(
            file_path(root, "/chat/"),
            Some(PathBuf::from("/srv/web/chat/index.html"))
        );
        assert_eq!(
            file_path(root, "/vendor/mqtt.min.js"),
            Some(PathBuf::from("/srv/web/vendor/mqtt.min.js"))
        );
        for bad in [
            "/../etc/passwd",
            "/a/../../x",
            "/.git/config",
            "/a//b",
            "/a%2e%2e/b",
            "/a\\b",
            "relative",
            "/..",
        ] {
            assert_eq!(file_path(root, bad), None, "{bad}");
        }
    }
}
