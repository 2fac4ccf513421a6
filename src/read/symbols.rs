//! Symbols for the images a trace names, from folders a user copies from
//! the node or a symbol store: PE files (their exports are enough to name
//! the cluster API functions), PDBs (public symbols) and Breakpad `.sym`
//! files. An image is matched by the PDB it was built with (GUID and age,
//! from the trace's DbgID_RSDS), else by its PE timestamp and size, else by
//! its file name. A symbol-server layout (`name.pdb/GUIDAGE/name.pdb`,
//! `name.dll/TIMESTAMPSIZE/name.dll`) is just folders to walk. Nothing is
//! fetched from a network.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};

use object::read::pe::{PeFile32, PeFile64};
use object::{FileKind, LittleEndian as LE};

use super::etl::Guid;

#[derive(Debug, thiserror::Error)]
pub enum SymbolError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a folder of symbols", path.display())]
    NotAFolder { path: PathBuf },
}

/// Which build of an image a symbol file is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The PDB's GUID and age.
    pub debug: Option<(Guid, u32)>,
    /// The PE's TimeDateStamp and SizeOfImage.
    pub code: Option<(u32, u64)>,
    /// The image's file name, lower case (`clusapi.dll`).
    pub code_file: Option<String>,
    /// The PDB's file name, lower case (`clusapi.pdb`).
    pub debug_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pe,
    Pdb,
    Breakpad,
}

/// One symbol file found, read in full when first used.
struct SymbolFile {
    path: PathBuf,
    format: Format,
    id: Identity,
    /// Read when first used; None when it could not be read.
    table: OnceLock<Option<Table>>,
}

/// Function start addresses (relative to the image base), sorted, with
/// their sizes where the file gives them.
#[derive(Debug, Default)]
struct Table {
    symbols: Vec<(u64, Option<u64>, String)>,
}

impl Table {
    fn lookup(&self, rva: u64) -> Option<(&str, u64)> {
        let i = self
            .symbols
            .partition_point(|s| s.0 <= rva)
            .checked_sub(1)?;
        let (start, size, name) = &self.symbols[i];
        if size.is_some_and(|n| rva - start >= n) {
            return None;
        }
        Some((name.as_str(), rva - start))
    }

    fn finish(mut self) -> Table {
        self.symbols
            .sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        self.symbols.dedup_by(|a, b| a.0 == b.0);
        self
    }
}

/// The symbol files of some folders.
#[derive(Default)]
pub struct SymbolFiles {
    files: Vec<SymbolFile>,
    /// Files that could not be read, with why (said once, never fatal).
    pub unreadable: Vec<String>,
    /// Files whose identity read but whose symbols did not, found when
    /// first used.
    failed: Mutex<Vec<String>>,
}

/// What the symbols say of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub function: String,
    pub offset: u64,
}

