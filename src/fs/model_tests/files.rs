//! Files through the mount: opened by path, read at random offsets or from start to end, every
//! byte checked against the version the handle was opened on.

use super::account::{Id, Node, Shown};
use super::run::{fail, pick, OpenFile, Run};
use crate::api::Remote;
use proptest::test_runner::TestCaseError;

impl<R: Remote> Run<R> {
    /// Looks up a file's path and opens it, keeping the handle.
    pub(super) async fn open(&mut self, file: usize) -> Result<(), TestCaseError> {
        let files: Vec<Id> = (0..self.model.tree().len())
            .filter(|&i| matches!(self.model.tree()[i], Node::File { .. }))
            .collect();
        let Some(file) = pick(&files, file) else {
            return Ok(());
        };
        let Some(ino) = self.walk(file).await? else {
            return Ok(());
        };
        let Some(&Shown::File(version)) = self.key_of.get(&ino) else {
            return fail(format!("{} is no file", self.model.path(file)));
        };
        let since = self.injections();
        match self.fs.open(ino, false).await {
            Ok(fh) => self.files.push(OpenFile {
                fh,
                ino,
                version,
                injected_at_open: since,
            }),
            Err(e) => {
                let what = format!("open {}", self.model.path(file));
                self.allow(since, &e, &what)?;
            }
        }
        Ok(())
    }

    /// One of the open files (index and size of its version), opening one first when none
    /// is; `None` when there is nothing to open.
    async fn some_open(&mut self, handle: usize) -> Result<Option<(usize, u64)>, TestCaseError> {
        if self.files.is_empty() {
            self.open(handle).await?;
        }
        if self.files.is_empty() {
            return Ok(None);
        }
        let h = handle % self.files.len();
        let size = self.model.versions[self.files[h].version].bytes.len() as u64;
        Ok(Some((h, size)))
    }

    /// Reads `len` bytes at `at` / 65535 of an open file's size (and a little beyond),
    /// opening one first when none is.
    pub(super) async fn read_at(
        &mut self,
        handle: usize,
        at: u16,
        len: u32,
    ) -> Result<(), TestCaseError> {
        let Some((h, size)) = self.some_open(handle).await? else {
            return Ok(());
        };
        let offset = (size + 4096) * u64::from(at) / u64::from(u16::MAX);
        self.read(h, offset, len).await?;
        Ok(())
    }

    /// Reads an open file from start to end in `chunk`s, as `cat` does (and so read-ahead
    /// kicks in), opening one first when none is.
    pub(super) async fn read_all(
        &mut self,
        handle: usize,
        chunk: u32,
    ) -> Result<(), TestCaseError> {
        let Some((h, size)) = self.some_open(handle).await? else {
            return Ok(());
        };
        let mut offset = 0;
        while offset <= size {
            if !self.read(h, offset, chunk).await? {
                break;
            }
            offset += u64::from(chunk);
        }
        Ok(())
    }

    /// Closes an open file.
    pub(super) async fn release(&mut self, handle: usize) {
        if !self.files.is_empty() {
            let f = self.files.remove(handle % self.files.len());
            self.fs.release(f.fh).await;
        }
    }

    /// Reads `len` bytes at `offset` of open file `h`, checked against the version it was
    /// opened on; whether the read succeeded and was not past the end.
    async fn read(&mut self, h: usize, offset: u64, len: u32) -> Result<bool, TestCaseError> {
        let (fh, version, since) = (
            self.files[h].fh,
            self.files[h].version,
            self.files[h].injected_at_open,
        );
        let bytes = self.model.versions[version].bytes.clone();
        let size = bytes.len() as u64;
        let what = format!("read of {len} bytes at {offset} of version {version} ({size} bytes)");
        match self.fs.read(fh, offset, len).await {
            Ok(got) => {
                let from = offset.min(size) as usize;
                let to = (offset + u64::from(len)).min(size) as usize;
                let want = &bytes[from..to];
                if got[..] != *want {
                    let first = got.iter().zip(want).position(|(a, b)| a != b);
                    return fail(format!(
                        "{what}: got {} bytes, want {}; first difference at {first:?}",
                        got.len(),
                        want.len()
                    ));
                }
                Ok(offset < size)
            }
            Err(e) => {
                // Read-ahead may have fetched the failed part in an earlier step.
                self.allow(since, &e, &what)?;
                Ok(false)
            }
        }
    }
}
