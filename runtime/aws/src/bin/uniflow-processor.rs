//! The processor Lambda: Kinesis batches of stored events in, identities
//! and profiles in DynamoDB and messages on the destination queues out,
//! failures reported per record. Configured
//! by the environment the generated template sets (see
//! build/lambda/processor.json).

use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use uniflow_runtime::backend::SystemClock;
use uniflow_runtime::profiles::Rules;
use uniflow_runtime_aws::fanout::FanOut;
use uniflow_runtime_aws::processor;
use uniflow_runtime_aws::profiles::{DynamoProfiles, ProfileTables};
use uniflow_runtime_aws::sqs::QueueNames;
use uniflow_runtime_aws::{env, load_bundle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_from_env().await;
    let bundle = load_bundle(&config, &env("UNIFLOW_BUNDLE")?).await?;
    let store = DynamoProfiles::new(
        &config,
        ProfileTables::from_env()?,
        Rules::new(&bundle.identity),
    );
    let fanout = FanOut::new(&config, &bundle.destinations, &QueueNames::from_env()?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let (store, fanout) = (store.clone(), fanout.clone());
        async move {
            Ok::<_, Error>(processor::handle(&store, &fanout, &SystemClock, event.payload).await)
        }
    }))
    .await
}
