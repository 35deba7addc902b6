//! `uniflow destroy`: delete the pipeline's stack. Data stores the stack
//! retains (the raw archive and other buckets, the profile and state
//! tables, the data key) stay unless `--delete-data` is given; with it they
//! are deleted too, then the write keys and the bootstrap stack with the
//! artifacts bucket.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::stack::Progress;
use super::state::Retained;
use super::{Compiled, Target, approve, keys, read_text};
use crate::ExitStatus;

/// What `uniflow destroy` was asked to do.
#[derive(Debug)]
pub struct DestroyRequest<'a> {
    /// The project.
    pub path: &'a Path,
    /// Skip the confirmation.
    pub auto_approve: bool,
    /// Also delete retained data, write keys and the artifacts bucket.
    pub delete_data: bool,
    /// How long to wait for another run's lock.
    pub lock_timeout: Duration,
}

/// Runs `uniflow destroy`.
pub async fn run(request: &DestroyRequest<'_>) -> anyhow::Result<ExitStatus> {
    let file = crate::commands::resolve(request.path);
    let compiled = match Compiled::new(read_text(&file)?, &file.display().to_string(), "destroy")? {
        Ok(c) => c,
        Err(status) => return Ok(status),
    };
    let target = Target::connect(&compiled.config).await?;
    let stack_state = target.cfn.describe(&target.stack).await?;
    let store = target.state().await?;
    if stack_state.is_none() && (store.is_none() || !request.delete_data) {
        writeln!(
            std::io::stdout().lock(),
            "{} is not deployed: nothing to destroy.",
            target.stack
        )?;
        return Ok(ExitStatus::Success);
    }
    if !request.auto_approve {
        let what = if request.delete_data {
            format!(
                "Destroy {} AND DELETE ITS DATA (raw archive, profiles, exports, write keys, artifacts)? This cannot be undone.",
                target.stack
            )
        } else {
            format!(
                "Destroy {}? Data stores (buckets, tables, the data key) are kept.",
                target.stack
            )
        };
        if !approve(&what)? {
            writeln!(
                std::io::stderr().lock(),
                "Destroy cancelled: nothing was changed."
            )?;
            return Ok(ExitStatus::Failure);
        }
    }
    let Some(store) = store else {
        return Err(anyhow!(
            "{} has no artifacts bucket (bootstrap stack {} is gone), so it cannot be locked; delete it with `aws cloudformation delete-stack --stack-name {}`",
            target.stack,
            target.bootstrap,
            target.stack
        ));
    };
    let lock = store.lock("destroy", request.lock_timeout).await?;
    let outcome = locked(request, &target, &store, stack_state.is_some()).await;
    match outcome {
        Ok(Some(status)) => {
            lock.release().await?;
            Ok(status)
        }
        // The artifacts bucket, and the lock with it, is gone.
        Ok(None) => {
            std::mem::forget(lock);
            Ok(ExitStatus::Success)
        }
        Err(e) => {
            lock.release().await?;
            Err(e)
        }
    }
}

/// Deletes under the lock. `Ok(None)`: everything including the lock's
/// bucket is gone.
async fn locked(
    request: &DestroyRequest<'_>,
    target: &Target,
    store: &super::state::StateStore,
    stack_exists: bool,
) -> anyhow::Result<Option<ExitStatus>> {
    let mut retained = store.retained().await?;
    if stack_exists {
        let template = target.cfn.template(&target.stack).await?;
        let template: serde_json::Value =
            serde_json::from_str(&template).unwrap_or(serde_json::Value::Null);
        for (logical, (physical, kind)) in target.cfn.resources(&target.stack).await? {
            let policy = template["Resources"][&logical]["DeletionPolicy"].as_str();
            if policy == Some("Retain") {
                retained.push(Retained {
                    logical_id: logical,
                    physical_id: physical,
                    resource_type: kind,
                });
            }
        }
        let progress = Progress::new(&format!("destroy {}", target.stack));
        target.cfn.delete(&target.stack, &progress).await?;
        progress.finish();
    }
    retained.sort();
    retained.dedup();
    store.forget().await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Destroyed {}.", target.stack)?;
    if !request.delete_data {
        if !retained.is_empty() {
            writeln!(
                out,
                "Kept (DeletionPolicy Retain; delete them with `uniflow destroy --delete-data`):"
            )?;
            for r in &retained {
                writeln!(
                    out,
                    "  {:<28} {:<28} {}",
                    r.logical_id, r.resource_type, r.physical_id
                )?;
            }
        }
        store.record_retained(&retained).await?;
        writeln!(
            out,
            "Kept the artifacts bucket s3://{} (code, state history) and the write keys under {}.",
            store.bucket(),
            target.deployed.write_keys_path
        )?;
        return Ok(Some(ExitStatus::Success));
    }
    drop(out);
    for r in &retained {
        delete_retained(target, &r.resource_type, &r.physical_id)
            .await
            .map_err(|e| {
                anyhow!(
                    "deleting {} ({} {}): {e:#}",
                    r.logical_id,
                    r.resource_type,
                    r.physical_id
                )
            })?;
        writeln!(
            std::io::stdout().lock(),
            "  deleted {} ({}) {}",
            r.logical_id,
            r.resource_type,
            r.physical_id
        )?;
    }
    for name in keys::delete_all(&target.sdk, &target.deployed.write_keys_path).await? {
        writeln!(std::io::stdout().lock(), "  deleted write key {name}")?;
    }
    // Last: the bucket holding the lock.
    empty_bucket(&target.sdk, store.bucket()).await?;
    let progress = Progress::new(&format!("destroy {}", target.bootstrap));
    target.cfn.delete(&target.bootstrap, &progress).await?;
    progress.finish();
    delete_bucket_if_left(&target.sdk, store.bucket()).await?;
    writeln!(
        std::io::stdout().lock(),
        "Deleted {} and the artifacts bucket {}.",
        target.bootstrap,
        store.bucket()
    )?;
    Ok(None)
}

