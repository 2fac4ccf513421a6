//! The stacks of a trace, each tied to its event, and the images of each
//! process: one pass over the StackWalk, image and KernelTraceControl
//! records.
//!
//! A stack arrives as a whole (StackWalk opcode 32) or in two halves by
//! stack-cache key (37 kernel, 38 user), each key standing for the frames
//! of the first definition of that key and mode that comes after the
//! reference (35 evicted, 36 rundown; keys are reused, and a definition
//! with no reference waiting is dropped). A kernel half whose event has no
//! user half of its own takes the next user half logged on its thread (the
//! thread went back to user mode with that stack), except in the idle and
//! system processes, which have no user mode. A stack belongs to the event
//! of the same thread with the same raw timestamp.

use std::collections::HashMap;
use std::sync::Arc;

use super::kernel::{self, KernelEvent};
use super::stackwalk::{is_kernel_address, module_name, ImageIdentity, ImageRecord, StackRecord};
use super::{EtlError, Guid, Trace};

/// One half of a stack: not logged, waiting for its key's definition, or
/// known.
#[derive(Debug, Clone, Default)]
enum Half {
    #[default]
    None,
    Pending,
    Frames(Arc<[u64]>),
}

#[derive(Debug, Clone)]
struct Slot {
    kernel: Half,
    user: Half,
    /// The slot whose user half this kernel-only stack continues in.
    user_from: Option<u32>,
}

/// What the stack records of a trace came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StackCounts {
    /// Whole stacks (opcode 32).
    pub plain: u64,
    /// Kernel and user halves by key (37, 38).
    pub key_references: u64,
    /// Key definitions (34, 35, 36).
    pub key_definitions: u64,
    /// Distinct keys defined.
    pub distinct_keys: u64,
    /// References no later definition resolved.
    pub unresolved: u64,
    /// Frames of every whole stack and resolved reference, counted once
    /// per record.
    pub frames: u64,
    /// Of those, frames inside an image loaded in their process (kernel
    /// addresses: in the system's images).
    pub frames_in_images: u64,
    /// Stack-walk, image and other kernel records that did not decode
    /// (skipped, each costing only itself).
    pub undecoded: u64,
}

/// An image mapped into a process, with its identity where the trace
/// gives one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Image {
    pub base: u64,
    pub size: u64,
    /// The file name, lower case (`ntdll.dll`).
    pub name: String,
    pub path: String,
    pub time_date_stamp: u32,
    /// The PDB it was built with: GUID, age, file name.
    pub pdb: Option<(Guid, u32, String)>,
}

impl Image {
    pub fn contains(&self, address: u64) -> bool {
        address >= self.base && address - self.base < self.size
    }
}

/// The images of each process (kernel images under process 0).
#[derive(Debug, Clone, Default)]
pub struct Images {
    by_process: HashMap<u32, Vec<Image>>,
    /// Where the image record of each raw timestamp and base went, so the
    /// identity records logged with it find it (a rundown gives several
    /// images one timestamp).
    by_timestamp: HashMap<(i64, u64), (u32, usize)>,
    /// Identities logged before their image record.
    early: HashMap<(i64, u64), Vec<ImageIdentity>>,
}

impl Images {
    fn add(&mut self, r: &ImageRecord, timestamp: i64) {
        let list = self.by_process.entry(r.process_id).or_default();
        let known = list
            .iter()
            .position(|i| i.base == r.base && i.size == r.size && i.path == r.file_name);
        let at = known.unwrap_or_else(|| {
            list.push(Image {
                base: r.base,
                size: r.size,
                name: module_name(&r.file_name),
                path: r.file_name.clone(),
                time_date_stamp: r.time_date_stamp,
                pdb: None,
            });
            list.len() - 1
        });
        self.by_timestamp
            .insert((timestamp, r.base), (r.process_id, at));
        for id in self.early.remove(&(timestamp, r.base)).unwrap_or_default() {
            self.identify(&id, timestamp);
        }
    }

    fn identify(&mut self, id: &ImageIdentity, timestamp: i64) {
        let (ImageIdentity::ImageId { base, .. } | ImageIdentity::DbgIdRsds { base, .. }) = id;
        let key = (timestamp, *base);
        let Some(&(pid, at)) = self.by_timestamp.get(&key) else {
            self.early.entry(key).or_default().push(id.clone());
            return;
        };
        let Some(image) = self.by_process.get_mut(&pid).and_then(|l| l.get_mut(at)) else {
            return;
        };
        match id {
            ImageIdentity::DbgIdRsds {
                base,
                guid,
                age,
                pdb_file_name,
                ..
            } if *base == image.base && image.pdb.is_none() => {
                image.pdb = Some((*guid, *age, pdb_file_name.clone()));
            }
            ImageIdentity::ImageId {
                base,
                time_date_stamp,
                ..
            } if *base == image.base && image.time_date_stamp == 0 => {
                image.time_date_stamp = *time_date_stamp;
            }
            _ => {}
        }
    }

