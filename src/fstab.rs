//! The form `mount -t fuse.apsfs` (fuse3's `mount.fuse3` helper, and so `/etc/fstab` and
//! systemd mount units) runs apsfs in: `apsfs SOURCE MOUNTPOINT -o OPTIONS`. It becomes
//! `apsfs mount MOUNTPOINT --project SOURCE --OPTION …`: SOURCE is `HUB/PROJECT` (`-` for
//! every hub), each option is a long flag with `_` for `-` (`metadata_ttl=60`,
//! `allow_other`, `read_write`), the generic mount options that mount(8) and the helper deal
//! with (`_netdev`, `nofail`, `noauto`, `user`, `rw`, `dev`, `suid`, `x-systemd.*`, …) are
//! accepted and dropped, and `credentials_file=FILE` reads the credentials that fstab cannot
//! give as environment variables.

use std::ffi::OsString;
use std::path::Path;

/// Options mount(8), `mount.fuse3` and systemd act on themselves; apsfs accepts and drops
/// them.
const GENERIC: &[&str] = &[
    "_netdev",
    "nofail",
    "noauto",
    "auto",
    "user",
    "users",
    "nouser",
    "owner",
    "group",
    "defaults",
    "rw",
    "ro",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "async",
    "sync",
    "atime",
    "noatime",
    "relatime",
    "strictatime",
    "nodiratime",
    "diratime",
    "silent",
    "loud",
];

/// The environment variables a credentials file may set.
const CREDENTIALS: &[&str] = &[
    "APS_CLIENT_ID",
    "APS_CLIENT_SECRET",
    "APS_TOKEN",
    "APS_USER_ID",
];

/// A command line in the ordinary form, and the variables a `credentials_file` sets.
pub type Translated = (Vec<OsString>, Vec<(String, String)>);

/// `args` (the whole command line) in the ordinary form, when it is the mount helper's
/// form; the variables of a `credentials_file` come back to be set before parsing.
pub fn translate(args: &[OsString], subcommands: &[String]) -> Result<Option<Translated>, String> {
    let [program, source, mountpoint, rest @ ..] = args else {
        return Ok(None);
    };
    let source = source.to_string_lossy();
    let is_form = !source.starts_with('-') || source == "-";
    if !is_form || subcommands.iter().any(|s| *s == source) || !rest.iter().any(|a| a == "-o") {
        return Ok(None);
    }
    let mut out: Vec<OsString> = vec![program.clone(), "mount".into(), mountpoint.clone()];
    if source != "-" {
        out.push("--project".into());
        out.push(source.to_string().into());
    }
    let mut env = Vec::new();
    let mut words = rest.iter();
    while let Some(w) = words.next() {
        if w.to_string_lossy().starts_with("--") {
            // A flag of the ordinary form (the background mount re-runs itself with the same
            // words and `--foreground`).
            out.push(w.clone());
            continue;
        }
        if w != "-o" {
            return Err(format!(
                "mount helper form: expected -o OPTIONS, found {:?}",
                w.to_string_lossy()
            ));
        }
        let opts = words
            .next()
            .ok_or("mount helper form: -o without options")?
            .to_string_lossy()
            .into_owned();
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            let (key, value) = match opt.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (opt, None),
            };
            if GENERIC.contains(&key) || key.starts_with("x-") || key == "comment" {
                continue;
            }
            if key == "credentials_file" {
                let file = value.ok_or("credentials_file needs a file: credentials_file=FILE")?;
                env.extend(read_credentials(Path::new(file))?);
                continue;
            }
            out.push(format!("--{}", key.replace('_', "-")).into());
            if let Some(v) = value {
                out.push(v.into());
            }
        }
    }
    Ok(Some((out, env)))
}

/// The `KEY=VALUE` lines of a credentials file (`#` comments and blank lines aside): only the
/// `APS_*` credentials, from a file no one but its owner may read (it holds a secret).
pub fn read_credentials(path: &Path) -> Result<Vec<(String, String)>, String> {
    use std::os::unix::fs::PermissionsExt;
    let at = |e: std::io::Error| format!("credentials_file {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(at)?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "credentials_file {} may be read by others: chmod 600 it",
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(at)?;
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!(
                "credentials_file {} line {}: expected KEY=VALUE",
                path.display(),
                n + 1
            ));
        };
        let key = key.trim();
        if !CREDENTIALS.contains(&key) {
            return Err(format!(
                "credentials_file {} line {}: {key} is not one of {}",
                path.display(),
                n + 1,
                CREDENTIALS.join(", ")
            ));
        }
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        vars.push((key.to_string(), value.to_string()));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn subs() -> Vec<String> {
        vec!["mount".into(), "status".into()]
    }

    #[test]
    fn the_helper_form_becomes_a_mount_command() {
        let (out, env) = translate(
            &args(&[
                "apsfs",
                "Acme Hub/Tower",
                "/mnt/t",
                "-o",
                "rw,_netdev,nofail,base_url=http://x,metadata_ttl=5,allow_other,x-systemd.automount",
            ]),
            &subs(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            args(&[
                "apsfs",
                "mount",
                "/mnt/t",
                "--project",
                "Acme Hub/Tower",
                "--base-url",
                "http://x",
                "--metadata-ttl",
                "5",
                "--allow-other",
            ])
        );
        assert!(env.is_empty());
        let (all, _) = translate(
            &args(&["apsfs", "-", "/m", "-o", "ro", "--foreground"]),
            &subs(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(all, args(&["apsfs", "mount", "/m", "--foreground"]));
    }

    #[test]
    fn ordinary_command_lines_are_left_alone() {
        for a in [
            vec!["apsfs", "mount", "/m", "-o"],
            vec!["apsfs", "status"],
            vec!["apsfs", "--log-level", "debug", "status"],
            vec!["apsfs", "x", "/m"],
        ] {
            assert_eq!(translate(&args(&a), &subs()).unwrap(), None, "{a:?}");
        }
    }

    #[test]
    fn a_credentials_file_must_be_private_and_hold_only_credentials() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c.env");
        std::fs::write(
            &f,
            "# app\nAPS_CLIENT_ID=id\nexport APS_CLIENT_SECRET=\"s\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_credentials(&f).unwrap_err().contains("chmod 600"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_credentials(&f).unwrap(),
            [
                ("APS_CLIENT_ID".to_string(), "id".to_string()),
                ("APS_CLIENT_SECRET".to_string(), "s".to_string())
            ]
        );
        std::fs::write(&f, "HOME=/x\n").unwrap();
        assert!(read_credentials(&f).unwrap_err().contains("not one of"));
    }
}