/// Deletes one retained data store.
async fn delete_retained(target: &Target, kind: &str, physical: &str) -> anyhow::Result<()> {
    match kind {
        "AWS::S3::Bucket" => {
            empty_bucket(&target.sdk, physical).await?;
            delete_bucket_if_left(&target.sdk, physical).await
        }
        "AWS::DynamoDB::Table" => {
            let dynamodb = aws_sdk_dynamodb::Client::new(&target.sdk);
            // The template protects tables from deletion; --delete-data is
            // the explicit request that lifts it.
            match dynamodb
                .update_table()
                .table_name(physical)
                .deletion_protection_enabled(false)
                .send()
                .await
            {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    return Ok(());
                }
                Err(e) => {
                    return Err(anyhow!(
                        "lifting deletion protection: {}",
                        DisplayErrorContext(&e)
                    ));
                }
            }
            match dynamodb.delete_table().table_name(physical).send().await {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(anyhow!("{}", DisplayErrorContext(&e))),
            }
        }
        "AWS::KMS::Key" => {
            // A KMS key is never deleted at once: the shortest wait is 7 days,
            // during which `aws kms cancel-key-deletion` brings it back.
            let kms = aws_sdk_kms::Client::new(&target.sdk);
            match kms
                .schedule_key_deletion()
                .key_id(physical)
                .pending_window_in_days(7)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error().is_some_and(|s| {
                        s.is_not_found_exception() || s.is_kms_invalid_state_exception()
                    }) =>
                {
                    Ok(())
                }
                Err(e) => Err(anyhow!("{}", DisplayErrorContext(&e))),
            }
        }
        _ => Ok(()),
    }
}

/// Deletes every object version and delete marker in `bucket`.
async fn empty_bucket(sdk: &aws_config::SdkConfig, bucket: &str) -> anyhow::Result<()> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    loop {
        let page = match s3.list_object_versions().bucket(bucket).send().await {
            Ok(page) => page,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.meta().code() == Some("NoSuchBucket")) =>
            {
                return Ok(());
            }
            Err(e) => {
                return Err(anyhow!(
                    "listing s3://{bucket}: {}",
                    DisplayErrorContext(&e)
                ));
            }
        };
        let mut ids = Vec::new();
        for v in page.versions() {
            if let Some(key) = v.key() {
                ids.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(v.version_id().map(str::to_owned))
                        .build()?,
                );
            }
        }
        for m in page.delete_markers() {
            if let Some(key) = m.key() {
                ids.push(
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(m.version_id().map(str::to_owned))
                        .build()?,
                );
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        for chunk in ids.chunks(1000) {
            s3.delete_objects()
                .bucket(bucket)
                .delete(
                    Delete::builder()
                        .set_objects(Some(chunk.to_vec()))
                        .quiet(true)
                        .build()?,
                )
                .send()
                .await
                .map_err(|e| anyhow!("emptying s3://{bucket}: {}", DisplayErrorContext(&e)))?;
        }
    }
}

/// Deletes `bucket` if it still exists.
async fn delete_bucket_if_left(sdk: &aws_config::SdkConfig, bucket: &str) -> anyhow::Result<()> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    match s3.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.meta().code() == Some("NoSuchBucket")) =>
        {
            Ok(())
        }
        Err(e) => Err(anyhow!(
            "deleting s3://{bucket}: {}",
            DisplayErrorContext(&e)
        )),
    }
}
