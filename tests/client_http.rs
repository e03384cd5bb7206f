//! The client over real HTTP against an in-process emulator: user tokens that rotate and are
//! shared between processes through the credentials file, and signed URLs that keep being
//! refused. Only public APIs of apsfs and of the emulator are used.

use aps_emulator::{self as emulator, FaultConfig, GenSpec};
use apsfs::api::auth::{
    auth_url, request_token, revoke_refresh_token, Access, ClientAuth, Credentials, TokenSource,
    READ_SCOPE,
};
use apsfs::api::{ApiError, ApsClient, Entry, Flavour, Remote};
use apsfs::credentials::{now_secs, Login, Store};
use apsfs::login::pkce::Pkce;
use apsfs::mount::{connect, Connection};
use std::sync::Arc;
use std::time::Duration;

/// Fresh signed URLs a read asks for after the first one is refused before it gives up: the
/// client's `URL_REFRESHES` (private to `src/api/client.rs`; keep the two in step).
const URL_REFRESHES: u64 = 4;

/// An in-process emulator on a free loopback port.
async fn emulator(store: emulator::Store, single_use_refresh: bool) -> emulator::Running {
    let config = emulator::Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        single_use_refresh,
        ..emulator::Config::default()
    };
    emulator::run(config, store).await.unwrap()
}

// --- Signed URLs -------------------------------------------------------------------------------

/// A client with app credentials, connected to `base`.
async fn app_client(base: &str) -> Arc<ApsClient> {
    connect(&Connection {
        base_url: base.to_string(),
        credentials: Credentials::Client {
            id: "c".into(),
            secret: "s".into(),
            scope: READ_SCOPE.into(),
        },
        user_id: None,
        rate_limits: false,
    })
    .await
    .unwrap()
}

/// Every signed URL dies before it is used (1 s lifetime, 1 s of latency on each request):
/// a read asks for a few fresh ones, then reports the refusal rather than looping.
#[tokio::test]
async fn refused_signed_urls_are_replaced_a_few_times_then_reported() {
    let mut store = emulator::Store::new();
    emulator::generate(
        &mut store,
        &GenSpec::parse("seed=3,folders=1,items=1,versions=1").unwrap(),
    );
    let emu = emulator(store, false).await;
    let client = app_client(&emu.base_url()).await;
    let hub = client.hubs().await.unwrap().remove(0);
    let project = client.projects(&hub.id).await.unwrap().remove(0);
    let top = client.top_folders(&hub.id, &project.id).await.unwrap();
    let mut storage = None;
    for f in &top {
        for e in client
            .folder_contents(&project.id, &f.id, None)
            .await
            .unwrap()
        {
            if let Entry::Item(i) = e {
                storage = storage.or(i.tip.and_then(|t| Some((t.storage?, t.size?))));
            }
        }
    }
    let (storage, size) = storage.expect("a file");
    assert!(
        client.read(&storage, size, 0, 1).await.is_ok(),
        "fine without faults"
    );

    // A client that has not cached a URL for the file yet, so its read starts with a fetch.
    let fresh = app_client(&emu.base_url()).await;
    emu.set_faults(FaultConfig {
        latency_ms: 1000,
        url_ttl_secs: 1,
        ..FaultConfig::default()
    })
    .unwrap();
    emu.reset_stats();
    let got = fresh.read(&storage, size, 0, 1).await;
    assert!(matches!(got, Err(ApiError::Forbidden(_))), "{got:?}");
    let requests = emu.stats()["requests"].clone();
    assert_eq!(
        requests["signeds3download"],
        serde_json::json!(1 + URL_REFRESHES),
        "{requests}"
    );
    emu.stop().await.unwrap();
}

// --- Batch signing -----------------------------------------------------------------------------

/// Files in the generated "Flat" folder of the batch tests: more than two batches of 25.
const FLAT: usize = 60;

/// An emulator serving a generated "Flat" folder of `FLAT` small files (all in one bucket).
async fn flat_emulator() -> emulator::Running {
    let mut store = emulator::Store::new();
    emulator::generate(
        &mut store,
        &GenSpec::parse(&format!("seed=5,folders=0,items=0,size=1KiB,flat={FLAT}")).unwrap(),
    );
    emulator(store, false).await
}

