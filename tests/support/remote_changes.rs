//! Changes made through the API behind a mount's back, as a desktop client or another app would
//! make them, so a test can watch the mount notice.

use crate::support::emulator::Emulator;
use crate::support::http::{enc, get_authed, http};
use serde_json::Value;

impl Emulator {
    /// Uploads `bytes` as a new version of the item called `name` in the folder at
    /// `hub/project/top/...` (names), or as a new item when there is none, through the same
    /// write path a desktop save uses: storage, signed upload, then versions or items.
    pub async fn put_file(&self, path: &[&str], name: &str, bytes: &[u8]) {
        let token = self.token().await;
        let c = http();
        let get = |url: String| {
            let token = token.clone();
            async move {
                let r = get_authed(&url, &token, &[]).await;
                assert!(r.status().is_success(), "GET {}", r.status());
                r.json::<Value>().await.expect("json")
            }
        };
        let named = |doc: &Value, n: &str| -> Value {
            doc["data"]
                .as_array()
                .expect("data")
                .iter()
                .find(|r| r["attributes"]["name"] == n || r["attributes"]["displayName"] == n)
                .cloned()
                .unwrap_or(Value::Null)
        };
        let hubs = get(self.url("/project/v1/hubs")).await;
        let hub = named(&hubs, path[0])["id"]
            .as_str()
            .expect("hub")
            .to_string();
        let projects = get(self.url(&format!("/project/v1/hubs/{hub}/projects"))).await;
        let project = named(&projects, path[1])["id"]
            .as_str()
            .expect("project")
            .to_string();
        let tops = get(self.url(&format!(
            "/project/v1/hubs/{hub}/projects/{project}/topFolders"
        )))
        .await;
        let mut folder = named(&tops, path[2])["id"]
            .as_str()
            .expect("top folder")
            .to_string();
        let contents = |f: &str| {
            self.url(&format!(
                "/data/v1/projects/{project}/folders/{}/contents",
                enc(f)
            ))
        };
        for part in &path[3..] {
            let doc = get(contents(&folder)).await;
            folder = named(&doc, part)["id"]
                .as_str()
                .expect("folder")
                .to_string();
        }
        let doc = get(contents(&folder)).await;
        let item = named(&doc, name)["id"].as_str().map(String::from);

        let post = |path: String, body: Value| {
            let c = c.clone();
            let token = token.clone();
            async move {
                let r = c
                    .post(path)
                    .bearer_auth(token)
                    .header("content-type", "application/vnd.api+json")
                    .body(body.to_string())
                    .send()
                    .await
                    .expect("POST");
                let status = r.status();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                assert!(status.is_success(), "POST {status}: {v}");
                v
            }
        };
        let storage = post(
            self.url(&format!("/data/v1/projects/{project}/storage")),
            serde_json::json!({"jsonapi": {"version": "1.0"}, "data": {"type": "objects", "attributes": {"name": name},
                "relationships": {"target": {"data": {"type": "folders", "id": folder}}}}}),
        )
        .await;
        let urn = storage["data"]["id"]
            .as_str()
            .expect("storage id")
            .to_string();
        let (bucket, key) = urn
            .strip_prefix("urn:adsk.objects:os.object:")
            .and_then(|r| r.split_once('/'))
            .expect("storage urn");
        self.upload_object(&token, bucket, key, bytes).await;
        match item {
            Some(item) => {
                post(
                    self.url(&format!("/data/v1/projects/{project}/versions")),
                    serde_json::json!({"jsonapi": {"version": "1.0"}, "data": {"type": "versions",
                        "attributes": {"name": name, "extension": {"type": "versions:autodesk.core:File", "version": "1.0"}},
                        "relationships": {"item": {"data": {"type": "items", "id": item}},
                                          "storage": {"data": {"type": "objects", "id": urn}}}}}),
                )
                .await;
            }
            None => {
                post(
                    self.url(&format!("/data/v1/projects/{project}/items")),
                    serde_json::json!({"jsonapi": {"version": "1.0"}, "data": {"type": "items",
                        "attributes": {"displayName": name, "extension": {"type": "items:autodesk.core:File", "version": "1.0"}},
                        "relationships": {"tip": {"data": {"type": "versions", "id": "1"}},
                                          "parent": {"data": {"type": "folders", "id": folder}}}},
                        "included": [{"type": "versions", "id": "1",
                            "attributes": {"name": name, "extension": {"type": "versions:autodesk.core:File", "version": "1.0"}},
                            "relationships": {"storage": {"data": {"type": "objects", "id": urn}}}}]}),
                )
                .await;
            }
        }
    }

    /// Creates a bucket owned by the test client, with a retention policy.
    pub async fn create_bucket(&self, key: &str, policy: &str) {
        let r = http()
            .post(self.url("/oss/v2/buckets"))
            .bearer_auth(self.token().await)
            .json(&serde_json::json!({"bucketKey": key, "policyKey": policy}))
            .send()
            .await
            .expect("POST bucket");
        assert_eq!(r.status(), 200, "create bucket {key}");
    }
}
