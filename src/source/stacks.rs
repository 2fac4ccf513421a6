//! Stacks on the timeline: each context switch and thread rundown of an
//! .etl gets the stack walked with it, its frames named by the images of
//! the process and the symbol files given (`--symbols`); a thread start
//! gets the image its start address is in.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Frame, Record, RecordKind, Stack};
use crate::read::etl::stacks::{self, Image, Stacks};
use crate::read::etl::stackwalk::module_name;
use crate::read::etl::{EtlError, Trace};
use crate::read::symbols::{Cache, Identity, SymbolFiles};

/// A trace's stacks and images with the symbols to name them.
pub struct StackContext<'s> {
    stacks: Stacks,
    symbols: &'s SymbolFiles,
    names: Cache,
    frames: HashMap<(u32, u64), Frame>,
}

impl<'s> StackContext<'s> {
    /// Reads the stacks of `trace`, keeping those of processes `keep`
    /// accepts (by id and image name).
    pub fn read(
        trace: &Trace,
        symbols: &'s SymbolFiles,
        keep: impl FnMut(u32, Option<&str>) -> bool,
    ) -> Result<StackContext<'s>, EtlError> {
        Ok(StackContext {
            stacks: stacks::collect(trace, keep)?,
            symbols,
            names: Cache::default(),
            frames: HashMap::new(),
        })
    }

    pub fn stacks(&self) -> &Stacks {
        &self.stacks
    }

    /// The image at `address` in process `pid`, as symbol files know it.
    fn identity(image: &Image) -> Identity {
        Identity {
            debug: image.pdb.as_ref().map(|(g, a, _)| (*g, *a)),
            code: (image.time_date_stamp != 0).then_some((image.time_date_stamp, image.size)),
            code_file: Some(image.name.clone()),
            debug_file: image.pdb.as_ref().map(|(_, _, n)| module_name(n)),
        }
    }

    /// One address of process `pid`, named.
    pub fn frame(&mut self, pid: u32, address: u64) -> Frame {
        if let Some(f) = self.frames.get(&(pid, address)) {
            return f.clone();
        }
        let ptr = self.stacks.pointer_size;
        let frame = match self.stacks.images.find(pid, address, ptr) {
            Some(image) => {
                let rva = address - image.base;
                let id = Self::identity(image);
                let resolved = self.names.resolve(self.symbols, &id, rva);
                Frame {
                    address,
                    module: Some(image.name.clone()),
                    offset: resolved.as_ref().map_or(rva, |r| r.offset),
                    function: resolved.map(|r| r.function),
                }
            }
            None => Frame {
                address,
                module: None,
                function: None,
                offset: 0,
            },
        };
        self.frames.insert((pid, address), frame.clone());
        frame
    }

    /// The named stack of the event of `thread` at raw `timestamp`.
    pub fn stack(&mut self, thread: u32, timestamp: i64) -> Option<Stack> {
        let frames = self.stacks.of_event(thread, timestamp)?;
        let pid = self.stacks.process_of_event(thread, timestamp).unwrap_or(0);
        let named: Vec<Frame> = frames.iter().map(|&a| self.frame(pid, a)).collect();
        Some(Arc::from(named))
    }

    /// Gives a record what its event's stack says: the stack of the thread
    /// switching in or still running at the end, the image a thread
    /// started in.
    pub fn attach(&mut self, r: &mut Record, timestamp: i64) {
        match r.kind {
            RecordKind::ContextSwitch | RecordKind::ThreadRundown => {
                if let Some(t) = r.thread {
                    r.stack = self.stack(t, timestamp);
                }
            }
            RecordKind::ThreadStart => {
                if let (Some(a), Some(p)) = (r.address, r.process.or(r.pid)) {
                    r.image = self.frame(p, a).module;
                }
            }
            _ => {}
        }
    }
}
