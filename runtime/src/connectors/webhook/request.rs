//! What a webhook request carries: its body (one payload, or a batch
//! envelope), its idempotency key and its signature.

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::connectors::batch_digest;
use crate::delivery::Outgoing;
use crate::delivery::shape::hex;

/// The body and `Idempotency-Key` of a request carrying `payloads`:
/// the payload and its message id when `batched` is false (and there is
/// one payload), else `{"batch":[...],"sentAt":"..."}` and `batch-` with
/// the batch digest.
pub(super) fn body(payloads: &[&Outgoing], batched: bool, now_ms: i64) -> (Bytes, String) {
    if let [one] = payloads
        && !batched
    {
        return (one.payload.clone(), one.id.clone());
    }
    let size: usize = payloads.iter().map(|o| o.payload.len() + 1).sum();
    let mut out = BytesMut::with_capacity(size + 64);
    out.put_slice(b"{\"batch\":[");
    for (i, o) in payloads.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&o.payload);
    }
    out.put_slice(b"],\"sentAt\":\"");
    out.put_slice(crate::time::format_ms(now_ms).as_bytes());
    out.put_slice(b"\"}");
    let key = format!(
        "batch-{}",
        batch_digest(payloads.iter().map(|o| o.id.as_str()))
    );
    (out.freeze(), key)
}

/// `v1=` and the lowercase hex HMAC-SHA256, keyed by `secret`, of
/// `<timestamp>.<body>`.
pub(super) fn signature(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC accepts keys of every length")
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(id: &str, payload: &'static str) -> Outgoing {
        Outgoing {
            id: id.to_owned(),
            payload: Bytes::from_static(payload.as_bytes()),
        }
    }

    #[test]
    fn one_payload_is_the_body_keyed_by_its_message_id() {
        let a = out("m1", r#"{"a":1}"#);
        let (body, key) = body(&[&a], false, 0);
        assert_eq!(&body[..], br#"{"a":1}"#);
        assert_eq!(key, "m1");
    }

    #[test]
    fn a_batch_is_wrapped_and_keyed_by_its_digest() {
        let (a, b) = (out("m1", r#"{"a":1}"#), out("m2", "[2]"));
        let (body, key) = body(&[&a, &b], true, 1_700_000_000_123);
        assert_eq!(
            &body[..],
            br#"{"batch":[{"a":1},[2]],"sentAt":"2023-11-14T22:13:20.123Z"}"#
        );
        // printf 'm1\nm2' | sha256sum | cut -c1-32
        assert_eq!(key, "batch-b82a5b7a3e0f601f81efe9e950affdb4");
        // A batched destination wraps even a batch of one.
        let (body, key) = super::body(&[&a], true, 0);
        assert!(body.starts_with(b"{\"batch\":[{\"a\":1}]"));
        assert!(key.starts_with("batch-"));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            signature(b"whsec", 1_700_000_000, b"{}"),
            "v1=7d44587dddbaf4c7f70fef20f48cd594834ffea1641e3ac227b84408298738af"
        );
    }
}
