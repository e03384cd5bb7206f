//! Writing through the Data Management API as a client does (storage placeholder → signed
//! upload → item or version, folders), for the tests of the write path and of its refusals.
//! Every request takes the token to send, so one test can act as several apps and users.

use crate::support::api::post_jsonapi;
use crate::support::dm::folder_by_path;
use crate::support::emulator::Emulator;
use crate::support::http::{enc, http};
use crate::support::oss::{fetch, signed_url, split_storage, upload_parts, DM_BUCKET};
use serde_json::{json, Value};

/// `redirect_uri` of the 3-legged tokens made here (never contacted).
const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// An emulator, a token with every scope, and the first project's first top folder, where the
/// writes of a test land.
pub struct Dm {
    /// The emulator under test.
    pub emu: Emulator,
    /// A 2-legged token with every scope.
    pub tok: String,
    /// The first project's id.
    pub project: String,
    /// Its first top folder's id.
    pub folder: String,
}

impl Dm {
    /// Starts an emulator with `args` (a small generated set when empty) and finds the folder.
    pub async fn start(args: &[&str]) -> Dm {
        let args = if args.is_empty() {
            &["--generate", "items=3,folders=0"][..]
        } else {
            args
        };
        let emu = Emulator::start(args);
        let tok = emu.token().await;
        let (project, folder) = folder_by_path(&emu, &tok, &[]).await;
        Dm {
            emu,
            tok,
            project,
            folder,
        }
    }

    /// `/data/v1/projects/<project>/<what>`.
    pub fn data_path(&self, what: &str) -> String {
        format!("/data/v1/projects/{}/{what}", self.project)
    }

    /// POST a JSON:API body with `token` and extra headers: (status, body).
    pub async fn post_as(
        &self,
        token: &str,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut rb = http()
            .post(self.emu.url(path))
            .bearer_auth(token)
            .header("Content-Type", "application/vnd.api+json")
            .body(body.to_string());
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.expect("POST");
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `POST storage` for `name` in the folder: (status, body).
    pub async fn post_storage(&self, token: &str, name: &str) -> (u16, Value) {
        let body = json!({
            "jsonapi": {"version": "1.0"},
            "data": {
                "type": "objects",
                "attributes": {"name": name},
                "relationships": {"target": {"data": {"type": "folders", "id": self.folder}}}
            }
        });
        post_jsonapi(&self.emu, token, &self.data_path("storage"), &body).await
    }

    /// `POST storage` that must succeed: (storage urn, object key).
    pub async fn storage(&self, name: &str) -> (String, String) {
        let (s, v) = self.post_storage(&self.tok, name).await;
        assert_eq!(s, 201, "POST storage: {v}");
        let urn = v["data"]["id"].as_str().expect("storage id").to_string();
        let (bucket, key) = split_storage(&urn);
        assert_eq!(bucket, DM_BUCKET);
        (urn, key)
    }

    /// Storage + a one-part upload of `bytes`: (storage urn, object key).
    pub async fn uploaded(&self, name: &str, bytes: &[u8]) -> (String, String) {
        let (urn, key) = self.storage(name).await;
        let (s, done) = upload_parts(&self.emu, &self.tok, DM_BUCKET, &key, &[bytes]).await;
        assert_eq!(s, 200, "upload to {key}: {done}");
        assert_eq!(done["size"], bytes.len());
        assert_eq!(done["objectId"], urn.as_str());
        (urn, key)
    }

    /// The `POST items` body for `name` on `storage` in the folder.
    pub fn item_body(&self, name: &str, storage: &str) -> Value {
        json!({
            "jsonapi": {"version": "1.0"},
            "data": {
                "type": "items",
                "attributes": {"displayName": name, "extension": {"type": "items:autodesk.bim360:File", "version": "1.0"}},
                "relationships": {
                    "tip": {"data": {"type": "versions", "id": "1"}},
                    "parent": {"data": {"type": "folders", "id": self.folder}}
                }
            },
            "included": [{
                "type": "versions",
                "id": "1",
                "attributes": {"name": name, "extension": {"type": "versions:autodesk.bim360:File", "version": "1.0"}},
                "relationships": {"storage": {"data": {"type": "objects", "id": storage}}}
            }]
        })
    }

    /// `POST items`: (status, body).
    pub async fn post_item(&self, name: &str, storage: &str) -> (u16, Value) {
        let body = self.item_body(name, storage);
        post_jsonapi(&self.emu, &self.tok, &self.data_path("items"), &body).await
    }

    /// An uploaded file made an item that must succeed: (item id, storage urn).
    pub async fn item(&self, name: &str, bytes: &[u8]) -> (String, String) {
        let (urn, _) = self.uploaded(name, bytes).await;
        let (s, v) = self.post_item(name, &urn).await;
        assert_eq!(s, 201, "POST items: {v}");
        let id = v["data"]["id"].as_str().expect("item id").to_string();
        (id, urn)
    }

    /// The `POST versions` body: a version of `item` named `name` of extension type `ext`,
    /// on `storage` when given.
    pub fn version_body(item: &str, name: &str, ext: &str, storage: Option<&str>) -> Value {
        let mut data = json!({
            "type": "versions",
            "attributes": {"name": name, "extension": {"type": ext, "version": "1.0"}},
            "relationships": {"item": {"data": {"type": "items", "id": item}}}
        });
        if let Some(s) = storage {
            data["relationships"]["storage"] = json!({"data": {"type": "objects", "id": s}});
        }
        json!({"jsonapi": {"version": "1.0"}, "data": data})
    }

    /// `POST versions`: (status, body).
    pub async fn post_version(
        &self,
        item: &str,
        name: &str,
        ext: &str,
        storage: Option<&str>,
    ) -> (u16, Value) {
        let body = Dm::version_body(item, name, ext, storage);
        post_jsonapi(&self.emu, &self.tok, &self.data_path("versions"), &body).await
    }

    /// `POST versions` of a file version on `storage`, as `token` with `headers`.
    pub async fn post_file_version_as(
        &self,
        token: &str,
        headers: &[(&str, &str)],
        item: &str,
        name: &str,
        storage: &str,
    ) -> (u16, Value) {
        let body = Dm::version_body(item, name, "versions:autodesk.bim360:File", Some(storage));
        self.post_as(token, &self.data_path("versions"), &body, headers)
            .await
    }

    /// `POST folders` named `name` under the folder, with `token`: (status, body).
    pub async fn post_folder_as(&self, token: &str, name: &str) -> (u16, Value) {
        let body = json!({"jsonapi": {"version": "1.0"}, "data": {"type": "folders",
            "attributes": {"name": name, "extension": {"type": "folders:autodesk.bim360:Folder", "version": "1.0"}},
            "relationships": {"parent": {"data": {"type": "folders", "id": self.folder}}}}});
        post_jsonapi(&self.emu, token, &self.data_path("folders"), &body).await
    }

    /// `POST folders` with the all-scopes token.
    pub async fn post_folder(&self, name: &str) -> (u16, Value) {
        self.post_folder_as(&self.tok, name).await
    }

    /// GET of an item (`GET items/:id`), which must answer 200.
    pub async fn get_item(&self, item: &str) -> Value {
        let (s, v) = self
            .emu
            .get_json(&self.tok, &self.data_path(&format!("items/{}", enc(item))))
            .await;
        assert_eq!(s, 200, "GET item: {v}");
        v
    }

    /// The bytes of object `key` of the Data Management bucket, through a signed URL.
    pub async fn download(&self, key: &str) -> Vec<u8> {
        let url = signed_url(&self.emu, &self.tok, DM_BUCKET, key).await;
        let (s, _, got) = fetch(&url, None).await;
        assert_eq!(s, 200);
        got
    }

    /// `/oss/v2/buckets/wip.dm.prod/objects/<key>/signeds3upload` with `query` appended.
    pub fn upload_path(key: &str, query: &str) -> String {
        let path = format!(
            "/oss/v2/buckets/{DM_BUCKET}/objects/{}/signeds3upload",
            enc(key)
        );
        if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        }
    }