impl SymbolFiles {
    /// Walks `dirs` for `.dll`, `.exe`, `.sys`, `.pdb` and `.sym` files and
    /// reads their identities.
    pub fn scan(dirs: &[PathBuf]) -> Result<SymbolFiles, SymbolError> {
        let mut out = SymbolFiles::default();
        for dir in dirs {
            if !dir.is_dir() {
                return Err(SymbolError::NotAFolder { path: dir.clone() });
            }
            std::fs::read_dir(dir).map_err(|source| SymbolError::Io {
                path: dir.clone(),
                source,
            })?;
            // Folders by their real path: a link back up the tree is
            // walked once.
            let mut seen: HashSet<PathBuf> = HashSet::new();
            let mut stack = vec![dir.clone()];
            while let Some(d) = stack.pop() {
                if !seen.insert(std::fs::canonicalize(&d).unwrap_or_else(|_| d.clone())) {
                    continue;
                }
                // A folder that cannot be read costs that folder.
                let entries = match std::fs::read_dir(&d) {
                    Ok(e) => e,
                    Err(e) => {
                        out.unreadable.push(format!("{}: {e}", d.display()));
                        continue;
                    }
                };
                let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                paths.sort();
                for p in paths {
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        out.add(&p);
                    }
                }
            }
        }
        Ok(out)
    }

    fn add(&mut self, path: &Path) {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let format = match ext.as_str() {
            "dll" | "exe" | "sys" => Format::Pe,
            "pdb" => Format::Pdb,
            "sym" => Format::Breakpad,
            _ => return,
        };
        let read = match format {
            Format::Pe => pe_identity(path),
            Format::Pdb => guarded(|| pdb_identity(path)),
            Format::Breakpad => breakpad_identity(path),
        };
        match read {
            Ok(id) => self.files.push(SymbolFile {
                path: path.to_path_buf(),
                format,
                id,
                table: OnceLock::new(),
            }),
            Err(why) => self.unreadable.push(format!("{}: {why}", path.display())),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// The best file for an image: one for its PDB, else one for its PE
    /// build, else one with its name. Among equals, symbol files (PDB,
    /// Breakpad) before a PE's exports. A file of another build (both
    /// sides know the PDB or the PE build, and they differ) is never
    /// used: its addresses would name the wrong functions.
    fn best(&self, image: &Identity) -> Option<&SymbolFile> {
        let rank = |f: &SymbolFile| -> Option<u8> {
            let named = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
            let by_debug = image.debug.is_some() && f.id.debug == image.debug;
            let by_code = image.code.is_some() && f.id.code == image.code;
            if !by_debug
                && (other_build(&f.id.debug, &image.debug) || other_build(&f.id.code, &image.code))
            {
                return None;
            }
            let by_name = named(&f.id.code_file, &image.code_file)
                || named(&f.id.debug_file, &image.debug_file);
            let kind = if f.format == Format::Pe { 1 } else { 0 };
            match (by_debug, by_code, by_name) {
                (true, _, _) => Some(kind),
                (_, true, _) => Some(2 + kind),
                (_, _, true) => Some(4 + kind),
                _ => None,
            }
        };
        self.files
            .iter()
            .filter_map(|f| rank(f).map(|r| (r, f)))
            .min_by_key(|(r, _)| *r)
            .map(|(_, f)| f)
    }

    /// The function holding `rva` in the image identified by `image`.
    pub fn resolve(&self, image: &Identity, rva: u64) -> Option<Resolved> {
        let file = self.best(image)?;
        let table = file.table.get_or_init(|| {
            read_table(&file.path, file.format)
                .map_err(|why| {
                    if let Ok(mut failed) = self.failed.lock() {
                        failed.push(format!("{}: {why}", file.path.display()));
                    }
                })
                .ok()
        });
        table.as_ref()?.lookup(rva).map(|(name, offset)| Resolved {
            function: name.to_string(),
            offset,
        })
    }

    /// Symbol files found unreadable when first used, with why.
    pub fn failed(&self) -> Vec<String> {
        self.failed.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Whether any file serves an image of this identity.
    pub fn has(&self, image: &Identity) -> bool {
        self.best(image).is_some()
    }
}

/// Both sides know this part of the identity, and it differs.
fn other_build<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
    a.is_some() && b.is_some() && a != b
}

fn lower_file_name(p: &[u8]) -> String {
    super::etl::stackwalk::module_name(&String::from_utf8_lossy(p))
}

/// A GUID from the 16 bytes of a CodeView record (Data1-3 little-endian).
fn guid_from_le(bytes: [u8; 16]) -> Guid {
    Guid::from_le_bytes(bytes)
}

fn pe_identity(path: &Path) -> Result<Identity, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut id = Identity {
        code_file: path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase()),
        ..Identity::default()
    };
    macro_rules! fill {
        ($pe:expr) => {{
            let pe = $pe.map_err(|e| format!("not a PE file: {e}"))?;
            let nt = pe.nt_headers();
            use object::read::pe::{ImageNtHeaders, ImageOptionalHeader};
            id.code = Some((
                nt.file_header().time_date_stamp.get(LE),
                u64::from(nt.optional_header().size_of_image()),
            ));
            if let Ok(Some(cv)) = object::Object::pdb_info(&pe) {
                id.debug = Some((guid_from_le(cv.guid()), cv.age()));
                id.debug_file = Some(lower_file_name(cv.path()));
            }
        }};
    }
    match FileKind::parse(&*data).map_err(|e| format!("not a PE file: {e}"))? {
        FileKind::Pe64 => fill!(PeFile64::parse(&*data)),
        FileKind::Pe32 => fill!(PeFile32::parse(&*data)),
        other => return Err(format!("not a PE file ({other:?})")),
    }
    Ok(id)
}

