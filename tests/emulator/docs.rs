//! The demo set's documents open (issue 15): with the `docs` flag, generated `.txt`, `.md`,
//! `.csv`, `.json`, `.pdf`, `.png` and `.docx` files are real, small documents of their format,
//! downloaded here over HTTP and checked with the tools a newcomer would open them with: `file`,
//! `pdftotext` when installed, and LibreOffice headless for a DOCX (each skipped with a note
//! when the tool is missing).

use crate::support::dm::{folder_by_path, folder_entries, name_of};
use crate::support::emulator::Emulator;
use crate::support::oss::{fetch, signeds3download, storage_of};
use aps_emulator::testing::expected_bytes;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Every tip in `folder` (by path below the first top folder) as (name, bytes), each checked
/// against `expected_bytes`, the single truth of what a generated object holds.
async fn download_tips(emu: &Emulator, path: &[&str]) -> Vec<(String, Vec<u8>)> {
    let tok = emu.token().await;
    let (project, folder) = folder_by_path(emu, &tok, path).await;
    let (_, included) = folder_entries(emu, &tok, &project, &folder, false).await;
    let mut out = Vec::new();
    for v in &included {
        let name = name_of(v).to_string();
        let number = v["attributes"]["versionNumber"].as_u64().expect("number") as u32;
        let (bucket, key) = storage_of(v);
        let (status, body) = signeds3download(emu, &tok, &bucket, &key, "").await;
        assert_eq!(status, 200, "{name}: {body}");
        let (status, _, got) = fetch(body["url"].as_str().expect("url"), None).await;
        assert_eq!(status, 200, "{name}");
        let size = v["attributes"]["storageSize"].as_u64().expect("size");
        assert_eq!(
            got.len() as u64,
            size,
            "{name}: storageSize is the document's length"
        );
        assert_eq!(
            got,
            expected_bytes(&key, &name, number, size, true),
            "{name}"
        );
        out.push((name, got));
    }
    out
}

/// What `file -b` says about `bytes` saved as `name`.
fn file_type(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    let out = Command::new("file")
        .arg("-b")
        .arg(&path)
        .output()
        .expect("run file(1)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn demo_documents_open_as_their_format() {
    let emu = Emulator::start(&["--generate", aps_emulator::DEMO_SPEC]);
    let docs = download_tips(&emu, &["Documents"]).await;
    assert_eq!(docs.len(), 7, "one file per format");
    let dir = tempfile::tempdir().expect("tempdir");
    let pdftotext = have("pdftotext");
    if !pdftotext {
        eprintln!("note: pdftotext (poppler-utils) is not installed; PDF text not extracted");
    }
    for (name, bytes) in &docs {
        let kind = file_type(dir.path(), name, bytes);
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let title = format!("{name}, version");
        match ext {
            "txt" | "md" => {
                assert!(kind.contains("text"), "{name}: {kind}");
                let text = std::str::from_utf8(bytes).expect("utf-8");
                assert!(text.contains(&title), "{name}: {text}");
            }
            "csv" => {
                assert!(
                    kind.contains("CSV") || kind.contains("text"),
                    "{name}: {kind}"
                );
                let text = std::str::from_utf8(bytes).expect("utf-8");
                let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
                assert!(rows.len() > 1 && rows.iter().all(|r| r.len() == rows[0].len()));
                assert_eq!(rows[0][0], "id");
            }
            "json" => {
                assert!(
                    kind.contains("JSON") || kind.contains("text"),
                    "{name}: {kind}"
                );
                let v: Value = serde_json::from_slice(bytes).expect("valid JSON");
                assert!(v["title"].as_str().unwrap_or("").starts_with(&title), "{v}");
            }
            "pdf" => {
                assert!(
                    kind.starts_with("PDF document, version 1.4"),
                    "{name}: {kind}"
                );
                if pdftotext {
                    let out = Command::new("pdftotext")
                        .arg(dir.path().join(name))
                        .arg("-")
                        .output()
                        .expect("pdftotext");
                    assert!(out.status.success(), "{out:?}");
                    let text = String::from_utf8_lossy(&out.stdout);
                    assert!(text.contains(&title), "{text}");
                }
            }
            "png" => assert!(
                kind.starts_with("PNG image data, 32 x 32"),
                "{name}: {kind}"
            ),
            "docx" => assert!(kind.contains("Microsoft Word 2007+"), "{name}: {kind}"),
            _ => panic!("unexpected {name}"),
        }
    }

    // The generated tree: documents for document extensions, generated bytes for the rest
    // (download_tips checked both against expected_bytes), and text that reads as text.
    let tree = download_tips(&emu, &[]).await;
    assert!(tree.iter().any(|(n, _)| n.ends_with(".rvt")));
    for (name, bytes) in tree.iter().filter(|(n, _)| n.ends_with(".txt")) {
        let kind = file_type(dir.path(), name, bytes);
        assert!(kind.contains("text"), "{name}: {kind}");
    }
}

/// LibreOffice converts a demo DOCX headless (about two seconds with a fresh profile).
#[tokio::test]
async fn demo_docx_converts_with_libreoffice() {
    let Some(soffice) = ["soffice", "libreoffice"].into_iter().find(|t| have(t)) else {
        eprintln!("skipped: LibreOffice is not installed");
        return;
    };
    let emu = Emulator::start(&["--generate", aps_emulator::DEMO_SPEC]);
    let docs = download_tips(&emu, &["Documents"]).await;
    let (name, bytes) = docs
        .iter()
        .find(|(n, _)| n.ends_with(".docx"))
        .expect("a docx");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(name), bytes).expect("write");
    let profile = format!(
        "-env:UserInstallation=file://{}/profile",
        dir.path().display()
    );
    let out = Command::new(soffice)
        .args([profile.as_str(), "--headless", "--convert-to", "txt:Text"])
        .arg("--outdir")
        .arg(dir.path().join("out"))
        .arg(dir.path().join(name))
        .output()
        .expect("run LibreOffice");
    assert!(out.status.success(), "{out:?}");
    let txt = dir.path().join("out").join(name.replace(".docx", ".txt"));
    let text = std::fs::read_to_string(&txt).unwrap_or_else(|e| panic!("{txt:?}: {e}: {out:?}"));
    assert!(text.contains(&format!("{name}, version")), "{text}");
}
