//! The references' exact f32 values, one `dim`-sized record per arena slot, for the re-rank of
//! the scan's few candidates and for the pair sample. Small galleries keep them in memory; past
//! [`SPILL_BYTES`] they move to an unlinked temporary file (mode 0600, gone with the process)
//! read with `pread`, so that a million people's exact copy (512 MB at 128-d, 2 GB at 512-d)
//! sits in the kernel's page cache (reclaimable, not the process's resident memory) while the
//! int8 codes scanned on every search stay resident. A search reads a handful of records.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Exact values held in memory up to this size (≈ 131,000 references at 128-d).
pub const SPILL_BYTES: usize = 64 << 20;

#[derive(Debug)]
enum Records {
    Memory(Vec<f32>),
    /// `capacity` records of space reserved in the file (grown by doubling).
    File {
        file: File,
        capacity: usize,
    },
}

#[derive(Debug)]
pub struct ExactStore {
    dim: usize,
    len: usize,
    spill_bytes: usize,
    records: Records,
}

impl ExactStore {
    pub fn new(dim: usize, spill_bytes: usize) -> Self {
        ExactStore {
            dim,
            len: 0,
            spill_bytes,
            records: Records::Memory(Vec::new()),
        }
    }

    /// Whether the records live in the temporary file.
    pub fn spilled(&self) -> bool {
        matches!(self.records, Records::File { .. })
    }

    fn record_bytes(&self) -> usize {
        self.dim * 4
    }

    pub fn push(&mut self, values: &[f32]) {
        debug_assert_eq!(values.len(), self.dim);
        if let Records::Memory(v) = &self.records {
            if (v.len() + self.dim) * 4 > self.spill_bytes {
                self.spill();
            }
        }
        let slot = self.len;
        if self.spilled() {
            if let Err(e) = self.write(slot, values) {
                tracing::error!(
                    "gallery: the exact copy cannot grow on disk ({e}); keeping it in memory"
                );
                self.unspill();
            }
        }
        if let Records::Memory(v) = &mut self.records {
            v.extend_from_slice(values);
        }
        self.len += 1;
    }

    /// The record of `slot` into `out`.
    pub fn read(&self, slot: usize, out: &mut [f32]) -> io::Result<()> {
        debug_assert!(slot < self.len && out.len() == self.dim);
        match &self.records {
            Records::Memory(v) => {
                out.copy_from_slice(&v[slot * self.dim..(slot + 1) * self.dim]);
                Ok(())
            }
            Records::File { file, .. } => {
                let mut bytes = vec![0u8; self.record_bytes()];
                file.read_exact_at(&mut bytes, (slot * self.record_bytes()) as u64)?;
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
                Ok(())
            }
        }
    }

    /// Move the last record into `slot` (the arena's swap-remove) and zero the last one, so that
    /// no deleted face outlives its deletion in the file either.
    pub fn swap_remove(&mut self, slot: usize) -> io::Result<()> {
        let last = self.len - 1;
        let dim = self.dim;
        match &mut self.records {
            Records::Memory(v) => {
                v.copy_within(last * dim..(last + 1) * dim, slot * dim);
                v.truncate(last * dim);
            }
            Records::File { .. } => {
                if slot != last {
                    let mut moved = vec![0f32; dim];
                    self.read(last, &mut moved)?;
                    self.write(slot, &moved)?;
                }
                self.write(last, &vec![0f32; dim])?;
            }
        }
        self.len = last;
        Ok(())
    }

    fn write(&mut self, slot: usize, values: &[f32]) -> io::Result<()> {
        let record = self.record_bytes();
        let Records::File { file, capacity } = &mut self.records else {
            unreachable!("write is for the file");
        };
        if slot >= *capacity {
            let grown = (*capacity * 2).max(slot + 1).max(1024);
            reserve(file, grown * record)?;
            *capacity = grown;
        }
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        file.write_all_at(&bytes, (slot * record) as u64)
    }

    /// Move the records to a fresh unlinked file; on failure they stay in memory.
    fn spill(&mut self) {
        let Records::Memory(values) = &self.records else {
            return;
        };
        let written = temporary_file().and_then(|file| {
            let capacity = (self.len * 2).max(1024);
            reserve(&file, capacity * self.record_bytes())?;
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            file.write_all_at(&bytes, 0)?;
            Ok(Records::File { file, capacity })
        });
        match written {
            Ok(records) => self.records = records,
            Err(e) => {
                tracing::warn!("gallery: exact values stay in memory (no temporary file: {e})");
                self.spill_bytes = usize::MAX;
            }
        }
    }

    fn unspill(&mut self) {
        let mut values = vec![0f32; self.len * self.dim];
        for (slot, out) in values.chunks_exact_mut(self.dim).enumerate() {
            if self.read(slot, out).is_err() {
                out.fill(0.0);
            }
        }
        self.records = Records::Memory(values);
        self.spill_bytes = usize::MAX;
    }
}

/// Space on disk for `bytes`, so that later writes cannot fail for want of it.
fn reserve(file: &File, bytes: usize) -> io::Result<()> {
    // SAFETY: posix_fallocate only reads its arguments; the descriptor is open for writing.
    let rc = unsafe {
        libc::posix_fallocate(
            std::os::fd::AsRawFd::as_raw_fd(file),
            0,
            bytes as libc::off_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// A file in the temporary directory that only this process can reach: created exclusively,
/// readable by its owner only, and unlinked at once.
fn temporary_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::temp_dir().join(format!("rollcall-gallery-{}", uuid::Uuid::new_v4()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(store: &ExactStore, expected: &[Vec<f32>]) {
        let mut out = vec![0f32; 2];
        for (slot, e) in expected.iter().enumerate() {
            store.read(slot, &mut out).unwrap();
            assert_eq!(&out, e, "slot {slot}");
        }
    }

    #[test]
    fn records_survive_spilling_and_swap_removal() {
        // Spills at the third record.
        let mut store = ExactStore::new(2, 20);
        let mut expected: Vec<Vec<f32>> = Vec::new();
        for i in 0..5 {
            let v = vec![i as f32, -(i as f32) / 3.0];
            store.push(&v);
            expected.push(v);
        }
        assert!(store.spilled());
        check(&store, &expected);
        store.swap_remove(1).unwrap();
        expected.swap_remove(1);
        store.swap_remove(3).unwrap();
        expected.swap_remove(3);
        check(&store, &expected);
        store.push(&[9.0, 9.5]);
        expected.push(vec![9.0, 9.5]);
        check(&store, &expected);

        let mut memory = ExactStore::new(2, usize::MAX);
        memory.push(&[1.0, 2.0]);
        memory.push(&[3.0, 4.0]);
        memory.swap_remove(0).unwrap();
        assert!(!memory.spilled());
        check(&memory, &[vec![3.0, 4.0]]);
    }
}