fn pe_table(path: &Path) -> Result<Table, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut t = Table::default();
    macro_rules! exports {
        ($pe:expr) => {{
            let pe = $pe.map_err(|e| e.to_string())?;
            if let Some(table) = pe.export_table().map_err(|e| e.to_string())? {
                for e in table.exports().map_err(|e| e.to_string())? {
                    if let (Some(name), object::read::pe::ExportTarget::Address(rva)) =
                        (e.name, e.target)
                    {
                        t.symbols.push((
                            u64::from(rva),
                            None,
                            String::from_utf8_lossy(name).into_owned(),
                        ));
                    }
                }
            }
        }};
    }
    match FileKind::parse(&*data).map_err(|e| e.to_string())? {
        FileKind::Pe64 => exports!(PeFile64::parse(&*data)),
        FileKind::Pe32 => exports!(PeFile32::parse(&*data)),
        _ => {}
    }
    Ok(t.finish())
}

fn pdb_identity(path: &Path) -> Result<Identity, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut pdb = pdb::PDB::open(file).map_err(|e| format!("not a PDB: {e}"))?;
    let info = pdb.pdb_information().map_err(|e| e.to_string())?;
    // The image records the DBI stream's age (the information stream's
    // may have been bumped since).
    let age = pdb
        .debug_information()
        .ok()
        .and_then(|d| d.age())
        .unwrap_or(info.age);
    let (d1, d2, d3, d4) = info.guid.as_fields();
    Ok(Identity {
        debug: Some((Guid::from_fields(d1, d2, d3, *d4), age)),
        debug_file: path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase()),
        ..Identity::default()
    })
}

fn pdb_table(path: &Path) -> Result<Table, String> {
    use pdb::FallibleIterator;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut pdb = pdb::PDB::open(file).map_err(|e| e.to_string())?;
    let map = pdb.address_map().map_err(|e| e.to_string())?;
    let globals = pdb.global_symbols().map_err(|e| e.to_string())?;
    let mut t = Table::default();
    let mut it = globals.iter();
    // A damaged record ends the stream: the symbols before it are kept.
    while let Ok(Some(s)) = it.next() {
        if let Ok(pdb::SymbolData::Public(p)) = s.parse() {
            if let Some(rva) = p.offset.to_rva(&map) {
                t.symbols
                    .push((u64::from(rva.0), None, p.name.to_string().into_owned()));
            }
        }
    }
    Ok(t.finish())
}

/// `MODULE windows x86_64 <GUID><AGE> <pdb>` and `INFO CODE_ID <id> <file>`.
fn breakpad_identity(path: &Path) -> Result<Identity, String> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut id = Identity::default();
    for (n, line) in std::io::BufReader::new(file).lines().take(16).enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["MODULE", _os, _arch, debug_id, name @ ..] => {
                id.debug = parse_debug_id(debug_id);
                id.debug_file = Some(lower_file_name(name.join(" ").as_bytes()));
            }
            ["INFO", "CODE_ID", code_id, name @ ..] => {
                id.code = parse_code_id(code_id);
                if !name.is_empty() {
                    id.code_file = Some(lower_file_name(name.join(" ").as_bytes()));
                }
            }
            _ if n == 0 => return Err("not a Breakpad symbol file (no MODULE line)".into()),
            _ => {}
        }
    }
    Ok(id)
}

