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
//! The items hold pointers (shared names, strings), valid in this process
//! only, so the file must give back exactly what went in: as swap must
//! for anonymous memory. A disk that fails to write back a page the
//! kernel then drops (EIO) breaks that, as it would swap; a full disk
//! cannot, since the file's blocks are reserved before any use.
//!
//! Linux only: elsewhere (and where no file can be made) segments stay on
//! the heap, as every segment did before.

use std::fs::File;
use std::marker::PhantomData;

use memmap2::{MmapOptions, MmapRaw};

/// Linux's fault-around: a read fault maps up to this much (aligned)
/// around it of what the page cache holds.
pub const AROUND: usize = 64 << 10;

/// Items are written to the file, read in a pass and dropped this many
/// bytes at a time.
const RUN_BYTES: usize = 1 << 20;

/// Items in a run of `T`: written to the file together, and the unit a
/// pass over them lets go of.
pub fn run_len<T>() -> usize {
    (RUN_BYTES / std::mem::size_of::<T>().max(1)).max(1)
}

/// Up to `cap` items of `T`: those of whole runs in a mapped spill file,
/// the rest (the run being appended to) on the heap until it is whole.
pub struct Spilled<T> {
    /// Raw: items are read and written through pointers to it, never
    /// through a byte slice over the whole file.
    map: MmapRaw,
    file: File,
    /// Items in the file: `0..written`, a whole number of runs (or all).
    written: usize,
    /// The items after those.
    tail: Vec<T>,
    cap: usize,
    /// Owns the file's items as a `Vec<T>` would (and is Send / Sync as
    /// it is).
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
        // Blocks allocated up front: writing through the mapping (the
        // fallback of a failed write, and a change to an item) into a hole
        // of a file on a full disk is a SIGBUS, not an error to report.
        // Only where allocating reserves them for good (see `imp`).
        imp::allocate(&file, bytes).ok()?;
        // The file is this process' own, has no name and is open nowhere
        // else, so nothing changes it under the mapping but this value's
        // own writes (which the page cache keeps coherent).
        let map = MmapOptions::new().len(bytes).map_raw(&file).ok()?;
        imp::no_read_ahead(&map);
        Some(Spilled {
            map,
            file,
            written: 0,
            tail: Vec::new(),
            cap,
            _items: PhantomData,
        })
    }

    pub fn len(&self) -> usize {
        self.written + self.tail.len()
    }

    /// Adds `item`, or gives it back when full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.len() == self.cap {
            return Err(item);
        }
        if self.tail.capacity() == 0 {
            self.tail
                .reserve_exact(run_len::<T>().min(self.cap - self.written));
        }
        self.tail.push(item);
        if self.tail.len() == run_len::<T>() || self.len() == self.cap {
            self.write_tail();
        }
        Ok(())
    }

    /// Moves the tail's items into the file after those written: written
    /// as bytes (no page faults, unlike stores into fresh pages of the
    /// mapping, each of which goes through the filesystem), or copied
    /// through the mapping where writing fails. Either way the file's copy
    /// is the item from then on and the tail forgets it.
    fn write_tail(&mut self) {
        let n = self.tail.len();
        let size = std::mem::size_of::<T>();
        let offset = self.written * size;
        let src = self.tail.as_ptr() as *const u8;
        if !imp::write_at(&self.file, src, n * size, offset) {
            // SAFETY: `written + n <= cap` items fit the mapping, the
            // tail's `n` items are initialised, and the two do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    self.tail.as_ptr(),
                    (self.map.as_mut_ptr() as *mut T).add(self.written),
                    n,
                )
            };
        }
        // SAFETY: the items were moved (bytes copied) into the file; the
        // tail must not drop them again.
        unsafe { self.tail.set_len(0) };
        self.written += n;
        if self.written == self.cap {
            self.tail = Vec::new();
        }
    }

    /// The items: those in the file, then those not yet written.
    pub fn parts(&self) -> (&[T], &[T]) {
        // SAFETY: the first `written` items of the mapping hold items moved
        // there by `write_tail`, aligned (a page-aligned start, a multiple
        // of T's size apart).
        let file =
            unsafe { std::slice::from_raw_parts(self.map.as_ptr() as *const T, self.written) };
        (file, &self.tail)
    }

    pub fn parts_mut(&mut self) -> (&mut [T], &mut [T]) {
        // SAFETY: as `parts`, borrowed mutably through `self`.
        let file = unsafe {
            std::slice::from_raw_parts_mut(self.map.as_mut_ptr() as *mut T, self.written)
        };
        (file, &mut self.tail)
    }

    /// Lets the pages of items `from..to` go from resident memory; their
    /// bytes stay in the file. Best effort: a refusal only leaves them
    /// resident.
    pub fn release(&self, from: usize, to: usize) {
        let size = std::mem::size_of::<T>();
        let to = to.min(self.written);
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

/// Whether a spill file can be made here (a temporary directory on ext4
/// or XFS): the tests of spilling say so and stop where not.
#[cfg(test)]
pub fn available() -> bool {
    let here = imp::temp_file().is_ok();
    if !here {
        eprintln!("no temporary directory on ext4 or XFS here: spilling not tested");
    }
    here
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

impl<T> Drop for Spilled<T> {
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        // The file's items a run at a time, each let go when dropped:
        // dropping reads every item, and all at once that mapped the whole
        // file back in (the peak of a node log's analysis, at its very
        // end). The tail drops as the vector it is.
        let run = run_len::<T>();
        let base = self.map.as_mut_ptr() as *mut T;
        let mut at = 0;
        while at < self.written {
            let end = (at + run).min(self.written);
            // SAFETY: items `at..end` are initialised (below `written`)
            // and dropped once, here, each run after the one before; the
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

    use memmap2::{MmapRaw, UncheckedAdvice};

    /// Filesystems whose `fallocate` reserves the blocks, so that writing
    /// into them later, through the mapping too, needs no more space:
    /// ext4 and XFS. Not tmpfs or ramfs (the file would be memory, all of
    /// it committed at once), not copy-on-write ones (btrfs, ZFS: a
    /// rewrite takes new space, and a page written through a mapping on a
    /// full one is a SIGBUS).
    const RESERVING: [i64; 2] = [0xEF53, 0x5846_5342];

    /// An unnamed file on a filesystem in `RESERVING`: in the temporary
    /// directory, or in /var/tmp (on disk by convention) where that is a
    /// tmpfs, as it is on many systems.
    pub fn temp_file() -> io::Result<File> {
        let dir = std::env::temp_dir();
        unnamed_in(&dir).or_else(|e| match dir == std::path::Path::new("/var/tmp") {
            true => Err(e),
            false => unnamed_in(std::path::Path::new("/var/tmp")),
        })
    }

    /// O_TMPFILE in `dir`, or where the filesystem lacks it a new file
    /// unlinked at once; kept only if the file's own filesystem (asked of
    /// the open file: whatever the path leads to by then) is in
    /// `RESERVING`.
    fn unnamed_in(dir: &std::path::Path) -> io::Result<File> {
        let unnamed = OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE)
            .open(dir);
        let file = match unnamed {
            Ok(file) => file,
            Err(_) => {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                let path = dir.join(format!(
                    "rhscope-spill-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                // create_new: a file of that name that rhscope did not
                // make is left alone.
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                std::fs::remove_file(&path)?;
                file
            }
        };
        // SAFETY: `fstatfs` fills the zeroed struct it is given, of an
        // open descriptor.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // f_type's integer type differs by target; both magics are
        // positive and below 2^31.
        #[allow(clippy::unnecessary_cast)]
        match RESERVING.contains(&(fs.f_type as i64)) {
            true => Ok(file),
            false => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    pub fn allocate(file: &File, bytes: usize) -> io::Result<()> {
        let len = libc::off_t::try_from(bytes).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: a plain system call on an open descriptor.
        match unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Writes `len` bytes from `src` at `offset` of `file`, all of them or
    /// false.
    pub fn write_at(file: &File, src: *const u8, len: usize, offset: usize) -> bool {
        let mut done = 0;
        while done < len {
            let Ok(at) = libc::off_t::try_from(offset + done) else {
                return false;
            };
            // SAFETY: `src..src + len` is readable (the caller's items);
            // the kernel only reads it. A raw pointer, not a byte slice:
            // the items' padding bytes need not be initialised.
            let n = unsafe {
                libc::pwrite(
                    file.as_raw_fd(),
                    src.add(done) as *const libc::c_void,
                    len - done,
                    at,
                )
            };
            match n {
                n if n > 0 => done += n as usize,
                -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
                _ => return false,
            }
        }
        true
    }

    /// No read-ahead: a read fault then maps at most its fault-around
    /// window, which `release` reaches. With it a pass over a large list
    /// left megabytes mapped behind it at every run's edge.
    pub fn no_read_ahead(map: &MmapRaw) {
        let _ = map.advise(memmap2::Advice::Random);
    }

    pub fn release(map: &MmapRaw, offset: usize, len: usize) {
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

    use memmap2::MmapRaw;

    pub fn temp_file() -> io::Result<File> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn allocate(_: &File, _: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub fn write_at(_: &File, _: *const u8, _: usize, _: usize) -> bool {
        false
    }

    pub fn no_read_ahead(_: &MmapRaw) {}

    pub fn release(_: &MmapRaw, _: usize, _: usize) {}
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn items_go_to_the_file_a_run_at_a_time_keep_their_values_and_drop_once() {
        if !available() {
            return;
        }
        let shared: Arc<str> = Arc::from("resource");
        // 24-byte items: runs of 43,690.
        let mut s: Spilled<(u64, Arc<str>)> = Spilled::new(100_000).expect("a spill file");
        for i in 0..50_000u64 {
            assert!(s.push((i * 3, shared.clone())).is_ok());
        }
        assert_eq!((s.parts().0.len(), s.parts().1.len()), (43_690, 6_310));
        assert_eq!(Arc::strong_count(&shared), 50_001);
        s.release(0, s.len());
        let (file, tail) = s.parts();
        assert!(file
            .iter()
            .chain(tail)
            .enumerate()
            .all(|(i, x)| x.0 == i as u64 * 3));
        s.parts_mut().0[7].0 = 1;
        s.release(0, 10);
        assert_eq!(s.parts().0[7].0, 1);
        // Filled: the last, partial run is written too.
        for i in 50_000..100_000u64 {
            assert!(s.push((i * 3, shared.clone())).is_ok());
        }
        assert!(s.push((0, shared.clone())).is_err(), "full at its capacity");
        assert_eq!((s.parts().0.len(), s.parts().1.len()), (100_000, 0));
        assert_eq!(s.parts().0[99_999].0, 299_997);
        assert_eq!(Arc::strong_count(&shared), 100_001);
        drop(s);
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn a_release_takes_the_pages_out_of_resident_memory() {
        if !available() {
            return;
        }
        // 64 B items, 8 MiB: written to the file, not through the mapping,
        // so nothing of it is mapped until read.
        let mut s: Spilled<[u64; 8]> = Spilled::new(131_072).expect("a spill file");
        for i in 0..131_072u64 {
            let _ = s.push([i; 8]);
        }
        assert!(s.resident_kib() < 64, "{} KiB", s.resident_kib());
        let sum: u64 = s.parts().0.iter().map(|x| x[7]).sum();
        assert_eq!(sum, 131_071 * 131_072 / 2);
        let before = s.resident_kib();
        s.release(0, 131_072);
        let after = s.resident_kib();
        assert!(before >= 8000 && after < 32, "{before} KiB -> {after} KiB");
        // Read back, unchanged.
        assert_eq!(s.parts().0[100_000], [100_000; 8]);
    }
}
