//! Stack walks and image identities: the kernel's StackWalk events (whole
//! stacks, and stack-cache keys with their definitions), image loads and
//! rundowns (Image group, and the Process group's hook 0x030A that Windows
//! 10 uses for live loads), and KernelTraceControl's ImageID and
//! DbgID_RSDS (the PE timestamp and the PDB identity of each image).
//! Pointers, stack keys and frames are the trace's pointer size.

use super::cursor::Cursor;
use super::error::Result;
use super::guid::Guid;
use super::record::Event;

/// Kernel/StackWalk opcodes.
pub const OPCODE_STACK: u8 = 32;
pub const OPCODE_KEY_CREATE: u8 = 34;
pub const OPCODE_KEY_DELETE: u8 = 35;
pub const OPCODE_KEY_RUNDOWN: u8 = 36;
pub const OPCODE_KEY_KERNEL: u8 = 37;
pub const OPCODE_KEY_USER: u8 = 38;

/// Image opcodes (Image group; 10 also under the Process group).
pub const OPCODE_IMAGE_LOAD: u8 = 10;
pub const OPCODE_IMAGE_UNLOAD: u8 = 2;
pub const OPCODE_IMAGE_DC_START: u8 = 3;
pub const OPCODE_IMAGE_DC_END: u8 = 4;

/// KernelTraceControl ("ImageID") opcodes.
pub const OPCODE_IMAGE_ID: u8 = 0;
pub const OPCODE_DBGID_RSDS: u8 = 36;

/// {b3e675d7-2554-4f18-830b-2762732560de}: KernelTraceControl's image
/// identity events.
pub const KERNEL_TRACE_CONTROL: Guid = Guid::from_fields(
    0xb3e6_75d7,
    0x2554,
    0x4f18,
    [0x83, 0x0b, 0x27, 0x62, 0x73, 0x25, 0x60, 0xde],
);

/// The lowest kernel-mode address for a pointer size.
pub fn is_kernel_address(address: u64, pointer_size: u8) -> bool {
    if pointer_size == 4 {
        address >= 0x8000_0000
    } else {
        address >= 0xffff_0000_0000_0000
    }
}

/// What a StackWalk record says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "stack", rename_all = "snake_case")]
pub enum StackRecord {
    /// A whole stack of the event of `thread` with raw timestamp
    /// `event_timestamp`, innermost frame first.
    Stack {
        event_timestamp: i64,
        process: u32,
        thread: u32,
        frames: Vec<u64>,
    },
    /// The kernel (`kernel`) or user half of that event's stack, by its
    /// stack-cache key.
    KeyReference {
        event_timestamp: i64,
        process: u32,
        thread: u32,
        key: u64,
        kernel: bool,
    },
    /// What a stack-cache key stands for: created (34), evicted (35) or
    /// still cached at rundown (36).
    KeyDefinition {
        opcode: u8,
        key: u64,
        frames: Vec<u64>,
    },
}

/// Decodes a StackWalk record's payload (None for other opcodes).
pub fn stack_record(event: &Event<'_>) -> Option<Result<StackRecord>> {
    let op = event.descriptor.opcode;
    if !matches!(op, OPCODE_STACK | OPCODE_KEY_CREATE..=OPCODE_KEY_USER) {
        return None;
    }
    let ptr = event.pointer_size;
    let mut c = Cursor::new(event.payload, event.location.buffer_offset);
    let frames = |c: &mut Cursor<'_>| -> Result<Vec<u64>> {
        let step = usize::from(ptr.max(4));
        let mut out = Vec::with_capacity(c.remaining() / step);
        while c.remaining() >= step {
            out.push(c.pointer(ptr, "stack frame")?);
        }
        Ok(out)
    };
    Some((|| match op {
        OPCODE_STACK => Ok(StackRecord::Stack {
            event_timestamp: c.i64("stack event timestamp")?,
            process: c.u32("stack process")?,
            thread: c.u32("stack thread")?,
            frames: frames(&mut c)?,
        }),
        OPCODE_KEY_KERNEL | OPCODE_KEY_USER => Ok(StackRecord::KeyReference {
            event_timestamp: c.i64("stack key event timestamp")?,
            process: c.u32("stack key process")?,
            thread: c.u32("stack key thread")?,
            key: c.pointer(ptr, "stack key")?,
            kernel: op == OPCODE_KEY_KERNEL,
        }),
        _ => Ok(StackRecord::KeyDefinition {
            opcode: op,
            key: c.pointer(ptr, "stack key definition")?,
            frames: frames(&mut c)?,
        }),
    })())
}