/// The (storage URN, size) of every file in the "Flat" folder.
async fn flat_files(client: &ApsClient) -> Vec<(String, u64)> {
    let hub = client.hubs().await.unwrap().remove(0);
    let project = client.projects(&hub.id).await.unwrap().remove(0);
    let mut files = Vec::new();
    for top in client.top_folders(&hub.id, &project.id).await.unwrap() {
        for e in client
            .folder_contents(&project.id, &top.id, None)
            .await
            .unwrap()
        {
            let Entry::Folder(f) = e else { continue };
            if f.name != "Flat" {
                continue;
            }
            for e in client
                .folder_contents(&project.id, &f.id, None)
                .await
                .unwrap()
            {
                if let Entry::Item(i) = e {
                    let tip = i.tip.expect("tip");
                    files.push((tip.storage.expect("storage"), tip.size.expect("size")));
                }
            }
        }
    }
    assert_eq!(files.len(), FLAT, "the Flat folder is listed whole");
    files
}

/// Requests the emulator answered on `route` since its stats were reset.
fn count(emu: &emulator::Running, route: &str) -> u64 {
    emu.stats()["requests"][route].as_u64().unwrap_or(0)
}

/// Reads every file whole and checks its bytes against the generated ones.
async fn read_all(client: &ApsClient, files: &[(String, u64)]) {
    for (storage, size) in files {
        let got = client.read(storage, *size, 0, *size).await.unwrap();
        let (_, key) = apsfs::api::oss::split_storage(storage).unwrap();
        let mut want = vec![0; usize::try_from(*size).unwrap()];
        emulator::testing::generated_fill(emulator::testing::seed_for_key(key), 0, &mut want);
        assert_eq!(got.as_ref(), want.as_slice(), "{storage}");
    }
}

/// `prepare_many` signs 60 objects of one bucket in 3 batch requests (a missing object among them
/// costs nothing extra and signs nothing), after which reading them all signs nothing more.
#[tokio::test]
async fn prepare_many_signs_in_batches_of_25_and_reads_then_sign_nothing() {
    let emu = flat_emulator().await;
    let client = app_client(&emu.base_url()).await;
    let files = flat_files(&client).await;
    let (bucket, _) = apsfs::api::oss::split_storage(&files[0].0).unwrap();
    let missing = format!(
        "{}{bucket}/no-such-object.bin",
        apsfs::api::oss::OBJECT_URN_PREFIX
    );
    let mut storages: Vec<String> = files.iter().map(|(s, _)| s.clone()).collect();
    storages.insert(30, missing.clone());

    emu.reset_stats();
    client.prepare_many(&storages).await;
    assert_eq!(count(&emu, "batchsigneds3download"), 3, "ceil(61 / 25)");
    assert_eq!(count(&emu, "signeds3download"), 0);

    read_all(&client, &files).await;
    assert_eq!(
        count(&emu, "signeds3download"),
        0,
        "every URL came from a batch"
    );
    assert_eq!(count(&emu, "batchsigneds3download"), 3);

    // The missing object was left to its read, which reports it.
    let got = client.read(&missing, 1, 0, 1).await;
    assert!(matches!(got, Err(ApiError::NotFound(_))), "{got:?}");
    assert_eq!(count(&emu, "signeds3download"), 1);

    // Everything is signed now: preparing again asks for nothing.
    client.prepare_many(&storages[..FLAT / 2]).await;
    assert_eq!(count(&emu, "batchsigneds3download"), 3);
    emu.stop().await.unwrap();
}