/// `4C1E3A529B7D4E2FA1C35D6E7F809A1B2`: the GUID's fields, then the age.
pub fn parse_debug_id(s: &str) -> Option<(Guid, u32)> {
    if s.len() < 33 || !s.is_ascii() {
        return None;
    }
    let hex = |a: usize, b: usize| u64::from_str_radix(&s[a..b], 16).ok();
    let mut d4 = [0u8; 8];
    for (i, b) in d4.iter_mut().enumerate() {
        *b = hex(16 + 2 * i, 18 + 2 * i)? as u8;
    }
    let guid = Guid::from_fields(
        hex(0, 8)? as u32,
        hex(8, 12)? as u16,
        hex(12, 16)? as u16,
        d4,
    );
    let age = u32::from_str_radix(&s[32..], 16).ok()?;
    Some((guid, age))
}

/// `5F3A2B1C6000`: TimeDateStamp (8 hex digits), then SizeOfImage.
fn parse_code_id(s: &str) -> Option<(u32, u64)> {
    if s.len() <= 8 || !s.is_ascii() {
        return None;
    }
    Some((
        u32::from_str_radix(&s[..8], 16).ok()?,
        u64::from_str_radix(&s[8..], 16).ok()?,
    ))
}

fn breakpad_table(path: &Path) -> Result<Table, String> {
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&text);
    let mut t = Table::default();
    let mut publics: Vec<(u64, String)> = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(2, ' ');
        let (Some(kind), Some(rest)) = (f.next(), f.next()) else {
            continue;
        };
        let rest = rest.strip_prefix("m ").unwrap_or(rest);
        match kind {
            // FUNC <address> <size> <parameter size> <name>
            "FUNC" => {
                let p: Vec<&str> = rest.splitn(4, ' ').collect();
                if let [a, size, _, name] = p.as_slice() {
                    if let (Ok(a), Ok(size)) =
                        (u64::from_str_radix(a, 16), u64::from_str_radix(size, 16))
                    {
                        t.symbols.push((a, Some(size), (*name).to_string()));
                    }
                }
            }
            // PUBLIC <address> <parameter size> <name>
            "PUBLIC" => {
                let p: Vec<&str> = rest.splitn(3, ' ').collect();
                if let [a, _, name] = p.as_slice() {
                    if let Ok(a) = u64::from_str_radix(a, 16) {
                        publics.push((a, (*name).to_string()));
                    }
                }
            }
            _ => {}
        }
    }
    // A FUNC covering an address wins over a PUBLIC there (FUNCs do not
    // overlap: the one starting last at or before the address is the one).
    t.symbols.sort_by_key(|s| s.0);
    let covered = |a: u64, t: &Table| {
        let i = t.symbols.partition_point(|s| s.0 <= a);
        i.checked_sub(1)
            .and_then(|i| t.symbols.get(i))
            .is_some_and(|(s, n, _)| n.is_some_and(|n| a - s < n))
    };
    let kept: Vec<(u64, Option<u64>, String)> = publics
        .into_iter()
        .filter(|(a, _)| !covered(*a, &t))
        .map(|(a, n)| (a, None, n))
        .collect();
    t.symbols.extend(kept);
    Ok(t.finish())
}

fn read_table(path: &Path, format: Format) -> Result<Table, String> {
    match format {
        Format::Pe => pe_table(path),
        Format::Pdb => guarded(|| pdb_table(path)),
        Format::Breakpad => breakpad_table(path),
    }
}

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Runs the `pdb` crate on a file's data: it adds section addresses and
/// offsets from the file unchecked, so a damaged PDB can panic inside it.
/// That costs the file (an error for it), not the run, and prints no
/// panic message.
fn guarded<T>(read: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !GUARDED.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    GUARDED.with(|g| g.set(was));
    result.unwrap_or_else(|_| Err("damaged PDB (its reader gave up on it)".into()))
}

/// Resolved names cached per image build and rva: two processes may load
/// different DLLs at one base.
#[derive(Default)]
pub struct Cache {
    names: HashMap<(Identity, u64), Option<Resolved>>,
}

