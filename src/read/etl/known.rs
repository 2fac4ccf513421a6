//! Names the trace does not carry: kernel event groups (a format fact) and
//! well-known provider GUIDs (data in providers/well-known-providers.csv).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::guid::Guid;

pub struct KernelGroup {
    pub group: u8,
    pub name: &'static str,
    pub guid: Guid,
}

const fn g(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
    Guid::from_fields(d1, d2, d3, d4)
}

const KERNEL_GROUPS: &[KernelGroup] = &[
    KernelGroup {
        group: 0x00,
        name: "Kernel/EventTrace",
        guid: g(
            0x68fdd900,
            0x4a3e,
            0x11d1,
            [0x84, 0xf4, 0x00, 0x00, 0xf8, 0x04, 0x64, 0xe3],
        ),
    },
    KernelGroup {
        group: 0x01,
        name: "Kernel/DiskIo",
        guid: g(
            0x3d6fa8d4,
            0xfe05,
            0x11d0,
            [0x9d, 0xda, 0x00, 0xc0, 0x4f, 0xd7, 0xba, 0x7c],
        ),
    },
    KernelGroup {
        group: 0x02,
        name: "Kernel/PageFault",
        guid: g(
            0x3d6fa8d3,
            0xfe05,
            0x11d0,
            [0x9d, 0xda, 0x00, 0xc0, 0x4f, 0xd7, 0xba, 0x7c],
        ),
    },
    KernelGroup {
        group: 0x03,
        name: "Kernel/Process",
        guid: g(
            0x3d6fa8d0,
            0xfe05,
            0x11d0,
            [0x9d, 0xda, 0x00, 0xc0, 0x4f, 0xd7, 0xba, 0x7c],
        ),
    },
    KernelGroup {
        group: 0x04,
        name: "Kernel/FileIo",
        guid: g(
            0x90cbdc39,
            0x4a3e,
            0x11d1,
            [0x84, 0xf4, 0x00, 0x00, 0xf8, 0x04, 0x64, 0xe3],
        ),
    },
    KernelGroup {
        group: 0x05,
        name: "Kernel/Thread",
        guid: g(
            0x3d6fa8d1,
            0xfe05,
            0x11d0,
            [0x9d, 0xda, 0x00, 0xc0, 0x4f, 0xd7, 0xba, 0x7c],
        ),
    },
    KernelGroup {
        group: 0x06,
        name: "Kernel/TcpIp",
        guid: g(
            0x9a280ac0,
            0xc8e0,
            0x11d1,
            [0x84, 0xe2, 0x00, 0xc0, 0x4f, 0xb9, 0x98, 0xa2],
        ),
    },
    KernelGroup {
        group: 0x08,
        name: "Kernel/UdpIp",
        guid: g(
            0xbf3a50c5,
            0xa9c9,
            0x4988,
            [0xa0, 0x05, 0x2d, 0xf0, 0xb7, 0xc8, 0x0f, 0x80],
        ),
    },
    KernelGroup {
        group: 0x09,
        name: "Kernel/Registry",
        guid: g(
            0xae53722e,
            0xc863,
            0x11d2,
            [0x86, 0x59, 0x00, 0xc0, 0x4f, 0xa3, 0x21, 0xa1],
        ),
    },
    KernelGroup {
        group: 0x0b,
        name: "Kernel/SystemConfig",
        guid: g(
            0x01853a65,
            0x418f,
            0x4f36,
            [0xae, 0xfc, 0xdc, 0x0f, 0x1d, 0x2f, 0xd2, 0x35],
        ),
    },
    KernelGroup {
        group: 0x0d,
        name: "Kernel/Pool",
        guid: g(
            0x0268a8b6,
            0x74fd,
            0x4302,
            [0x9d, 0xd0, 0x6e, 0x8f, 0x17, 0x95, 0xc0, 0xcf],
        ),
    },
    KernelGroup {
        group: 0x0f,
        name: "Kernel/PerfInfo",
        guid: g(
            0xce1dbfb4,
            0x137e,
            0x4da6,
            [0x87, 0xb0, 0x3f, 0x59, 0xaa, 0x10, 0x2c, 0xbc],
        ),
    },
    KernelGroup {
        group: 0x10,
        name: "Kernel/Heap",
        guid: g(
            0x222962ab,
            0x6180,
            0x4b88,
            [0xa8, 0x25, 0x34, 0x6b, 0x75, 0xf2, 0xa2, 0x4a],
        ),
    },
    KernelGroup {
        group: 0x11,
        name: "Kernel/Object",
        guid: g(
            0x89497f50,
            0xeffe,
            0x4440,
            [0x8c, 0xf2, 0xce, 0x6b, 0x1c, 0xdc, 0xac, 0xa7],
        ),
    },
    KernelGroup {
        group: 0x12,
        name: "Kernel/Power",
        guid: g(
            0xe43445e0,
            0x0903,
            0x48c3,
            [0xb8, 0x78, 0xff, 0x0f, 0xcc, 0xeb, 0xdd, 0x04],
        ),
    },
    KernelGroup {
        group: 0x14,
        name: "Kernel/Image",
        guid: g(
            0x2cb15d1d,
            0x5fc1,
            0x11d2,
            [0xab, 0xe1, 0x00, 0xa0, 0xc9, 0x11, 0xf5, 0x18],
        ),
    },
    KernelGroup {
        group: 0x18,
        name: "Kernel/StackWalk",
        guid: g(
            0xdef2fe46,
            0x7bd6,
            0x4b80,
            [0xbd, 0x94, 0xf5, 0x7f, 0xe2, 0x0d, 0x0c, 0xe3],
        ),
    },
    KernelGroup {
        group: 0x1a,
        name: "Kernel/ALPC",
        guid: g(
            0x45d8cccd,
            0x539f,
            0x4b72,
            [0xa8, 0xb7, 0x5c, 0x68, 0x31, 0x42, 0x60, 0x9a],
        ),
    },
    KernelGroup {
        group: 0x1b,
        name: "Kernel/SplitIo",
        guid: g(
            0xd837ca92,
            0x12b9,
            0x44a5,
            [0xad, 0x6a, 0x3a, 0x65, 0xb3, 0x57, 0x8a, 0xa8],
        ),
    },
    KernelGroup {
        group: 0x1c,
        name: "Kernel/ThreadPool",
        guid: g(
            0xc861d0e2,
            0xa2c1,
            0x4d36,
            [0x9f, 0x9c, 0x97, 0x0b, 0xab, 0x94, 0x3a, 0x12],
        ),
    },
];

