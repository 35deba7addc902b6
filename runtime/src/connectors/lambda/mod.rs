//! The lambda connector: a user's function invoked synchronously with a
//! batch, answering per message. `README.md` beside this file is the
//! contract the function implements.

mod answer;

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use uniflow_schemas::bundle::{ConnectorSettings, DestinationInfo};

use super::{ConnectorError, Invoke};
use crate::delivery::{Connector, Delivering, Outcome, Outgoing};

/// A destination's function.
pub struct LambdaConnector {
    function: String,
    invoke: Arc<dyn Invoke>,
}

impl fmt::Debug for LambdaConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaConnector")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

/// The lambda connector of destination `name`, invoking through `invoke`.
pub fn connector(
    name: &str,
    destination: &DestinationInfo,
    invoke: Arc<dyn Invoke>,
) -> Result<LambdaConnector, ConnectorError> {
    let ConnectorSettings::Lambda { function } = &destination.connector else {
        return Err(ConnectorError::settings(
            name,
            "the lambda connector needs lambda settings",
        ));
    };
    if function.trim().is_empty() {
        return Err(ConnectorError::settings(name, "the function name is empty"));
    }
    Ok(LambdaConnector {
        function: function.clone(),
        invoke,
    })
}

/// The event the function receives: `{"batch":[payload,...],
/// "messageIds":["id",...]}`, `messageIds[i]` being the id of `batch[i]`.
fn request(payloads: &[&Outgoing]) -> BytesMut {
    let size: usize = payloads
        .iter()
        .map(|o| o.payload.len() + o.id.len() + 4)
        .sum();
    let mut out = BytesMut::with_capacity(size + 32);
    out.put_slice(b"{\"batch\":[");
    for (i, o) in payloads.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&o.payload);
    }
    out.put_slice(b"],\"messageIds\":");
    let ids: Vec<&str> = payloads.iter().map(|o| o.id.as_str()).collect();
    // A list of strings always serialises.
    out.put_slice(serde_json::to_string(&ids).unwrap_or_default().as_bytes());
    out.put_u8(b'}');
    out
}

impl LambdaConnector {
    async fn call(&self, payloads: &[&Outgoing]) -> Vec<Outcome> {
        let body = request(payloads).freeze();
        match self.invoke.invoke(&self.function, body).await {
            Ok(answer) => answer::outcomes(payloads, &answer),
            Err(e) => {
                let reason = format!("invoking {}: {}", self.function, e.message);
                let outcome = if e.retryable {
                    Outcome::Retry {
                        reason,
                        after: None,
                    }
                } else {
                    Outcome::Failed { reason }
                };
                vec![outcome; payloads.len()]
            }
        }
    }
}

impl Connector for LambdaConnector {
    fn deliver<'a>(&'a self, batch: &'a [Outgoing]) -> Delivering<'a> {
        Box::pin(async move {
            if batch.is_empty() {
                return Vec::new();
            }
            let sendable: Vec<&Outgoing> = batch.iter().collect();
            self.call(&sendable).await
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn the_request_carries_the_payloads_and_their_ids() {
        let a = Outgoing {
            id: "m\"1".to_owned(),
            payload: Bytes::from_static(br#"{"a":1}"#),
        };
        let b = Outgoing {
            id: "m2".to_owned(),
            payload: Bytes::from_static(b"[]"),
        };
        let body = request(&[&a, &b]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"batch": [{"a": 1}, []], "messageIds": ["m\"1", "m2"]})
        );
    }
}
