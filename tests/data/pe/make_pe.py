#!/usr/bin/env python3
"""Write two small, hand-made PE32+ (AMD64) DLL images used as test fixtures.

The images imitate the *shape* of clusapi.dll and resutils.dll as far as a
symbolizer needs it: a header with a TimeDateStamp and SizeOfImage, an export
directory naming a few functions, and a CodeView (RSDS) debug record.  The
code section holds nothing but a two-instruction entry point (return TRUE) and
`ret` / `int3` bytes at the exported addresses; nothing here comes from a
Microsoft binary.

Standard library only, and deterministic: running it again produces the same
bytes.  Usage (from anywhere):

    python3 tests/data/pe/make_pe.py

The .dll files are written next to this script.
"""

import os
import struct
import uuid

FILE_ALIGN = 0x200
SECT_ALIGN = 0x1000

# Layout shared by both images.
TEXT_RVA = 0x1000
RDATA_RVA = 0x2000
DATA_RVA = 0x3000  # uninitialised .data, stretched so the image ends at SizeOfImage
DOS_HEADER_SIZE = 0x40
E_LFANEW = 0x80
SIZEOF_OPTIONAL_HEADER = 0xF0  # PE32+: 112 bytes of fields + 16 data directories
NUM_SECTIONS = 3

IMAGE_FILE_MACHINE_AMD64 = 0x8664
IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002
IMAGE_FILE_LARGE_ADDRESS_AWARE = 0x0020
IMAGE_FILE_DLL = 0x2000

IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA = 0x0020
IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE = 0x0040
IMAGE_DLLCHARACTERISTICS_NX_COMPAT = 0x0100

IMAGE_SUBSYSTEM_WINDOWS_CUI = 3
IMAGE_DEBUG_TYPE_CODEVIEW = 2

IMAGE_SCN_CNT_CODE = 0x00000020
IMAGE_SCN_CNT_INITIALIZED_DATA = 0x00000040
IMAGE_SCN_CNT_UNINITIALIZED_DATA = 0x00000080
IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_MEM_READ = 0x40000000
IMAGE_SCN_MEM_WRITE = 0x80000000

DIR_EXPORT = 0
DIR_DEBUG = 6

IMAGES = [
    {
        "file": "clusapi.dll",
        "dll_name": "CLUSAPI.dll",
        "timestamp": 0x5F3A2B1C,
        "size_of_image": 0x6000,
        "image_base": 0x180000000,
        # Listed in address order; this order also fixes the ordinals (base 1).
        "exports": [
            ("OnlineClusterResource", 0x1010),
            ("OfflineClusterResource", 0x1040),
            ("GetClusterResourceState", 0x1080),
            ("ClusterRegSetValue", 0x10C0),
            ("ClusterResourceControl", 0x1100),
            ("AddClusterResourceDependency", 0x1140),
            ("ClusterRegGetValue", 0x1180),
        ],
        "guid": "4C1E3A52-9B7D-4E2F-A1C3-5D6E7F809A1B",
        "age": 2,
        "pdb": "clusapi.pdb",
    },
    {
        "file": "resutils.dll",
        "dll_name": "RESUTILS.dll",
        "timestamp": 0x5F3A2B2D,
        "size_of_image": 0x5000,
        "image_base": 0x180000000,
        "exports": [
            ("ClusWorkerCreate", 0x1010),
            ("ClusWorkerTerminate", 0x1030),
            ("ResUtilGetResourceDependency", 0x1050),
            ("ResUtilSetPrivatePropertyList", 0x1090),
        ],
        "guid": "7A2B3C4D-5E6F-4071-8293-A4B5C6D7E8F9",
        "age": 1,
        "pdb": "resutils.pdb",
    },
]


def align(value, alignment):
    return (value + alignment - 1) // alignment * alignment


def pad(data, size, fill=b"\0"):
    assert len(data) <= size, (len(data), size)
    return data + fill * (size - len(data))


