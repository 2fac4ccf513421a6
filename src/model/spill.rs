//! A fixed number of items kept in a spill file: the large segments of a
//! node's timeline (`SpanVec`), so that a week of a node's log costs disk,
//! not memory.
//!
//! The file is mapped shared and has no name, so it is gone when rhscope
//! exits, however it exits. Its pages are the page cache's: once released
//! (`release`) they leave the process' resident memory but keep their
//! bytes, in the page cache while memory is free and on disk when it is
//! not, and the next read of them brings them back. Releasing never
//! changes what the items hold, which is what makes it safe to do while
//! they are borrowed.
//!
//! Linux only: elsewhere (and where no file can be made) segments stay on
//! the heap, as every segment did before.

use std::marker::PhantomData;

use memmap2::{MmapMut, MmapOptions};

/// Linux's fault-around: a read fault maps up to this much (aligned)
/// around it of what the page cache holds.
pub const AROUND: usize = 64 << 10;

/// How much of the file dropping walks before letting it go.
const RUN_BYTES: usize = 1 << 20;

/// Up to `cap` items of `T` in a mapped spill file.
pub struct Spilled<T> {
    map: MmapMut,
    len: usize,
    cap: usize,
    /// Owns its items as a `Vec<T>` would (and is Send / Sync as it is).
    _items: PhantomData<T>,
}

impl<T> Spilled<T> {
    /// Room for `cap` items in a new spill file in the temporary directory
    /// (`TMPDIR`), its blocks allocated now; None when that cannot be done
    /// (no such directory, read-only, full, a filesystem that cannot
    /// allocate), and the caller keeps the items on the heap.
    pub fn new(cap: usize) -> Option<Spilled<T>> {
        let size = std::mem::size_of::<T>();
        // A mapping starts on a page; a type aligned beyond one (none of
        // the spans) or with no size has no use for a file.
        if size == 0 || std::mem::align_of::<T>() > 4096 || cap == 0 {
            return None;
        }
        let bytes = cap.checked_mul(size)?;
        let file = imp::temp_file().ok()?;
        // Blocks allocated up front: a page written into a hole of a file
        // on a full disk is a SIGBUS, not an error to report.
        imp::allocate(&file, bytes).ok()?;
        // SAFETY: the file is this process' own, has no name and is open
        // nowhere else, so nothing changes it under the mapping.
        let map = unsafe { MmapOptions::new().len(bytes).map_mut(&file) }.ok()?;
        // No read-ahead: the page cache then holds the file a page at a
        // time (not in large folios a read could map whole), so a read
        // maps at most its fault-around window and `release` reaches all
        // a pass or a read mapped. Without it a pass over a large list
        // left megabytes mapped behind it at every run's edge.
        let _ = map.advise(memmap2::Advice::Random);
        Some(Spilled {
            map,
            len: 0,
            cap,
            _items: PhantomData,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds `item`, or gives it back when full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.len == self.cap {
            return Err(item);
        }
        // SAFETY: `len < cap` and the mapping holds `cap` items, aligned
        // (a page-aligned start, a multiple of T's size apart).
        unsafe { (self.map.as_mut_ptr() as *mut T).add(self.len).write(item) };
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the first `len` items were written by `push`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr() as *const T, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as `as_slice`, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr() as *mut T, self.len) }
    }