    /// `POST …/signeds3upload` (completion) of `key` with `body`, as `token`: (status, body).
    pub async fn complete_as(&self, token: &str, key: &str, body: &Value) -> (u16, Value) {
        let r = http()
            .post(self.emu.url(&Dm::upload_path(key, "")))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("complete upload");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A 3-legged token with `scope` (authorization code flow): it acts as the emulator's user.
    pub async fn three_legged(&self, scope: &str) -> String {
        let no_redirect = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let r = no_redirect
            .get(self.emu.url("/authentication/v2/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", "test-client"),
                ("redirect_uri", REDIRECT),
                ("scope", scope),
            ])
            .send()
            .await
            .expect("authorize");
        assert_eq!(r.status(), 302);
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("Location")
            .to_string();
        let code = location
            .split("code=")
            .nth(1)
            .and_then(|c| c.split('&').next())
            .expect("code")
            .to_string();
        let r = http()
            .post(self.emu.url("/authentication/v2/token"))
            .basic_auth("test-client", Some("test-secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(r.status(), 200, "code exchange");
        let v: Value = r.json().await.expect("token json");
        v["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// The user id a 3-legged `token` acts as (`sub` of `/userinfo`).
    pub async fn user_of(&self, token: &str) -> String {
        let (s, v) = self.emu.get_json(token, "/userinfo").await;
        assert_eq!(s, 200, "userinfo: {v}");
        v["sub"].as_str().expect("sub").to_string()
    }
}

/// The control routes of the write path's refusals: reservations and project access.
impl Emulator {
    /// Reserves (locks) `item` for the user `user_id` called `user_name`: the answer's body.
    pub async fn reserve(&self, item: &str, user_id: &str, user_name: &str) -> Value {
        let r = http()
            .put(self.url(&format!("/__emulator/reservations/{}", enc(item))))
            .json(&json!({"user_id": user_id, "user_name": user_name}))
            .send()
            .await
            .expect("PUT reservation");
        assert_eq!(r.status(), 200, "reserve {item}");
        r.json().await.expect("reservation json")
    }

    /// Releases any reservation of `item`.
    pub async fn release(&self, item: &str) {
        let r = http()
            .delete(self.url(&format!("/__emulator/reservations/{}", enc(item))))
            .send()
            .await
            .expect("DELETE reservation");
        assert_eq!(r.status(), 200, "release {item}");
    }

    /// Makes `project` read-only for every caller (or writable again).
    pub async fn set_read_only(&self, project: &str, read_only: bool) {
        let r = http()
            .put(self.url(&format!("/__emulator/projects/{}", enc(project))))
            .json(&json!({ "read_only": read_only }))
            .send()
            .await
            .expect("PUT project access");
        assert_eq!(r.status(), 200, "project access of {project}");
    }
}
