//! One recorded exchange as stored on a cassette line, and the request key it is found by.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Response headers a cassette keeps; every other response header is dropped, and request
/// headers (where keys travel) are never written at all.
pub(crate) const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-request-id",
    "request-id",
];

/// Query parameters that can carry a credential; they are removed from recorded paths.
const SECRET_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "api-key",
    "apikey",
    "access_token",
    "token",
    "sig",
    "signature",
];

/// One exchange: what was asked (method, path, body) and what came back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) method: String,
    /// Path and query, without scheme, host or credential parameters.
    pub(crate) path: String,
    /// Whether the request asked for an event stream.
    #[serde(default)]
    pub(crate) stream: bool,
    /// The JSON request body (object keys sorted when written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<Value>,
    /// SHA-256 of a request body that is not JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request_sha256: Option<String>,
    pub(crate) status: u16,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// The response body exactly as received, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) body: Option<String>,
    /// The response body in standard base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) body_base64: Option<String>,
    /// How a stream broke after its recorded bytes, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stream_error: Option<String>,
    /// Seconds since the Unix epoch.
    #[serde(default)]
    pub(crate) recorded_at: u64,
}

impl Entry {
    /// Builds an entry from a request key and a response.
    pub(crate) fn new(key: &RequestKey, status: u16, headers: &HeaderMap, body: &[u8]) -> Entry {
        let (text, base64) = match std::str::from_utf8(body) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(body)),
            ),
        };
        Entry {
            method: key.method.to_owned(),
            path: key.path.clone(),
            stream: key.stream,
            request: key.body.clone(),
            request_sha256: key.raw_sha256.clone(),
            status,
            headers: kept_headers(headers),
            body: text,
            body_base64: base64,
            stream_error: None,
            recorded_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Returns the response body bytes.
    pub(crate) fn body_bytes(&self) -> Option<Bytes> {
        match (&self.body, &self.body_base64) {
            (Some(text), _) => Some(Bytes::from(text.clone().into_bytes())),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .map(Bytes::from),
            (None, None) => Some(Bytes::new()),
        }
    }

    /// Returns the kept response headers as a header map (unparsable ones are skipped).
    pub(crate) fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                map.insert(name, value);
            }
        }
        map
    }

    /// Recomputes this entry's request key with the given ignored fields.
    pub(crate) fn key(&self, ignore: &[String]) -> RequestKey {
        RequestKey::from_parts(
            &self.path,
            self.stream,
            self.request.clone(),
            self.request_sha256.clone(),
            ignore,
        )
    }
}

/// What a request is matched by: method, scrubbed path, stream flag and a hash of the
/// canonical body (object keys sorted, ignored fields removed).
#[derive(Clone, Debug)]
pub(crate) struct RequestKey {
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) stream: bool,
    pub(crate) body: Option<Value>,
    pub(crate) raw_sha256: Option<String>,
    pub(crate) hash: String,
}

impl RequestKey {
    /// Builds the key of a POST to `url` with `body`.
    pub(crate) fn new(url: &str, body: &[u8], stream: bool, ignore: &[String]) -> RequestKey {
        let (json, raw) = match serde_json::from_slice::<Value>(body) {
            Ok(value) => (Some(value), None),
            Err(_) => (None, Some(hex(&Sha256::digest(body)))),
        };
        RequestKey::from_parts(&scrub_url(url), stream, json, raw, ignore)
    }

    fn from_parts(
        path: &str,
        stream: bool,
        body: Option<Value>,
        raw_sha256: Option<String>,
        ignore: &[String],
    ) -> RequestKey {
        let mut material = format!(
            "POST\0{path}\0{}\0",
            if stream { "stream" } else { "whole" }
        );
        match (&body, &raw_sha256) {
            (Some(value), _) => {
                let mut value = value.clone();
                for pointer in ignore {
                    remove_pointer(&mut value, pointer);
                }
                canonical(&value, &mut material);
            }
            (None, Some(sha)) => material.push_str(sha),
            (None, None) => {}
        }
        let digest = Sha256::new()
            .chain_update(b"switchboard-cassette\0")
            .chain_update(material.as_bytes())
            .finalize();
        RequestKey {
            method: "POST",
            path: path.to_owned(),
            stream,
            body,
            raw_sha256,
            hash: hex(&digest[..12]),
        }
    }

    /// Names the request for messages: `POST /v1/messages (stream, body 1a2b…)`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} {} ({}, request key {})",
            self.method,
            self.path,
            if self.stream { "stream" } else { "whole" },
            self.hash
        )
    }
}

