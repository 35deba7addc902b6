//! Each source's write key, generated at apply time and kept in SSM
//! Parameter Store as a SecureString under the stack's write-keys path,
//! where the ingest function reads them. Never written to git or build/.

use std::collections::BTreeMap;

use anyhow::anyhow;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ssm::types::ParameterType;

/// Where each source's key is kept: source name to parameter name.
pub type KeyLocations = BTreeMap<String, String>;

/// Makes sure every source in `sources` has a write key under `path`
/// (generating a random one for a new source; existing keys are kept, so
/// SDKs already configured keep working), and removes the keys of sources
/// no longer in the config. Returns where each key is.
pub async fn ensure(
    sdk: &aws_config::SdkConfig,
    path: &str,
    sources: &[String],
) -> anyhow::Result<(KeyLocations, Vec<String>)> {
    let ssm = Client::new(sdk);
    let existing = list(&ssm, path).await?;
    let mut locations = BTreeMap::new();
    for source in sources {
        let name = format!("{path}{source}");
        if !existing.contains(&name) {
            let key = uuid::Uuid::new_v4().simple().to_string();
            match ssm
                .put_parameter()
                .name(&name)
                .description(format!("Uniflow write key of source `{source}`"))
                .value(key)
                .r#type(ParameterType::SecureString)
                .overwrite(false)
                .send()
                .await
            {
                Ok(_) => {}
                // Made by a concurrent run between the list and the put: keep it.
                Err(e) if e.code() == Some("ParameterAlreadyExists") => {}
                Err(e) => {
                    return Err(anyhow!(
                        "storing the write key of `{source}` in SSM parameter {name}: {}",
                        DisplayErrorContext(&e)
                    ));
                }
            }
        }
        locations.insert(source.clone(), name);
    }
    let mut removed = Vec::new();
    for name in existing {
        if !locations.values().any(|n| *n == name) {
            delete(&ssm, &name).await?;
            removed.push(name);
        }
    }
    Ok((locations, removed))
}

/// Deletes every key under `path` (destroy --delete-data).
pub async fn delete_all(sdk: &aws_config::SdkConfig, path: &str) -> anyhow::Result<Vec<String>> {
    let ssm = Client::new(sdk);
    let names = list(&ssm, path).await?;
    for name in &names {
        delete(&ssm, name).await?;
    }
    Ok(names)
}

async fn delete(ssm: &Client, name: &str) -> anyhow::Result<()> {
    match ssm.delete_parameter().name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ParameterNotFound") => Ok(()),
        Err(e) => Err(anyhow!(
            "deleting SSM parameter {name}: {}",
            DisplayErrorContext(&e)
        )),
    }
}

/// The parameter names directly under `path`.
async fn list(ssm: &Client, path: &str) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = ssm
            .get_parameters_by_path()
            .path(path.trim_end_matches('/'))
            .recursive(false)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "listing SSM parameters under {path}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    Ok(names)
}