/// Reads that start while a batch naming their objects is out wait for it and sign nothing on
/// their own (with 200 ms of latency, each would otherwise have time to).
#[tokio::test]
async fn reads_during_a_batch_wait_for_it() {
    let emu = flat_emulator().await;
    let client = app_client(&emu.base_url()).await;
    let files = flat_files(&client).await;
    let storages: Vec<String> = files.iter().map(|(s, _)| s.clone()).collect();
    emu.set_faults(FaultConfig {
        latency_ms: 200,
        ..FaultConfig::default()
    })
    .unwrap();
    emu.reset_stats();
    let batch = client.prepare_many(&storages[..25]);
    let reads = async {
        // Started after the batch went out, before its answer is back.
        tokio::time::sleep(Duration::from_millis(50)).await;
        read_all(&client, &files[..25]).await;
    };
    tokio::join!(batch, reads);
    assert_eq!(count(&emu, "batchsigneds3download"), 1);
    assert_eq!(count(&emu, "signeds3download"), 0, "no read signed alone");
    emu.stop().await.unwrap();
}

/// A service that refuses batch requests is asked once per client: `prepare_many` then signs
/// each object on its own, and later calls go straight to single signing.
#[tokio::test]
async fn a_refused_batch_is_remembered_and_objects_are_signed_one_by_one() {
    let emu = flat_emulator().await;
    let client = app_client(&emu.base_url()).await;
    let files = flat_files(&client).await;
    let storages: Vec<String> = files.iter().map(|(s, _)| s.clone()).collect();
    emu.set_faults(FaultConfig {
        refuse_batch: true,
        ..FaultConfig::default()
    })
    .unwrap();

    emu.reset_stats();
    let (first, second) = storages.split_at(FLAT / 2);
    client.prepare_many(first).await;
    assert_eq!(count(&emu, "batchsigneds3download"), 1, "refused once");
    assert_eq!(count(&emu, "signeds3download"), first.len() as u64);

    client.prepare_many(second).await;
    assert_eq!(
        count(&emu, "batchsigneds3download"),
        1,
        "the refusal is remembered"
    );
    assert_eq!(count(&emu, "signeds3download"), FLAT as u64);

    read_all(&client, &files).await;
    assert_eq!(
        count(&emu, "signeds3download"),
        FLAT as u64,
        "reads use the prepared URLs"
    );
    emu.stop().await.unwrap();
}

// --- Writes ------------------------------------------------------------------------------------

/// A client with app credentials asking for the scopes of `access`, connected to `base`.
async fn client_with(base: &str, access: Access) -> Arc<ApsClient> {
    connect(&Connection {
        base_url: base.to_string(),
        credentials: Credentials::client("c", "s", access, false),
        user_id: None,
        rate_limits: false,
    })
    .await
    .unwrap()
}

/// Bytes of a test file: `len` bytes that differ with `seed` and along the file.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

/// Uploads `parts` (one storage object for `name` in `folder`), signing URLs one part at a time
/// after the first so a continued upload (`uploadKey`) is used; the storage URN.
async fn upload(
    client: &ApsClient,
    project: &str,
    folder: &str,
    name: &str,
    parts: &[&[u8]],
) -> String {
    let storage = client.create_storage(project, folder, name).await.unwrap();
    let first = client.upload_urls(&storage, 1, 1, None).await.unwrap();
    let mut urls = first.urls.clone();
    for n in 2..=parts.len() as u32 {
        let more = client
            .upload_urls(&storage, n, 1, Some(&first.upload_key))
            .await
            .unwrap();
        assert_eq!(more.upload_key, first.upload_key);
        urls.extend(more.urls);
    }
    let mut etags = Vec::new();
    for (url, bytes) in urls.iter().zip(parts) {
        let tag = client
            .put_part(url, bytes::Bytes::copy_from_slice(bytes))
            .await
            .unwrap();
        etags.push(tag);
    }
    let size: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let stored = client
        .complete_upload(&storage, &first.upload_key, size, &etags)
        .await
        .unwrap();
    assert_eq!(stored, size);
    storage
}