def dos_header_and_stub():
    """64-byte MZ header followed by a self-written 16-bit stub (0x40..0x80)."""
    message = b"Windows PE image, not a DOS program.\r\n$"
    code = bytes(
        [
            0x0E,              # push cs
            0x1F,              # pop ds
            0xBA, 0x0E, 0x00,  # mov dx, 000Eh   (offset of message)
            0xB4, 0x09,        # mov ah, 09h     (print '$'-terminated string)
            0xCD, 0x21,        # int 21h
            0xB8, 0x01, 0x4C,  # mov ax, 4C01h   (exit, code 1)
            0xCD, 0x21,        # int 21h
        ]
    )
    assert len(code) == 0x0E
    stub = pad(code + message, E_LFANEW - DOS_HEADER_SIZE)
    dos_image_size = E_LFANEW  # header + stub, as seen by DOS
    header = struct.pack(
        "<2s13H8s2H20sI",
        b"MZ",
        dos_image_size % 512,              # e_cblp
        align(dos_image_size, 512) // 512,  # e_cp
        0,                                 # e_crlc
        DOS_HEADER_SIZE // 16,             # e_cparhdr
        0x10,                              # e_minalloc (room for the stack)
        0xFFFF,                            # e_maxalloc
        0,                                 # e_ss
        0x100,                             # e_sp
        0,                                 # e_csum
        0,                                 # e_ip
        0,                                 # e_cs
        DOS_HEADER_SIZE,                   # e_lfarlc
        0,                                 # e_ovno
        b"\0" * 8,                         # e_res
        0,                                 # e_oemid
        0,                                 # e_oeminfo
        b"\0" * 20,                        # e_res2
        E_LFANEW,                          # e_lfanew
    )
    assert len(header) == DOS_HEADER_SIZE
    return header + stub


# Entry point (a DllMain that only returns TRUE): mov eax, 1 ; ret
ENTRY_RVA = TEXT_RVA
ENTRY_CODE = b"\xB8\x01\x00\x00\x00\xC3"
# What sits at every exported address: ret, then int3 padding.
EXPORT_STUB = b"\xC3\xCC\xCC\xCC"


def build_text(exports):
    """Code section: the entry stub, and `ret; int3; int3; int3` at every export."""
    assert all(rva >= ENTRY_RVA + len(ENTRY_CODE) for _, rva in exports)
    end = max(rva for _, rva in exports) - TEXT_RVA + len(EXPORT_STUB)
    virtual_size = align(end, 0x10)
    code = bytearray(virtual_size)
    code[ENTRY_RVA - TEXT_RVA:ENTRY_RVA - TEXT_RVA + len(ENTRY_CODE)] = ENTRY_CODE
    for _, rva in exports:
        off = rva - TEXT_RVA
        code[off:off + len(EXPORT_STUB)] = EXPORT_STUB
    return bytes(code), virtual_size


def build_rdata(img):
    """Export directory + its tables and strings, then the debug directory and RSDS."""
    exports = img["exports"]
    n = len(exports)
    ordinal_base = 1

    # Ordinals follow the address order given above; the name pointer table is
    # sorted by name (byte-wise, as the loader's binary search expects).
    by_name = sorted(range(n), key=lambda i: exports[i][0].encode("ascii"))

    off_dir = 0
    off_funcs = off_dir + 40
    off_names = off_funcs + 4 * n
    off_ords = off_names + 4 * n
    off_strings = off_ords + 2 * n

    strings = bytearray()
    dll_name_off = off_strings + len(strings)
    strings += img["dll_name"].encode("ascii") + b"\0"
    name_offs = {}
    for i in by_name:
        name_offs[i] = off_strings + len(strings)
        strings += exports[i][0].encode("ascii") + b"\0"
    export_size = off_strings + len(strings)

    rva = lambda off: RDATA_RVA + off  # noqa: E731

    export_dir = struct.pack(
        "<IIHHIIIIIII",
        0,                    # Characteristics
        img["timestamp"],     # TimeDateStamp
        0, 0,                 # MajorVersion, MinorVersion
        rva(dll_name_off),    # Name
        ordinal_base,         # Base
        n,                    # NumberOfFunctions
        n,                    # NumberOfNames
        rva(off_funcs),       # AddressOfFunctions
        rva(off_names),       # AddressOfNames
        rva(off_ords),        # AddressOfNameOrdinals
    )
    funcs = b"".join(struct.pack("<I", r) for _, r in exports)
    names = b"".join(struct.pack("<I", rva(name_offs[i])) for i in by_name)
    ords = b"".join(struct.pack("<H", i) for i in by_name)  # index into funcs
    data = bytearray(export_dir + funcs + names + ords + bytes(strings))
    assert len(data) == export_size

    # Debug directory (one CodeView entry) and the RSDS record it points at.
    off_debug = align(len(data), 8)
    off_rsds = off_debug + 28
    rsds = (
        b"RSDS"
        + uuid.UUID(img["guid"]).bytes_le  # Data1/2/3 little-endian, Data4 as is
        + struct.pack("<I", img["age"])
        + img["pdb"].encode("ascii")
        + b"\0"
    )
    file_off_rdata = FILE_ALIGN * 2  # headers, then .text, then .rdata
    debug_dir = struct.pack(
        "<IIHHIIII",
        0,                         # Characteristics
        img["timestamp"],          # TimeDateStamp
        0, 0,                      # MajorVersion, MinorVersion
        IMAGE_DEBUG_TYPE_CODEVIEW, # Type
        len(rsds),                 # SizeOfData
        rva(off_rsds),             # AddressOfRawData
        file_off_rdata + off_rsds, # PointerToRawData
    )
    data = pad(bytes(data), off_debug) + debug_dir + rsds
    dirs = {
        DIR_EXPORT: (rva(off_dir), export_size),
        DIR_DEBUG: (rva(off_debug), 28),
    }
    return data, dirs


