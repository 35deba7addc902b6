//! The ingest Lambda: API Gateway HTTP API events in, Kinesis records out,
//! through the same handler `uniflow dev` serves. Configured by the
//! environment the generated template sets (see build/lambda/ingest.json).

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use uniflow_runtime::backend::SystemClock;
use uniflow_runtime::ingest::{Ingest, Limits, RateLimit};
use uniflow_runtime_aws::{DynamoDedupe, KinesisSink, apigw, env, load_bundle, write_keys};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let bundle = load_bundle(&config, &env("UNIFLOW_BUNDLE")?).await?;
    let keys = write_keys(&config, &env("UNIFLOW_WRITE_KEYS_PATH")?).await?;
    let sink = KinesisSink::new(
        &config,
        &env("UNIFLOW_STREAM")?,
        &env("UNIFLOW_VIOLATIONS_BUCKET")?,
    );
    let dedupe = DynamoDedupe::new(&config, &env("UNIFLOW_DEDUPE_TABLE")?);
    // API Gateway's stage throttling limits the rate on AWS; a per-instance
    // bucket would mean nothing across concurrent instances.
    let ingest = Arc::new(Ingest::new(
        &bundle,
        &keys,
        Limits::default(),
        RateLimit::new(u32::MAX, u32::MAX),
        sink,
        dedupe,
        SystemClock,
    ));
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let ingest = ingest.clone();
            async move { Ok::<_, Error>(apigw::handle(&ingest, event.payload).await) }
        },
    ))
    .await
}
