//! The connector Lambda: SQS batches from every destination's queue in,
//! deliveries out (webhook, S3 export, the user's Lambda), with retries
//! scheduled through the visibility timeout, permanent failures sent to the
//! destination's dead-letter queue, and failures reported per message.
//! Configured by the environment the generated template sets (see
//! build/lambda/connector.json).
//!
//! A destination whose connector cannot be built (a secret that cannot be
//! read, a bad setting) is logged and left out: its messages are reported
//! failed, so SQS keeps them and, after the retry policy's attempts, moves
//! them to its dead-letter queue; the other destinations keep delivering.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use uniflow_runtime::connectors::{self, Services};
use uniflow_runtime::delivery::Shaper;
use uniflow_runtime_aws::connector::{self, Deliver, Destination};
use uniflow_runtime_aws::services::{AwsSecrets, LambdaInvoke, S3Objects};
use uniflow_runtime_aws::{env, load_bundle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let bundle = load_bundle(&config, &env("UNIFLOW_BUNDLE")?).await?;
    let services = Services {
        secrets: Arc::new(AwsSecrets::new(&config)),
        objects: Arc::new(S3Objects::new(&config)),
        invoke: Some(Arc::new(LambdaInvoke::new(&config))),
    };
    let mut destinations = BTreeMap::new();
    for (name, info) in &bundle.destinations {
        let built = match Shaper::new(info) {
            Ok(shaper) => connectors::build(name, info, &services)
                .await
                .map(|connector| (shaper, connector))
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("destination `{name}`: {e}")),
        };
        match built {
            Ok((shaper, connector)) => {
                destinations.insert(
                    name.clone(),
                    Destination {
                        info: info.clone(),
                        shape: Box::new(move |event: &[u8]| {
                            shaper.shape(event).map_err(|e| e.to_string())
                        }),
                        connector,
                    },
                );
            }
            Err(why) => tracing::error!(
                destination = %name,
                %why,
                "cannot deliver to this destination; its messages stay queued until fixed"
            ),
        }
    }
    let deliver = Arc::new(Deliver::from_env(&config, destinations)?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deliver = Arc::clone(&deliver);
        async move { Ok::<_, Error>(connector::handle(&deliver, event.payload).await) }
    }))
    .await
}
