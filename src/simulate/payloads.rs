//! Payloads of the kernel events the simulator writes (64-bit layouts, as
//! Windows Server writes them).

pub fn process(pid: u32, parent: u32, image: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&(0xffff_8000_0000_0000u64 | u64::from(pid) << 8).to_le_bytes());
    for v in [pid, parent, 0, 259] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.extend_from_slice(&[0; 8]); // DirectoryTableBase
    p.extend_from_slice(&0u32.to_le_bytes()); // Flags
                                              // TOKEN_USER: a pointer to the SID that follows, and its attributes.
    p.extend_from_slice(&0xffff_a000_0000_1000u64.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]); // S-1-5-18
    p.extend_from_slice(image.as_bytes());
    p.push(0);
    p.extend(image.encode_utf16().chain([0]).flat_map(u16::to_le_bytes));
    p.extend_from_slice(&[0, 0, 0, 0]);
    p
}

pub fn thread(pid: u32, tid: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(72);
    p.extend_from_slice(&pid.to_le_bytes());
    p.extend_from_slice(&tid.to_le_bytes());
    p.resize(8 + 7 * 8 + 8, 0);
    p
}

/// KWAIT_REASON UserRequest and thread states used below.
pub const WAIT_USER_REQUEST: u8 = 6;
pub const STATE_WAITING: u8 = 5;
pub const STATE_RUNNING: u8 = 2;

pub fn cswitch(new: u32, old: u32, reason: u8, old_state: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(24);
    p.extend_from_slice(&new.to_le_bytes());
    p.extend_from_slice(&old.to_le_bytes());
    p.extend_from_slice(&[8, 8, 0, 0, reason, 1, old_state, 0]);
    p.extend_from_slice(&0u32.to_le_bytes());
    p.extend_from_slice(&0u32.to_le_bytes());
    p
}

pub fn ready_thread(tid: u32) -> Vec<u8> {
    let mut p = tid.to_le_bytes().to_vec();
    p.extend_from_slice(&[0, 1, 0, 0]);
    p
}
