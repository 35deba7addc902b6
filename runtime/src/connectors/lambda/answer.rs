//! The function's answer, `{"results":[{"messageId","status","error"}]}`,
//! into one outcome per payload.

use std::collections::HashMap;

use serde::Deserialize;

use crate::delivery::{Outcome, Outgoing};

#[derive(Deserialize)]
struct Answer {
    results: Vec<Result>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Result {
    message_id: String,
    status: String,
    #[serde(default)]
    error: Option<String>,
}

/// Each payload's outcome from what the function answered: `ok` delivered,
/// `retry` retried, `failed` failed; a message without a result, with
/// an unknown status, or an answer of another shape, retried.
pub(super) fn outcomes(payloads: &[&Outgoing], answer: &[u8]) -> Vec<Outcome> {
    let answer: Answer = match serde_json::from_slice(answer) {
        Ok(a) => a,
        Err(e) => {
            let reason = format!(
                "the function's answer is not {{\"results\":[{{\"messageId\",\"status\"}}, ...]}}: {e}"
            );
            return vec![
                Outcome::Retry {
                    reason,
                    after: None
                };
                payloads.len()
            ];
        }
    };
    let mut by_id: HashMap<&str, &Result> = HashMap::with_capacity(answer.results.len());
    for r in &answer.results {
        by_id.entry(r.message_id.as_str()).or_insert(r);
    }
    payloads
        .iter()
        .map(|o| match by_id.get(o.id.as_str()) {
            None => Outcome::Retry {
                reason: format!("the function's answer has no result for message {}", o.id),
                after: None,
            },
            Some(r) => {
                let said = r.error.as_deref().map(str::trim).filter(|e| !e.is_empty());
                match r.status.as_str() {
                    "ok" => Outcome::Delivered,
                    "retry" => Outcome::Retry {
                        reason: format!(
                            "the function asked to retry: {}",
                            said.unwrap_or("no error given")
                        ),
                        after: None,
                    },
                    "failed" => Outcome::Failed {
                        reason: format!(
                            "the function failed it: {}",
                            said.unwrap_or("no error given")
                        ),
                    },
                    other => Outcome::Retry {
                        reason: format!(
                            "the function answered status `{other}` for message {}: expected \
                             `ok`, `retry` or `failed`",
                            o.id
                        ),
                        after: None,
                    },
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn batch() -> Vec<Outgoing> {
        ["m1", "m2", "m3", "m4"]
            .into_iter()
            .map(|id| Outgoing {
                id: id.to_owned(),
                payload: Bytes::from_static(b"{}"),
            })
            .collect()
    }

    #[test]
    fn each_message_gets_its_own_result() {
        let batch = batch();
        let refs: Vec<&Outgoing> = batch.iter().collect();
        let answer = br#"{"results":[
            {"messageId":"m3","status":"failed","error":"bad email"},
            {"messageId":"m1","status":"ok"},
            {"messageId":"m2","status":"retry","error":"CRM busy"}
        ]}"#;
        let got = outcomes(&refs, answer);
        assert_eq!(got[0], Outcome::Delivered);
        assert!(matches!(&got[1], Outcome::Retry { reason, .. } if reason.ends_with("CRM busy")));
        assert!(matches!(&got[2], Outcome::Failed { reason } if reason.ends_with("bad email")));
        assert!(
            matches!(&got[3], Outcome::Retry { reason, .. } if reason.contains("no result for message m4"))
        );
    }

    #[test]
    fn an_answer_of_another_shape_retries_everything() {
        let batch = batch();
        let refs: Vec<&Outgoing> = batch.iter().collect();
        for answer in [
            &b"null"[..],
            b"{\"ok\":true}",
            b"{\"results\":[{\"id\":1}]}",
            b"oops",
        ] {
            let got = outcomes(&refs, answer);
            assert_eq!(got.len(), 4);
            assert!(
                got.iter().all(
                    |o| matches!(o, Outcome::Retry { reason, .. } if reason.contains("is not"))
                )
            );
        }
    }

    #[test]
    fn an_unknown_status_retries_that_message() {
        let batch = batch();
        let refs: Vec<&Outgoing> = batch[..1].iter().collect();
        let got = outcomes(
            &refs,
            br#"{"results":[{"messageId":"m1","status":"done"}]}"#,
        );
        assert!(matches!(&got[0], Outcome::Retry { reason, .. } if reason.contains("`done`")));
    }
}
