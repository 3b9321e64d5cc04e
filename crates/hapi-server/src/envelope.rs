//! The HAPI JSON envelope, `{"HAPI": "3.3", "status": {...}, ...}`: every JSON document
//! and every error body of the server starts with it (REQ-024). A leaf module: it
//! imports nothing of the server.

use hapi_core::{HAPI_VERSION, HapiStatus};
use serde_json::{Map, Value, json};

/// `{"code": .., "message": ..}`.
pub fn status(code: u16, message: &str) -> Value {
    json!({"code": code, "message": message})
}

/// The bytes of a document: `HAPI` and `status` first, then `body`, then a newline.
pub fn document(code: u16, message: &str, body: Map<String, Value>) -> Vec<u8> {
    let mut m = Map::with_capacity(body.len() + 2);
    m.insert("HAPI".to_owned(), Value::String(HAPI_VERSION.to_owned()));
    m.insert("status".to_owned(), status(code, message));
    m.extend(body);
    let mut bytes = serde_json::to_vec(&m).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// A 1200 document.
pub fn ok(body: Map<String, Value>) -> Vec<u8> {
    document(HapiStatus::Ok.code(), HapiStatus::Ok.message(), body)
}

/// The envelope alone, as the start of a document still to be filled (the `/data` header).
pub fn header(code: u16, message: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("HAPI".to_owned(), Value::String(HAPI_VERSION.to_owned()));
    m.insert("status".to_owned(), status(code, message));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hapi_and_status_come_first() {
        let mut body = Map::new();
        body.insert("a".to_owned(), json!(1));
        let text = String::from_utf8(ok(body)).unwrap();
        assert_eq!(text, "{\"HAPI\":\"3.3\",\"status\":{\"code\":1200,\"message\":\"OK\"},\"a\":1}\n");
    }
}
