//! `DryRun`: a folder seen through `once --dry-run`: listed and read as it is, never written (puts and moves are reported as done, nothing happens).

use super::{Found, Listing, PutOutcome, RemoteDir, SafeName, TransportError, Visit};

/// Wraps a folder so that nothing is written to it.
pub struct DryRun<D: RemoteDir + ?Sized>(pub Box<D>);

impl<D: RemoteDir + Send + ?Sized> RemoteDir for DryRun<D> {
    fn describe(&self) -> String {
        format!("{} (dry run)", self.0.describe())
    }
    fn list_each(
        &mut self,
        visit: &mut dyn FnMut(Found<'_>) -> Visit,
    ) -> Result<(), TransportError> {
        self.0.list_each(visit)
    }
    fn list(&mut self) -> Result<Listing, TransportError> {
        self.0.list()
    }
    fn remove_leftover(&mut self, temp: &str) -> Result<(), TransportError> {
        tracing::info!(dir = %self.describe(), file = %temp, "dry run: would remove a leftover temporary file");
        Ok(())
    }
    fn read(&mut self, name: &SafeName, limit: u64) -> Result<Vec<u8>, TransportError> {
        self.0.read(name, limit)
    }
    fn read_many(
        &mut self,
        names: &[SafeName],
        limit: u64,
    ) -> Vec<Result<Vec<u8>, TransportError>> {
        self.0.read_many(names, limit)
    }
    fn put(&mut self, name: &SafeName, _bytes: &[u8]) -> Result<PutOutcome, TransportError> {
        tracing::info!(dir = %self.describe(), file = %name, "dry run: would put");
        Ok(PutOutcome::Created)
    }
    fn put_many(
        &mut self,
        files: &[(SafeName, Vec<u8>)],
    ) -> Vec<Result<PutOutcome, TransportError>> {
        files
            .iter()
            .map(|(name, bytes)| self.put(name, bytes))
            .collect()
    }
    fn move_into(&mut self, name: &SafeName, folder: &str) -> Result<(), TransportError> {
        tracing::info!(dir = %self.describe(), file = %name, %folder, "dry run: would move");
        Ok(())
    }
}
