//! Clients of object stores: one per server, bucket and key, configured from the
//! standard AWS sources (and the shared files `object_store` does not read), and the
//! stores' errors put in words.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use object_store::ClientOptions;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::http::HttpBuilder;

use crate::error::{Error, Result};
use crate::store::errors::one_line;

/// A client of one bucket or host.
pub(super) type Client = Arc<dyn ObjectStore>;

/// One client per bucket or host, shared by every array opened there (its connection
/// pool and credentials with it).
pub(super) fn client(base: &str) -> Result<Client> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Client>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    // A process that changes its server or key (a Python session) gets a new client.
    let key = [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
    ]
    .iter()
    .fold(base.to_string(), |k, v| {
        k + "|" + &std::env::var(v).unwrap_or_default()
    });
    if let Some(c) = clients.lock().expect("not poisoned").get(&key) {
        return Ok(c.clone());
    }
    let failed = |e: &dyn std::fmt::Display| Error::Store {
        path: PathBuf::from(base),
        message: one_line(e),
    };
    let client: Client = if base.starts_with("s3://") {
        Arc::new(s3_builder(base).build().map_err(|e| failed(&e))?)
    } else {
        let options = ClientOptions::new().with_allow_http(base.starts_with("http://"));
        Arc::new(
            HttpBuilder::new()
                .with_url(base)
                .with_client_options(options)
                .build()
                .map_err(|e| failed(&e))?,
        )
    };
    clients
        .lock()
        .expect("not poisoned")
        .insert(key, client.clone());
    Ok(client)
}

/// An S3 client for `s3://bucket` configured from the standard AWS sources.
fn s3_builder(base: &str) -> AmazonS3Builder {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut builder = AmazonS3Builder::from_env().with_url(base);
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let home = env("HOME").map(PathBuf::from);
    let shared = |var: &str, name: &str, section: &str| -> HashMap<String, String> {
        let file = env(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)));
        file.and_then(|f| std::fs::read_to_string(f).ok())
            .map(|text| ini_section(&text, section))
            .unwrap_or_default()
    };
    if env("AWS_ACCESS_KEY_ID").is_none() {
        let creds = shared("AWS_SHARED_CREDENTIALS_FILE", "credentials", &profile);
        if let (Some(id), Some(secret)) = (
            creds.get("aws_access_key_id"),
            creds.get("aws_secret_access_key"),
        ) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
            if let Some(token) = creds.get("aws_session_token") {
                builder = builder.with_token(token);
            }
        }
    }
    let config_section = if profile == "default" {
        profile.clone()
    } else {
        format!("profile {profile}")
    };
    let config = shared("AWS_CONFIG_FILE", "config", &config_section);
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| config.get("region").cloned());
    if let Some(region) = region {
        builder = builder.with_region(region);
    }
    let endpoint = env("AWS_ENDPOINT_URL_S3")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or_else(|| config.get("endpoint_url").cloned());
    if let Some(endpoint) = endpoint {
        if endpoint.starts_with("http://") {
            builder = builder.with_allow_http(true);
        }
        builder = builder.with_endpoint(endpoint);
    }
    builder
}

/// The `key = value` pairs of section `[name]` of an INI file (the AWS shared files).
fn ini_section(text: &str, name: &str) -> HashMap<String, String> {
    let mut inside = false;
    let mut values = HashMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == name;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            values.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    values
}

/// An object store's error on one line: what usually causes it where that is known,
/// else the store's own account.
pub(super) fn explain(e: &dyn std::fmt::Display) -> String {
    let text = one_line(e);
    if text.contains("NoSuchBucket") {
        "the bucket does not exist".into()
    } else if text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("AccessDenied")
        || text.contains("403 Forbidden")
    {
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or("403 Forbidden", |(code, _)| code);
        format!(
            "access denied ({code}): check the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE) and the bucket's permissions"
        )
    } else if text.contains("error sending request") || text.contains("Connection refused") {
        "the server cannot be reached (check AWS_ENDPOINT_URL or the URL)".into()
    } else {
        text.chars().take(400).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_file_sections() {
        let text = "[default]\naws_access_key_id = A\n\n[profile lab]\nregion=eu-west-1\nAWS_Secret_Access_Key = S\n";
        assert_eq!(ini_section(text, "default")["aws_access_key_id"], "A");
        let lab = ini_section(text, "profile lab");
        assert_eq!(lab["region"], "eu-west-1");
        assert_eq!(lab["aws_secret_access_key"], "S");
        assert!(!lab.contains_key("aws_access_key_id"));
    }
}