    /// Lets the pages of items `from..to` go from resident memory; their
    /// bytes stay in the file. Best effort: a refusal only leaves them
    /// resident.
    pub fn release(&self, from: usize, to: usize) {
        let size = std::mem::size_of::<T>();
        let to = to.min(self.len);
        if from >= to {
            return;
        }
        // Outward to whole windows of the kernel's fault-around: reading
        // an item maps the pages of its window that are in the page cache,
        // which can reach into the range before; rounded inward those
        // would never be let go. Releasing a page an item outside the
        // range shares costs that item a fault, nothing more.
        let start = (from * size) / AROUND * AROUND;
        let end = ((to * size).div_ceil(AROUND) * AROUND).min(self.map.len());
        if start < end {
            imp::release(&self.map, start, end - start);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
impl<T> Spilled<T> {
    /// This process' resident KiB of the mapping, from its entry in
    /// /proc/self/smaps (`mincore` would count the page cache's pages,
    /// which a release leaves be).
    pub fn resident_kib(&self) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let start = format!("{:x}-", self.map.as_ptr() as usize);
        smaps
            .lines()
            .skip_while(|l| !l.starts_with(&start))
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("the mapping's Rss line")
    }
}

impl<T> Spilled<T> {
    /// Maps the pages of items `from..to` ahead of their writing, in one
    /// call rather than a fault a page (each of which, on a fresh file,
    /// goes through the filesystem). Best effort, as `release`.
    pub fn prepare(&self, from: usize, to: usize) {
        let size = std::mem::size_of::<T>();
        let start = (from * size) / AROUND * AROUND;
        let end = ((to * size).div_ceil(AROUND) * AROUND).min(self.map.len());
        if start < end {
            imp::prepare(&self.map, start, end - start);
        }
    }
}

impl<T> Drop for Spilled<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        // A run at a time, each let go when dropped: dropping reads every
        // item, and all at once that mapped the whole file back in (the
        // peak of a node log's analysis, at its very end).
        let run = (RUN_BYTES / std::mem::size_of::<T>()).max(1);
        let base = self.map.as_mut_ptr() as *mut T;
        let mut at = 0;
        while at < self.len {
            let end = (at + run).min(self.len);
            // SAFETY: items `at..end` are initialised (below `len`) and
            // dropped once, here, each run after the one before; the
            // mapping is unmapped after (its own drop).
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(base.add(at), end - at))
            };
            self.release(at, end);
            at = end;
        }
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use memmap2::{MmapMut, UncheckedAdvice};

    /// An unnamed file in the temporary directory: O_TMPFILE, or where the
    /// filesystem lacks it a new file unlinked at once.
    pub fn temp_file() -> io::Result<File> {
        let dir = std::env::temp_dir();
        let unnamed = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(&dir);
        if let Ok(file) = unnamed {
            return Ok(file);
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = dir.join(format!(
            "rhscope-spill-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // create_new: a file of that name that rhscope did not make is
        // left alone.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(file)
    }

    pub fn allocate(file: &File, bytes: usize) -> io::Result<()> {
        let len = libc::off_t::try_from(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: a plain system call on an open descriptor.
        match unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    pub fn prepare(map: &MmapMut, offset: usize, len: usize) {
        // Linux 5.14 on; older ones refuse it, and the pages fault in as
        // written.
        let _ = map.advise_range(memmap2::Advice::PopulateWrite, offset, len);
    }

    pub fn release(map: &MmapMut, offset: usize, len: usize) {
        // SAFETY: the mapping is shared and backed by a file, so
        // MADV_DONTNEED only unmaps the pages: their bytes stay in the page
        // cache (or the file) and the next access maps them back unchanged.
        // (Only on a private or anonymous mapping would it zero them.) So
        // borrows of the items stay valid and see the same values.
        let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, offset, len) };
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::fs::File;
    use std::io;

    use memmap2::MmapMut;

    pub fn temp_file() -> io::Result<File> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn allocate(_: &File, _: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn prepare(_: &MmapMut, _: usize, _: usize) {}

    pub fn release(_: &MmapMut, _: usize, _: usize) {}
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn items_keep_their_values_through_a_release_and_are_dropped_once() {
        let shared: Arc<str> = Arc::from("resource");
        let mut s: Spilled<(u64, Arc<str>)> = Spilled::new(50_000).expect("a spill file");
        for i in 0..50_000u64 {
            assert!(s.push((i * 3, shared.clone())).is_ok());
        }
        assert!(s.push((0, shared.clone())).is_err(), "full at its capacity");
        assert_eq!(Arc::strong_count(&shared), 50_001);
        s.release(0, s.len());
        assert_eq!(s.as_slice()[49_999].0, 149_997);
        assert!(s
            .as_slice()
            .iter()
            .enumerate()
            .all(|(i, x)| x.0 == i as u64 * 3));
        s.as_mut_slice()[7].0 = 1;
        s.release(0, 10);
        assert_eq!(s.as_slice()[7].0, 1);
        drop(s);
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn a_release_takes_the_pages_out_of_resident_memory() {
        // 64 B items, 8 MiB.
        let mut s: Spilled<[u64; 8]> = Spilled::new(131_072).expect("a spill file");
        for i in 0..131_072u64 {
            let _ = s.push([i; 8]);
        }
        let before = s.resident_kib();
        s.release(0, 131_072);
        let after = s.resident_kib();
        assert!(before >= 8000 && after < 32, "{before} KiB -> {after} KiB");
        // Read back, unchanged.
        assert_eq!(s.as_slice()[100_000], [100_000; 8]);
    }
}