impl Cache {
    pub fn resolve(&mut self, files: &SymbolFiles, image: &Identity, rva: u64) -> Option<Resolved> {
        if let Some(known) = self.names.get(&(image.clone(), rva)) {
            return known.clone();
        }
        let found = files.resolve(image, rva);
        self.names.insert((image.clone(), rva), found.clone());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_code_ids_parse() {
        let (g, age) = parse_debug_id("4C1E3A529B7D4E2FA1C35D6E7F809A1B2").unwrap();
        assert_eq!(g.to_string(), "4c1e3a52-9b7d-4e2f-a1c3-5d6e7f809a1b");
        assert_eq!(age, 2);
        assert_eq!(parse_code_id("5F3A2B1C6000"), Some((0x5f3a_2b1c, 0x6000)));
        assert_eq!(parse_debug_id("nothex"), None);
    }

    #[test]
    fn funcs_win_over_publics_and_sizes_bound_them() {
        let dir = std::env::temp_dir().join(format!("rhscope-sym-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.sym");
        std::fs::write(
            &p,
            "MODULE windows x86_64 4C1E3A529B7D4E2FA1C35D6E7F809A1B2 a.pdb\nINFO CODE_ID 5F3A2B1C6000 a.dll\nFUNC 1000 20 0 Inner\nPUBLIC 1010 0 Hidden\nPUBLIC 2000 0 Later\n",
        )
        .unwrap();
        let t = breakpad_table(&p).unwrap();
        assert_eq!(t.lookup(0x1015), Some(("Inner", 0x15)));
        assert_eq!(t.lookup(0x1020), None);
        assert_eq!(t.lookup(0x2400), Some(("Later", 0x400)));
        let id = breakpad_identity(&p).unwrap();
        assert_eq!(id.code, Some((0x5f3a_2b1c, 0x6000)));
        assert_eq!(id.code_file.as_deref(), Some("a.dll"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn another_build_of_an_image_is_never_used_and_links_are_walked_once() {
        let dir = std::env::temp_dir().join(format!("rhscope-sym-build-{}", std::process::id()));
        let store = dir.join("store");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(
            store.join("a.sym"),
            "MODULE windows x86_64 4C1E3A529B7D4E2FA1C35D6E7F809A1B2 a.pdb\nINFO CODE_ID 5F3A2B1C6000 a.dll\nPUBLIC 1000 0 Named\n",
        )
        .unwrap();
        // A link back up the tree: walked once, the file found once.
        #[cfg(unix)]
        std::os::unix::fs::symlink(&dir, store.join("loop")).unwrap();
        let files = SymbolFiles::scan(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(files.len(), 1);
        let (guid, age) = parse_debug_id("4C1E3A529B7D4E2FA1C35D6E7F809A1B2").unwrap();
        let image = |debug, code| Identity {
            debug,
            code,
            code_file: Some("a.dll".into()),
            debug_file: Some("a.pdb".into()),
        };
        let named = |id: &Identity| files.resolve(id, 0x1004).map(|r| r.function);
        // Same PDB; same PE build; only the name known: served.
        assert_eq!(
            named(&image(Some((guid, age)), None)).as_deref(),
            Some("Named")
        );
        assert_eq!(
            named(&image(None, Some((0x5f3a_2b1c, 0x6000)))).as_deref(),
            Some("Named")
        );
        assert_eq!(named(&image(None, None)).as_deref(), Some("Named"));
        // Another age of the PDB, another PE build: the names would lie.
        assert_eq!(named(&image(Some((guid, age + 1)), None)), None);
        assert_eq!(named(&image(None, Some((0x5f3a_2b1d, 0x6000)))), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_pdb_costs_that_file_without_a_panic() {
        let r: Result<(), String> = guarded(|| panic!("overflow in a parser"));
        assert_eq!(r, Err("damaged PDB (its reader gave up on it)".into()));
    }
}