pub const GROUP_HEADER: u8 = 0x00;
pub const GROUP_PROCESS: u8 = 0x03;
pub const GROUP_THREAD: u8 = 0x05;
pub const GROUP_IMAGE: u8 = 0x14;
pub const GROUP_STACKWALK: u8 = 0x18;

pub fn kernel_group(group: u8) -> Option<&'static KernelGroup> {
    KERNEL_GROUPS.iter().find(|g| g.group == group)
}

/// The kernel group whose GUID this is (classic records of a kernel
/// provider logged with a full header rather than a system header).
pub fn kernel_group_by_guid(guid: &Guid) -> Option<&'static KernelGroup> {
    KERNEL_GROUPS.iter().find(|g| g.guid == *guid)
}

const WELL_KNOWN: &str = include_str!("../../../providers/well-known-providers.csv");

fn table() -> &'static HashMap<Guid, &'static str> {
    static TABLE: OnceLock<HashMap<Guid, &'static str>> = OnceLock::new();
    TABLE.get_or_init(|| {
        WELL_KNOWN
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (guid, name) = l.split_once(',')?;
                Some((guid.parse().ok()?, name.trim()))
            })
            .collect()
    })
}

/// Name of a well-known provider, or of a kernel group by its GUID.
pub fn provider_name(guid: &Guid) -> Option<&'static str> {
    table()
        .get(guid)
        .copied()
        .or_else(|| kernel_group_by_guid(guid).map(|g| g.name))
}

/// GUIDs whose well-known or kernel name matches, ignoring case.
pub fn guids_named(name: &str) -> Vec<Guid> {
    let mut out: Vec<Guid> = table()
        .iter()
        .filter(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(g, _)| *g)
        .collect();
    out.extend(
        KERNEL_GROUPS
            .iter()
            .filter(|g| g.name.eq_ignore_ascii_case(name))
            .map(|g| g.guid),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_table_parses() {
        let lines = WELL_KNOWN
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .count();
        assert_eq!(table().len(), lines);
        let ps: Guid = "a0c1853b-5c40-4b15-8766-3cf1c58f985a".parse().unwrap();
        assert_eq!(provider_name(&ps), Some("Microsoft-Windows-PowerShell"));
        assert_eq!(
            guids_named("kernel/thread"),
            vec![kernel_group(GROUP_THREAD).unwrap().guid]
        );
    }
}
