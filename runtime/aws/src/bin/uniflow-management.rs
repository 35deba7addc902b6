//! The management API Lambda: API Gateway HTTP API events (behind the
//! Cognito JWT authorizer) through the same axum router `uniflow dev`
//! serves, over the DynamoDB profile store and the destination queues
//! ([`AwsDeliveries`]). Configured by the environment
//! the generated template sets (see build/lambda/management.json).

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use uniflow_runtime::manage::{self, Auth};
use uniflow_runtime::profiles::Rules;
use uniflow_runtime_aws::deliveries::AwsDeliveries;
use uniflow_runtime_aws::profiles::{DynamoProfiles, ProfileTables};
use uniflow_runtime_aws::{apigw, env, load_bundle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let bundle = load_bundle(&config, &env("UNIFLOW_BUNDLE")?).await?;
    let store = DynamoProfiles::new(
        &config,
        ProfileTables::from_env()?,
        Rules::new(&bundle.identity),
    );
    // API Gateway's JWT authorizer has checked the caller before the event
    // reaches this function; the function is not reachable otherwise.
    let deliveries = AwsDeliveries::from_env(&config)?;
    let router = manage::router(
        Arc::new(store),
        Some(Arc::new(deliveries)),
        Arc::new(bundle),
        Auth::Trusted,
    );
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let router = router.clone();
            async move { Ok::<_, Error>(apigw::serve_router(&router, event.payload).await) }
        },
    ))
    .await
}