/// Returns the path and query of `url` without scheme, host, user info, fragment or any
/// query parameter that can carry a credential.
pub(crate) fn scrub_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split_once('#').map_or(rest, |(head, _)| head);
    let path_and_query = rest.find('/').map_or("/", |i| &rest[i..]);
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let kept: Vec<&str> = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            !SECRET_PARAMS.contains(&name.to_ascii_lowercase().as_str())
        })
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Keeps only the allow-listed response headers.
fn kept_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// Removes the member a JSON pointer names, if present (`~1` is `/`, `~0` is `~`).
fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        _ => {}
    }
}

/// Writes `value` as JSON with object keys sorted, whatever order the map keeps.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(name.clone()).to_string());
                out.push(':');
                canonical(member, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrubbing_drops_host_and_credential_parameters() {
        assert_eq!(
            scrub_url("https://user:pw@host:8080/v1beta/models/m:streamGenerateContent?alt=sse&key=AIzaSECRET#frag"),
            "/v1beta/models/m:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            scrub_url("http://h/v1/x?API_KEY=s&api-version=2024&Token=t"),
            "/v1/x?api-version=2024"
        );
        assert_eq!(scrub_url("http://h"), "/");
    }

    #[test]
    fn key_ignores_member_order() {
        let a = RequestKey::new("http://a/v1/m", br#"{"a":1,"b":{"x":1,"y":2}}"#, false, &[]);
        let b = RequestKey::new("http://b/v1/m", br#"{"b":{"y":2,"x":1},"a":1}"#, false, &[]);
        assert_eq!(a.hash, b.hash);
    }

    #[test]
    fn key_tells_bodies_paths_and_streaming_apart() {
        let base = RequestKey::new("http://a/v1/m", br#"{"a":1}"#, false, &[]);
        for other in [
            RequestKey::new("http://a/v1/m", br#"{"a":2}"#, false, &[]),
            RequestKey::new("http://a/v1/n", br#"{"a":1}"#, false, &[]),
            RequestKey::new("http://a/v1/m", br#"{"a":1}"#, true, &[]),
        ] {
            assert_ne!(base.hash, other.hash, "{}", other.describe());
        }
    }

    #[test]
    fn ignored_fields_leave_the_key_unchanged() {
        let ignore = vec!["/metadata/user_id".to_owned(), "/items/0".to_owned()];
        let a = RequestKey::new(
            "http://a/p",
            br#"{"metadata":{"user_id":"u1"},"items":[1,2]}"#,
            false,
            &ignore,
        );
        let b = RequestKey::new(
            "http://a/p",
            br#"{"metadata":{"user_id":"u2"},"items":[9,2]}"#,
            false,
            &ignore,
        );
        assert_eq!(a.hash, b.hash);
    }

    #[test]
    fn pointer_escapes_are_understood() {
        let mut v = json!({"a/b": 1, "c~d": 2, "e": 3});
        remove_pointer(&mut v, "/a~1b");
        remove_pointer(&mut v, "/c~0d");
        assert_eq!(v, json!({"e": 3}));
    }

    #[test]
    fn a_stored_entry_recomputes_its_key() {
        let key = RequestKey::new("http://a/p?alt=sse", br#"{"z":1,"a":[1.5]}"#, true, &[]);
        let entry = Entry::new(&key, 200, &HeaderMap::new(), b"data: x\r\n\r\n");
        let line = serde_json::to_string(&entry).unwrap();
        let back: Entry = serde_json::from_str(&line).unwrap();
        assert_eq!(back.key(&[]).hash, key.hash);
        assert_eq!(back.body_bytes().unwrap(), &b"data: x\r\n\r\n"[..]);
    }

    #[test]
    fn binary_bodies_survive_as_base64() {
        let key = RequestKey::new("http://a/p", b"{}", false, &[]);
        let entry = Entry::new(&key, 200, &HeaderMap::new(), &[0xff, 0x00, 0xfe]);
        assert!(entry.body.is_none());
        assert_eq!(entry.body_bytes().unwrap(), &[0xff, 0x00, 0xfe][..]);
    }

    #[test]
    fn only_allow_listed_headers_are_kept() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        h.insert("retry-after", HeaderValue::from_static("7"));
        h.insert("set-cookie", HeaderValue::from_static("session=secret"));
        h.insert("openai-organization", HeaderValue::from_static("org-x"));
        let kept = kept_headers(&h);
        assert_eq!(
            kept.keys().collect::<Vec<_>>(),
            ["content-type", "retry-after"]
        );
    }
}