def section_header(name, vsize, vaddr, raw_size, raw_ptr, characteristics):
    return struct.pack(
        "<8sIIIIIIHHI",
        name.encode("ascii"),
        vsize,
        vaddr,
        raw_size,
        raw_ptr,
        0, 0, 0, 0,  # relocations / line numbers: none
        characteristics,
    )


def pe_checksum(image, checksum_offset):
    """The usual PE checksum: 16-bit one's-complement-style sum plus file length."""
    data = bytearray(image)
    data[checksum_offset:checksum_offset + 4] = b"\0\0\0\0"
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("<H", bytes(data)):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return (total + len(image)) & 0xFFFFFFFF


def build_image(img):
    text, text_vsize = build_text(img["exports"])
    rdata, dirs = build_rdata(img)

    headers_size = align(
        E_LFANEW + 4 + 20 + SIZEOF_OPTIONAL_HEADER + 40 * NUM_SECTIONS, FILE_ALIGN
    )
    text_raw_ptr = headers_size
    text_raw_size = align(len(text), FILE_ALIGN)
    rdata_raw_ptr = text_raw_ptr + text_raw_size
    rdata_raw_size = align(len(rdata), FILE_ALIGN)
    assert rdata_raw_ptr == FILE_ALIGN * 2  # build_rdata assumed this offset
    assert text_vsize <= RDATA_RVA - TEXT_RVA and len(rdata) <= DATA_RVA - RDATA_RVA
    data_vsize = img["size_of_image"] - DATA_RVA
    assert data_vsize > 0 and img["size_of_image"] % SECT_ALIGN == 0

    coff = struct.pack(
        "<HHIIIHH",
        IMAGE_FILE_MACHINE_AMD64,
        NUM_SECTIONS,
        img["timestamp"],
        0,  # PointerToSymbolTable
        0,  # NumberOfSymbols
        SIZEOF_OPTIONAL_HEADER,
        IMAGE_FILE_EXECUTABLE_IMAGE | IMAGE_FILE_LARGE_ADDRESS_AWARE | IMAGE_FILE_DLL,
    )

    optional = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        0x20B,               # Magic: PE32+
        14, 0,               # linker version
        text_raw_size,       # SizeOfCode
        rdata_raw_size,      # SizeOfInitializedData
        data_vsize,          # SizeOfUninitializedData
        ENTRY_RVA,           # AddressOfEntryPoint
        TEXT_RVA,            # BaseOfCode
        img["image_base"],   # ImageBase
        SECT_ALIGN,
        FILE_ALIGN,
        6, 0,                # OperatingSystemVersion
        0, 0,                # ImageVersion
        6, 0,                # SubsystemVersion
        0,                   # Win32VersionValue
        img["size_of_image"],
        headers_size,        # SizeOfHeaders
        0,                   # CheckSum, filled in below
        IMAGE_SUBSYSTEM_WINDOWS_CUI,
        IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA
        | IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE
        | IMAGE_DLLCHARACTERISTICS_NX_COMPAT,
        0x40000, 0x1000,     # stack reserve / commit
        0x100000, 0x1000,    # heap reserve / commit
        0,                   # LoaderFlags
        16,                  # NumberOfRvaAndSizes
    )
    directories = b"".join(struct.pack("<II", *dirs.get(i, (0, 0))) for i in range(16))
    optional += directories
    assert len(optional) == SIZEOF_OPTIONAL_HEADER

    sections = (
        section_header(".text", text_vsize, TEXT_RVA, text_raw_size, text_raw_ptr,
                       IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_MEM_READ)
        + section_header(".rdata", len(rdata), RDATA_RVA, rdata_raw_size, rdata_raw_ptr,
                         IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ)
        + section_header(".data", data_vsize, DATA_RVA, 0, 0,
                         IMAGE_SCN_CNT_UNINITIALIZED_DATA | IMAGE_SCN_MEM_READ
                         | IMAGE_SCN_MEM_WRITE)
    )

    headers = dos_header_and_stub() + b"PE\0\0" + coff + optional + sections
    image = bytearray(
        pad(headers, headers_size)
        + pad(text, text_raw_size)
        + pad(rdata, rdata_raw_size)
    )
    checksum_offset = E_LFANEW + 4 + 20 + 64
    struct.pack_into("<I", image, checksum_offset, pe_checksum(image, checksum_offset))
    return bytes(image)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    for img in IMAGES:
        data = build_image(img)
        path = os.path.join(here, img["file"])
        with open(path, "wb") as f:
            f.write(data)
        print(f"wrote {path} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
