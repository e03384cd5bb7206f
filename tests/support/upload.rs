//! Putting bytes into OSS the way a client does, for tests that need an object to exist.

use crate::support::emulator::Emulator;
use crate::support::http::{enc, get_authed, http};
use serde_json::Value;

impl Emulator {
    /// Uploads `bytes` as object `key` of `bucket` through the signed upload flow (one part).
    pub async fn upload_object(&self, token: &str, bucket: &str, key: &str, bytes: &[u8]) {
        let c = http();
        let oss = self.url(&format!(
            "/oss/v2/buckets/{}/objects/{}/signeds3upload",
            enc(bucket),
            enc(key)
        ));
        let start: Value = get_authed(&oss, token, &[])
            .await
            .json()
            .await
            .expect("upload json");
        let url = start["urls"][0].as_str().expect("upload url");
        let put = c
            .put(url)
            .body(bytes.to_vec())
            .send()
            .await
            .expect("PUT part");
        assert!(put.status().is_success(), "PUT part {}", put.status());
        let done = c
            .post(&oss)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(serde_json::json!({"uploadKey": start["uploadKey"]}).to_string())
            .send()
            .await
            .expect("complete upload");
        assert!(
            done.status().is_success(),
            "complete upload {}",
            done.status()
        );
    }
}