    /// The image holding `address` in process `pid` (kernel addresses:
    /// among the system's images).
    pub fn find(&self, pid: u32, address: u64, pointer_size: u8) -> Option<&Image> {
        let pid = if is_kernel_address(address, pointer_size) {
            0
        } else {
            pid
        };
        self.by_process
            .get(&pid)?
            .iter()
            .rev()
            .find(|i| i.contains(address))
    }

    pub fn of_process(&self, pid: u32) -> &[Image] {
        self.by_process.get(&pid).map_or(&[], Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.by_process.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every stack of a trace, by the event it belongs to.
#[derive(Debug, Clone, Default)]
pub struct Stacks {
    by_event: HashMap<(u32, i64), u32>,
    slots: Vec<Slot>,
    /// The process of each slot's thread.
    process: Vec<u32>,
    pub images: Images,
    pub counts: StackCounts,
    pub pointer_size: u8,
}

/// Reads a trace's stacks and images. `keep` says which processes' stacks
/// to keep, by id and image name where a process event named it (all of
/// them are counted).
pub fn collect(
    trace: &Trace,
    mut keep: impl FnMut(u32, Option<&str>) -> bool,
) -> Result<Stacks, EtlError> {
    // The header's pointer size, when it is one; else the first
    // stack-walk event's (what the header flags of every event say).
    let pointer_size = match trace.header().pointer_size {
        4 => 4,
        8 => 8,
        _ => 0,
    };
    let mut b = Builder {
        stacks: Stacks {
            pointer_size,
            ..Stacks::default()
        },
        ..Builder::default()
    };
    let mut names: HashMap<u32, String> = HashMap::new();
    let mut events = trace.events();
    while let Some(item) = events.next_event() {
        // A corrupt record costs that record: the walk goes on.
        let Ok(ev) = item else { continue };
        let k = match kernel::decode(&ev) {
            Some(Ok(k)) => k,
            Some(Err(_)) => {
                b.stacks.counts.undecoded += 1;
                continue;
            }
            None => continue,
        };
        match k {
            KernelEvent::Process {
                process_id,
                image_file_name,
                ..
            } => {
                names.insert(process_id, image_file_name.to_ascii_lowercase());
            }
            KernelEvent::StackWalk(r) => {
                if b.stacks.pointer_size == 0 {
                    b.stacks.pointer_size = ev.pointer_size;
                }
                let mut kept = |p: u32| keep(p, names.get(&p).map(String::as_str));
                b.stack(r, &mut kept)
            }
            KernelEvent::Image(r) if r.opcode != super::stackwalk::OPCODE_IMAGE_UNLOAD => {
                b.stacks.images.add(&r, ev.timestamp)
            }
            KernelEvent::ImageIdentity(id) => b.stacks.images.identify(&id, ev.timestamp),
            _ => {}
        }
    }
    Ok(b.finish())
}

#[derive(Default)]
struct Builder {
    stacks: Stacks,
    pending: HashMap<(bool, u64), Vec<(u32, u32)>>,
    /// Kernel-only stacks of each thread waiting for a user half.
    waiting: HashMap<u32, Vec<u32>>,
    defined: std::collections::HashSet<u64>,
    /// How often each (process, address) was a frame of a whole stack or
    /// a resolved reference, counted against the images once all are
    /// known (rundowns at the end name images used before): memory grows
    /// with distinct addresses, not with stacks.
    counted: HashMap<(u32, u64), u64>,
}

impl Builder {
    fn slot(&mut self, thread: u32, ts: i64, process: u32) -> u32 {
        let s = &mut self.stacks;
        *s.by_event.entry((thread, ts)).or_insert_with(|| {
            s.slots.push(Slot {
                kernel: Half::None,
                user: Half::None,
                user_from: None,
            });
            s.process.push(process);
            (s.slots.len() - 1) as u32
        })
    }

    /// A user half on `thread` in `slot`: it also continues the kernel-only
    /// stacks waiting on that thread.
    fn user_half_on(&mut self, thread: u32, slot: u32) {
        for w in self.waiting.remove(&thread).unwrap_or_default() {
            if w != slot {
                self.stacks.slots[w as usize].user_from = Some(slot);
            }
        }
    }

    fn stack(&mut self, r: StackRecord, keep: &mut impl FnMut(u32) -> bool) {
        let ptr = self.stacks.pointer_size;
        let no_user_mode = |p: u32| p == 0 || p == 4;
        match r {
            StackRecord::Stack {
                event_timestamp,
                process,
                thread,
                frames,
            } => {
                self.stacks.counts.plain += 1;
                let frames: Arc<[u64]> = frames.into();
                self.count(process, &frames);
                if frames.is_empty() || !keep(process) {
                    return;
                }
                let slot = self.slot(thread, event_timestamp, process);
                let first_kernel = is_kernel_address(frames[0], ptr);
                let last_kernel = frames.last().is_some_and(|&f| is_kernel_address(f, ptr));
                let s = &mut self.stacks.slots[slot as usize];
                if last_kernel {
                    s.kernel = Half::Frames(frames);
                    if !no_user_mode(process) {
                        self.waiting.entry(thread).or_default().push(slot);
                    }
                } else if first_kernel {
                    // Both halves in one.
                    s.kernel = Half::Frames(frames);
                    s.user = Half::Frames(Arc::from(&[][..]));
                } else {
                    s.user = Half::Frames(frames);
                    self.user_half_on(thread, slot);
                }
            }
            StackRecord::KeyReference {
                event_timestamp,
                process,
                thread,
                key,
                kernel,
            } => {
                self.stacks.counts.key_references += 1;
                let kept = keep(process);
                let slot = if kept {
                    self.slot(thread, event_timestamp, process)
                } else {
                    u32::MAX
                };
                self.pending
                    .entry((kernel, key))
                    .or_default()
                    .push((slot, process));
                if !kept {
                    return;
                }
                let s = &mut self.stacks.slots[slot as usize];
                if kernel {
                    s.kernel = Half::Pending;
                    if !no_user_mode(process) {
                        self.waiting.entry(thread).or_default().push(slot);
                    }
                } else {
                    s.user = Half::Pending;
                    self.user_half_on(thread, slot);
                }
            }
            StackRecord::KeyDefinition {
                opcode,
                key,
                frames,
            } => {
                self.stacks.counts.key_definitions += 1;
                self.defined.insert(key);
                // Creations are not definitions a reference waits for
                // (the cache's eviction and rundown are).
                if opcode == super::stackwalk::OPCODE_KEY_CREATE {
                    return;
                }
                let kernel = frames.last().is_some_and(|&f| is_kernel_address(f, ptr));
                let Some(waiting) = self.pending.remove(&(kernel, key)) else {
                    return;
                };
                let frames: Arc<[u64]> = frames.into();
                for (slot, process) in waiting {
                    self.count(process, &frames);
                    if slot == u32::MAX {
                        continue;
                    }
                    let s = &mut self.stacks.slots[slot as usize];
                    let half = if kernel { &mut s.kernel } else { &mut s.user };
                    *half = Half::Frames(frames.clone());
                }
            }
        }
    }

    fn count(&mut self, process: u32, frames: &[u64]) {
        for &f in frames {
            *self.counted.entry((process, f)).or_default() += 1;
        }
    }

    fn finish(mut self) -> Stacks {
        let ptr = self.stacks.pointer_size;
        let (images, counts) = (&self.stacks.images, &mut self.stacks.counts);
        for (&(process, address), &n) in &self.counted {
            counts.frames += n;
            if images.find(process, address, ptr).is_some() {
                counts.frames_in_images += n;
            }
        }
        self.stacks.counts.unresolved = self.pending.values().map(|v| v.len() as u64).sum();
        self.stacks.counts.distinct_keys = self.defined.len() as u64;
        self.stacks
    }
}

impl Stacks {
    /// The stack of the event of `thread` at raw timestamp `timestamp`,
    /// innermost frame first (kernel frames, then user frames); None when
    /// the trace has none for it, or its halves were never defined.
    pub fn of_event(&self, thread: u32, timestamp: i64) -> Option<Vec<u64>> {
        let &slot = self.by_event.get(&(thread, timestamp))?;
        let s = &self.slots[slot as usize];
        let mut frames: Vec<u64> = Vec::new();
        if let Half::Frames(f) = &s.kernel {
            frames.extend_from_slice(f);
        }
        let user = match (&s.user, s.user_from) {
            (Half::Frames(f), _) => Some(f.clone()),
            (Half::None, Some(from)) => match &self.slots[from as usize].user {
                Half::Frames(f) => Some(f.clone()),
                _ => None,
            },
            _ => None,
        };
        if let Some(u) = user {
            frames.extend_from_slice(&u);
        }
        (!frames.is_empty()).then_some(frames)
    }

    /// The process the stack of an event was walked in.
    pub fn process_of_event(&self, thread: u32, timestamp: i64) -> Option<u32> {
        let &slot = self.by_event.get(&(thread, timestamp))?;
        self.process.get(slot as usize).copied()
    }

    /// How many events have a stack.
    pub fn len(&self) -> usize {
        self.by_event.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_event.is_empty()
    }
}