/// The whole write seam against the emulator: storage, a two-part upload (the first part the
/// 5 MiB minimum), a new item, a new version from a second upload, a new folder, the item's
/// tip as it is now, the bytes read back through a signed download, and 409 for taken names.
/// A read-only token may create nothing.
#[tokio::test]
async fn files_and_folders_are_created_and_read_back() {
    let mut store = emulator::Store::new();
    emulator::generate(
        &mut store,
        &GenSpec::parse("seed=11,folders=1,items=1,versions=1").unwrap(),
    );
    let emu = emulator(store, false).await;
    let base = emu.base_url();
    let client = client_with(&base, Access::ReadWrite).await;
    let hub = client.hubs().await.unwrap().remove(0);
    let project = client.projects(&hub.id).await.unwrap().remove(0).id;
    let top = client
        .top_folders(&hub.id, &project)
        .await
        .unwrap()
        .remove(0);
    let flavour = Flavour::of(top.meta.ext_type.as_deref());

    let one = pattern(1, 5 << 20);
    let two = pattern(2, 1000);
    let storage = upload(&client, &project, &top.id, "made.bin", &[&one, &two]).await;
    let item = client
        .create_item(&project, &top.id, "made.bin", &storage, flavour)
        .await
        .unwrap();
    let tip = item.tip.clone().expect("the new item's tip");
    let size = (one.len() + two.len()) as u64;
    assert_eq!(tip.number, 1);
    assert_eq!(tip.name, "made.bin");
    assert_eq!(tip.storage.as_deref(), Some(storage.as_str()));
    assert_eq!(tip.size, Some(size));
    let got = client.read(&storage, size, 0, size).await.unwrap();
    assert_eq!(got.len() as u64, size);
    assert!(got[..one.len()] == one[..] && got[one.len()..] == two[..]);

    let three = pattern(3, 4321);
    let second = upload(&client, &project, &top.id, "made.bin", &[&three]).await;
    let v2 = client
        .create_version(&project, &item.id, "made.bin", &second, flavour)
        .await
        .unwrap();
    assert_eq!(v2.number, 2);
    assert_eq!(v2.storage.as_deref(), Some(second.as_str()));

    let now = client.item(&project, &item.id).await.unwrap();
    let tip = now.tip.expect("tip");
    assert_eq!((tip.number, tip.id.as_str()), (2, v2.id.as_str()));
    assert!(now.meta.reserved.is_none());
    let got = client.read(&second, 4321, 0, 4321).await.unwrap();
    assert_eq!(got.as_ref(), three.as_slice());

    let made = client
        .create_folder(&project, &top.id, "Made here", flavour)
        .await
        .unwrap();
    assert_eq!(made.name, "Made here");
    let listed = client
        .folder_contents(&project, &top.id, None)
        .await
        .unwrap();
    let names: Vec<String> = listed
        .iter()
        .map(|e| match e {
            Entry::Folder(f) => f.name.clone(),
            Entry::Item(i) => i.tip.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
        })
        .collect();
    assert!(names.iter().any(|n| n == "made.bin"), "{names:?}");
    assert!(names.iter().any(|n| n == "Made here"), "{names:?}");

    let third = upload(&client, &project, &top.id, "made.bin", &[b"x"]).await;
    let taken = client
        .create_item(&project, &top.id, "made.bin", &third, flavour)
        .await;
    assert!(
        matches!(taken, Err(ApiError::Refused { status: 409, .. })),
        "{taken:?}"
    );
    let taken = client
        .create_folder(&project, &top.id, "Made here", flavour)
        .await;
    assert!(
        matches!(taken, Err(ApiError::Refused { status: 409, .. })),
        "{taken:?}"
    );

    let reader = client_with(&base, Access::Read).await;
    let refused = reader.create_storage(&project, &top.id, "no.bin").await;
    assert!(
        matches!(refused, Err(ApiError::Forbidden(_))),
        "a read-only token creates nothing: {refused:?}"
    );
    emu.stop().await.unwrap();
}

// --- User tokens -------------------------------------------------------------------------------