/// An image mapped into a process (a load, an unload, or a rundown).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageRecord {
    pub opcode: u8,
    pub base: u64,
    pub size: u64,
    pub process_id: u32,
    pub checksum: u32,
    pub time_date_stamp: u32,
    /// As the kernel names it: `\Device\HarddiskVolume2\...\ntdll.dll`.
    pub file_name: String,
}

/// Decodes an image event's payload (version 2 and later).
pub fn image_record(event: &Event<'_>) -> Option<Result<ImageRecord>> {
    if event.descriptor.version < 2 {
        return None;
    }
    let ptr = event.pointer_size;
    let mut c = Cursor::new(event.payload, event.location.buffer_offset);
    Some((|| {
        let base = c.pointer(ptr, "image base")?;
        let size = c.pointer(ptr, "image size")?;
        let process_id = c.u32("image process id")?;
        let checksum = c.u32("image checksum")?;
        let time_date_stamp = c.u32("image time date stamp")?;
        // v2 Reserved0, v3 signature level and type: not needed.
        c.skip(4, "image signature")?;
        c.pointer(ptr, "image default base")?;
        c.skip(16, "image reserved")?;
        let file_name = c.utf16z("image file name")?;
        Ok(ImageRecord {
            opcode: event.descriptor.opcode,
            base,
            size,
            process_id,
            checksum,
            time_date_stamp,
            file_name,
        })
    })())
}

/// KernelTraceControl's identity of an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "identity", rename_all = "snake_case")]
pub enum ImageIdentity {
    /// The PE's own name and timestamp.
    ImageId {
        base: u64,
        size: u64,
        time_date_stamp: u32,
        original_file_name: String,
    },
    /// The PDB the image was built with.
    DbgIdRsds {
        base: u64,
        process_id: u32,
        guid: Guid,
        age: u32,
        pdb_file_name: String,
    },
}

/// Decodes a KernelTraceControl ImageID or DbgID_RSDS event.
pub fn image_identity(event: &Event<'_>) -> Option<Result<ImageIdentity>> {
    if event.provider != KERNEL_TRACE_CONTROL {
        return None;
    }
    let ptr = event.pointer_size;
    let mut c = Cursor::new(event.payload, event.location.buffer_offset);
    match event.descriptor.opcode {
        OPCODE_IMAGE_ID => Some((|| {
            let base = c.pointer(ptr, "ImageID base")?;
            let size = c.pointer(ptr, "ImageID size")?;
            c.u32("ImageID process id")?;
            Ok(ImageIdentity::ImageId {
                base,
                size,
                time_date_stamp: c.u32("ImageID time date stamp")?,
                original_file_name: c.utf16z("ImageID original file name")?,
            })
        })()),
        OPCODE_DBGID_RSDS => Some((|| {
            let base = c.pointer(ptr, "DbgID base")?;
            let process_id = c.u32("DbgID process id")?;
            let guid = c.guid("DbgID PDB GUID")?;
            let age = c.u32("DbgID PDB age")?;
            let name = c.cstr("DbgID PDB file name")?;
            Ok(ImageIdentity::DbgIdRsds {
                base,
                process_id,
                guid,
                age,
                pdb_file_name: String::from_utf8_lossy(name).into_owned(),
            })
        })()),
        _ => None,
    }
}

/// The file name of a path as the kernel writes it, lower case:
/// `\Device\HarddiskVolume2\Windows\System32\ntdll.dll` -> `ntdll.dll`.
pub fn module_name(path: &str) -> String {
    path.rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase()
}
