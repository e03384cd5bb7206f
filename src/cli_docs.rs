//! Shell completions and man pages, both generated from the clap definitions of `main.rs`, so
//! they always say what the parser accepts; and the `--log-level` filter.

use clap::Command;
use std::io::Write;
use std::path::Path;

/// The filter the logging starts with: `--log-level` when given, else `RUST_LOG` when set (and
/// valid), else `info` with fuser's mount helper held to errors.
pub fn log_filter(flag: Option<&str>) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    const DEFAULT: &str = "info,fuser::mnt=error";
    match flag {
        Some(f) => EnvFilter::try_new(f).unwrap_or_else(|_| EnvFilter::new(DEFAULT)),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT)),
    }
}

/// The levels a bare `--log-level` word may name.
const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// Parses `--log-level`: a bare level (`error`, `warn`, `info`, `debug`, `trace`, `off`) or a full
/// filter directive as `RUST_LOG` takes (`apsfs=debug,info`). A bare level at `info` or quieter
/// keeps fuser's mount helper at errors, as the default does. A bare word that is no level is
/// refused (tracing would read it as a target name and log nothing of apsfs): `TARGET=LEVEL` says
/// that.
pub fn parse_log_level(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty; give error, warn, info, debug, trace or a filter directive".into());
    }
    let bare = !s.contains(['=', ',', '[', ':']);
    if bare {
        let level = s.to_ascii_lowercase();
        if !LEVELS.contains(&level.as_str()) {
            return Err(format!(
                "not a level: give one of {} or a filter directive such as `apsfs=debug,info`",
                LEVELS.join(", ")
            ));
        }
        return Ok(match level.as_str() {
            "debug" | "trace" | "off" => level,
            _ => format!("{level},fuser::mnt=error"),
        });
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a valid filter directive: {e}"))
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell, mut cmd: Command) -> Result<(), String> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "apsfs", &mut script);
    write_stdout(&script)
}

/// Prints the man page of `apsfs` (or of `apsfs SUBCOMMAND`) on stdout, or with `dir` writes
/// every page, `apsfs.1` and `apsfs-SUBCOMMAND.1`, into it.
pub fn man(cmd: Command, subcommand: Option<&str>, dir: Option<&Path>) -> Result<(), String> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        for (name, page) in pages(&cmd)? {
            let path = dir.join(format!("{name}.1"));
            std::fs::write(&path, page)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("{}", path.display());
        }
        return Ok(());
    }
    let page = match subcommand {
        None => page(&cmd, &cmd)?,
        Some(name) => {
            let sub = cmd
                .get_subcommands()
                .find(|s| s.get_name() == name)
                .ok_or_else(|| {
                    format!(
                        "no subcommand {name:?}; one of: {}",
                        cmd.get_subcommands()
                            .map(|s| s.get_name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            page(&cmd, sub)?
        }
    };
    write_stdout(&page)
}

/// Every page: the top one, then one per subcommand, with their file stems.
fn pages(top: &Command) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut all = vec![("apsfs".to_owned(), page(top, top)?)];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        all.push((page_name(sub), page(top, sub)?));
    }
    Ok(all)
}

/// `apsfs-mount` for the mount subcommand (clap's display name once built).
fn page_name(cmd: &Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned()
}

/// One roff page: clap_mangen's rendering, then ENVIRONMENT (top page) and SEE ALSO.
fn page(top: &Command, cmd: &Command) -> Result<Vec<u8>, String> {
    let is_top = std::ptr::eq(top, cmd);
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .source(format!("apsfs {}", env!("CARGO_PKG_VERSION")))
        .manual("apsfs manual")
        .render(&mut out)
        .map_err(|e| e.to_string())?;
    if is_top {
        out.extend_from_slice(
            b".SH ENVIRONMENT\n\
              .TP\n\\fBRUST_LOG\\fR\n\
              Log filter (tracing's EnvFilter syntax) when \\fB\\-\\-log\\-level\\fR is not given; \
              default \\fBinfo\\fR.\n\
              .TP\n\\fBAPS_TOKEN\\fR\n\
              A ready access token for \\fBapsfs mount\\fR, instead of client credentials or a login.\n\
              .TP\n\\fBAPS_BASE_URL\\fR, \\fBAPS_CLIENT_ID\\fR, \\fBAPS_CLIENT_SECRET\\fR, \\fBAPS_USER_ID\\fR\n\
              Defaults of the options of the same names.\n",
        );
    }
    let mut see_also: Vec<String> = Vec::new();
    if !is_top {
        see_also.push("apsfs".to_owned());
    }
    see_also.extend(
        top.get_subcommands()
            .filter(|s| !s.is_hide_set() && !std::ptr::eq(*s, cmd))
            .map(page_name),
    );
    out.extend_from_slice(b".SH \"SEE ALSO\"\n");
    let refs: Vec<String> = see_also
        .iter()
        .map(|n| format!("\\fB{}\\fR(1)", n.replace('-', "\\-")))
        .collect();
    out.extend_from_slice(refs.join(", ").as_bytes());
    out.push(b'\n');
    Ok(out)
}

fn write_stdout(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))
}

#[cfg(test)]
mod tests {
    use super::parse_log_level;

    #[test]
    fn log_levels_and_directives() {
        assert_eq!(parse_log_level("debug").unwrap(), "debug");
        assert_eq!(parse_log_level("TRACE").unwrap(), "trace");
        assert_eq!(parse_log_level("info").unwrap(), "info,fuser::mnt=error");
        assert_eq!(parse_log_level("warn").unwrap(), "warn,fuser::mnt=error");
        assert_eq!(
            parse_log_level("apsfs=debug,info").unwrap(),
            "apsfs=debug,info"
        );
        assert_eq!(
            parse_log_level("apsfs::fs=trace").unwrap(),
            "apsfs::fs=trace"
        );
        for bad in ["", " ", "verbose", "apsfs=loud", "info,apsfs=nope"] {
            assert!(parse_log_level(bad).is_err(), "{bad:?}");
        }
    }
}