/// A fresh user login from the emulator (authorize, then the code exchange), already due
/// for a refresh.
async fn due_login(base: &str) -> Login {
    let pkce = Pkce::new().unwrap();
    let redirect = "http://127.0.0.1:9/callback";
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(auth_url(base, "authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", redirect),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let code = loc.split("code=").nth(1).unwrap().to_string();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let g = request_token(
        &reqwest::Client::new(),
        &auth_url(base, "token"),
        &ClientAuth::Public("app"),
        &form,
    )
    .await
    .unwrap();
    let now = now_secs();
    Login {
        client_id: "app".into(),
        client_secret: None,
        scopes: "data:read".into(),
        access_token: g.access_token,
        refresh_token: g.refresh_token.unwrap(),
        issued_at: now - 3600,
        expires_at: now - 1,
    }
}

fn source(store: &Store, login: &Login, base: &str) -> TokenSource {
    let creds = Credentials::User {
        store: store.clone(),
        login: login.clone(),
    };
    let http = apsfs::api::transport::http_client().unwrap();
    TokenSource::new(creds, base, http)
}

/// A due login for `base`, saved in a credentials file of a temporary directory of its own.
async fn stored_login(base: &str) -> (tempfile::TempDir, Store, Login) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::in_dir(dir.path().join("apsfs"));
    let login = due_login(base).await;
    store.save(base, &login).unwrap();
    (dir, store, login)
}

#[tokio::test]
async fn a_refresh_token_is_never_sent_to_another_origin() {
    let emu = emulator(emulator::Store::new(), false).await;
    let base = emu.base_url();
    let (_dir, store, login) = stored_login(&base).await;
    emu.set_faults(FaultConfig {
        redirect: emulator::Redirect::TokenForeign,
        ..FaultConfig::default()
    })
    .unwrap();
    emu.reset_stats();
    let got = source(&store, &login, &base).token().await;
    assert!(matches!(got, Err(ApiError::Redirected(_))), "{got:?}");
    let stats = emu.stats();
    assert_eq!(stats["redirects"], 1, "{stats}");
    assert_eq!(stats["foreign"]["requests"], 0, "{stats}");
    assert_eq!(
        store.load(&base).unwrap(),
        Some(login),
        "nothing another host said was saved"
    );
}

/// How long a stored login's access token may still be handed out (zero when it is due): the
/// client's rule (private to `src/api/auth.rs`), a fifth of the lifetime early, at most five
/// minutes.
fn usable_for(login: &Login) -> Duration {
    let secs = |s: i64| Duration::from_secs(u64::try_from(s).unwrap_or(0));
    let lifetime = secs(login.expires_at - login.issued_at);
    let margin = (lifetime / 5).min(Duration::from_secs(300));
    secs(login.expires_at - now_secs()).saturating_sub(margin)
}

#[tokio::test]
async fn user_tokens_rotate_persist_and_are_shared_between_processes() {
    // Refresh tokens are single use, so a process refreshing with a spent one would fail.
    let emu = emulator(emulator::Store::new(), true).await;
    let base = emu.base_url();
    let (_dir, store, first) = stored_login(&base).await;

    let a = source(&store, &first, &base);
    let ta = a.token().await.unwrap();
    assert_ne!(ta, first.access_token, "a due token is refreshed");
    let saved = store.load(&base).unwrap().unwrap();
    assert_ne!(saved.refresh_token, first.refresh_token, "rotation saved");
    assert_eq!(saved.access_token, ta);
    assert!(usable_for(&saved) > Duration::ZERO);

    // Another process still holding the first (now spent) login picks up the saved one
    // instead of refreshing with a spent token.
    let b = source(&store, &first, &base);
    assert_eq!(b.token().await.unwrap(), ta);
    // Once that token is refused it refreshes, with the newest refresh token.
    assert!(b.invalidate(&ta).await);
    let tb = b.token().await.unwrap();
    assert_ne!(tb, ta);
    let again = store.load(&base).unwrap().unwrap();
    assert_ne!(again.refresh_token, saved.refresh_token);

    // A revoked login says how to get a new one.
    revoke_refresh_token(&reqwest::Client::new(), &base, &again)
        .await
        .unwrap();
    assert!(b.invalidate(&tb).await);
    let e = b.token().await.unwrap_err().to_string();
    assert!(e.contains("can no longer be refreshed"), "{e}");
    assert!(
        e.contains(&format!("run `apsfs login --base-url {base}` again")),
        "{e}"
    );
    assert!(!e.contains(&again.refresh_token), "{e}");

    // So does a login removed by `apsfs logout`.
    store.remove(&base).unwrap();
    assert!(a.invalidate(&ta).await);
    let e = a.token().await.unwrap_err().to_string();
    assert!(e.contains("was removed"), "{e}");
    emu.stop().await.unwrap();
}
