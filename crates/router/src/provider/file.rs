//! The file provider: `providers.file.filename` or `directory`, with `watch` for hot reload.
//! A change is noticed by comparing every file's bytes (edits in place, atomic renames, files
//! added to or removed from the directory), polled twice a second: cheap for configuration
//! files, and it works on every file system, where inotify misses renames over NFS.

use std::path::PathBuf;
use std::time::Duration;

use super::{Provider, Update};
use crate::config::dynamic::{dynamic_paths, load_file_layer, Layer, FILE_PROVIDER};
use crate::config::ConfigErrors;

pub struct FileProvider {
    files: Vec<PathBuf>,
    directory: Option<PathBuf>,
    watch: bool,
    every: Duration,
    last: Vec<(PathBuf, Vec<u8>)>,
}

impl FileProvider {
    pub fn new(files: Vec<PathBuf>, directory: Option<PathBuf>, watch: bool) -> FileProvider {
        FileProvider {
            files,
            directory,
            watch,
            every: Duration::from_millis(500),
            last: Vec::new(),
        }
    }

    /// The bytes of every dynamic configuration file.
    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        dynamic_paths(&self.files, self.directory.as_deref())
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap_or_default();
                (p, bytes)
            })
            .collect()
    }

    fn read(&self) -> Result<Layer, ConfigErrors> {
        load_file_layer(&self.files, self.directory.as_deref())
    }
}

impl Provider for FileProvider {
    fn name(&self) -> &'static str {
        FILE_PROVIDER
    }

    async fn load(&mut self) -> Result<Layer, ConfigErrors> {
        self.last = self.snapshot();
        self.read()
    }

    async fn next_update(&mut self) -> Update {
        if !self.watch {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep(self.every).await;
            let now = self.snapshot();
            if now == self.last {
                continue;
            }
            self.last = now;
            return match self.read() {
                Ok(c) => Update::Changed(c),
                Err(e) => Update::Failed(e),
            };
        }
    }
}
