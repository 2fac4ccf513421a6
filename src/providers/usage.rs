//! The usage table: which cluster APIs and control codes a resource DLL may
//! call from where (providers/usage-table.toml).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::model::{EntryPoint, ThreadKind, UsageCode};
use crate::providers::config::{self, ConfigError};

const EMBEDDED: &str = include_str!("../../providers/usage-table.toml");
const EMBEDDED_PATH: &str = "providers/usage-table.toml (built in)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiKind {
    Function,
    ControlCode,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiUsage {
    pub name: String,
    pub kind: ApiKind,
    pub usage: UsageCode,
    /// Numeric value of a control code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
}

/// What a usage code means.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UsageCodeMeaning {
    pub label: String,
    pub meaning: String,
    /// Threads a call with this code may come from (worker-thread-only).
    #[serde(default)]
    pub allowed_threads: Vec<ThreadKind>,
    /// Entry points a call with this code may not come from.
    #[serde(default)]
    pub forbidden_entry_points: Vec<EntryPoint>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    api: Vec<ApiUsage>,
    usage_codes: BTreeMap<UsageCode, UsageCodeMeaning>,
}

#[derive(Debug, Clone)]
pub struct UsageTable {
    apis: Vec<ApiUsage>,
    by_name: HashMap<String, usize>,
    by_code: HashMap<u32, usize>,
    codes: BTreeMap<UsageCode, UsageCodeMeaning>,
}

impl UsageTable {
    /// The table built into the binary.
    pub fn embedded() -> UsageTable {
        // The embedded file is tested; failing here is a build defect.
        Self::parse(EMBEDDED, Path::new(EMBEDDED_PATH)).expect("the built-in usage table is valid")
    }

    pub fn load(path: &Path) -> Result<UsageTable, ConfigError> {
        Self::parse(&config::read(path)?, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<UsageTable, ConfigError> {
        let file: File = config::parse_toml(text, path)?;
        let err = |needle: &str, msg: String| ConfigError::new(path, text, text.find(needle), msg);
        for code in [
            UsageCode::DoNotUse,
            UsageCode::WorkerThreadOnly,
            UsageCode::SomeEntryPointsOkay,
        ] {
            if !file.usage_codes.contains_key(&code) {
                return Err(err(
                    "[usage-codes",
                    format!("usage code {code} is not described under [usage-codes]"),
                ));
            }
        }
        let mut by_name = HashMap::new();
        let mut by_code = HashMap::new();
        for (i, api) in file.api.iter().enumerate() {
            let at = format!("\"{}\"", api.name);
            match (api.kind, api.code) {
                (ApiKind::ControlCode, None) => {
                    return Err(err(
                        &at,
                        format!("control code {} has no numeric `code`", api.name),
                    ))
                }
                (ApiKind::Function, Some(_)) => {
                    return Err(err(
                        &at,
                        format!("function {} has a `code`; only control codes do", api.name),
                    ))
                }
                _ => {}
            }
            if by_name.insert(api.name.to_ascii_lowercase(), i).is_some() {
                return Err(err(&at, format!("{} is listed twice", api.name)));
            }
            if let Some(code) = api.code {
                if let Some(other) = by_code.insert(code, i) {
                    return Err(err(
                        &at,
                        format!(
                            "{} has code {code:#010x}, as {} does",
                            api.name, file.api[other].name
                        ),
                    ));
                }
            }
        }
        Ok(UsageTable {
            apis: file.api,
            by_name,
            by_code,
            codes: file.usage_codes,
        })
    }

    pub fn apis(&self) -> &[ApiUsage] {
        &self.apis
    }

    pub fn meaning(&self, code: UsageCode) -> &UsageCodeMeaning {
        // parse() guarantees every code is described.
        &self.codes[&code]
    }

    /// A row by API or control-code name, any letter case.
    pub fn by_name(&self, name: &str) -> Option<&ApiUsage> {
        self.by_name
            .get(&name.trim().to_ascii_lowercase())
            .map(|&i| &self.apis[i])
    }

    /// A control code by its numeric value.
    pub fn by_code(&self, code: u32) -> Option<&ApiUsage> {
        self.by_code.get(&code).map(|&i| &self.apis[i])
    }

    /// A row by name, or by a control code written as a number ("0x0100000d"
    /// or decimal), as traces that log only the number do.
    pub fn resolve(&self, api: &str) -> Option<&ApiUsage> {
        self.by_name(api)
            .or_else(|| parse_number(api).and_then(|c| self.by_code(c)))
    }

    /// Whether `usage` forbids a call made inside `entry_point`.
    pub fn forbidden_in(&self, usage: UsageCode, entry_point: EntryPoint) -> bool {
        match usage {
            UsageCode::DoNotUse => true,
            UsageCode::WorkerThreadOnly => !self
                .meaning(usage)
                .allowed_threads
                .contains(&ThreadKind::RhsEntryPoint),
            UsageCode::SomeEntryPointsOkay => self
                .meaning(usage)
                .forbidden_entry_points
                .contains(&entry_point),
        }
    }
}

fn parse_number(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_by_name_and_number() {
        let t = UsageTable::embedded();
        assert_eq!(t.apis().len(), 105);
        let info = t.resolve("0x0100000D").unwrap();
        assert_eq!(info.name, "CLUSCTL_RESOURCE_GET_CLASS_INFO");
        assert_eq!(t.resolve("16777229").unwrap().name, info.name);
        assert_eq!(
            t.resolve("onlineclusterresource").unwrap().usage,
            UsageCode::DoNotUse
        );
        assert!(t.resolve("CreateFileW").is_none());
        assert!(t.forbidden_in(UsageCode::SomeEntryPointsOkay, EntryPoint::OfflineV2));
        assert!(!t.forbidden_in(UsageCode::SomeEntryPointsOkay, EntryPoint::ResourceControl));
        assert!(t.forbidden_in(UsageCode::WorkerThreadOnly, EntryPoint::IsAlive));
    }

    #[test]
    fn bad_tables_name_file_and_line() {
        let p = Path::new("t.toml");
        let base = EMBEDDED.replace("api = [\n", "api = [\n  { name = \"X\", kind = \"function\", usage = \"do-not-use\", colour = 1 },\n");
        let e = UsageTable::parse(&base, p).unwrap_err();
        assert!(e.to_string().starts_with("t.toml:"), "{e}");
        assert!(e.message.contains("colour"), "{e}");
        assert_eq!(
            e.line,
            base.lines().position(|l| l.contains("colour")).unwrap() + 1
        );

        let dup = EMBEDDED.replace("api = [\n", "api = [\n  { name = \"FailClusterResource\", kind = \"function\", usage = \"do-not-use\" },\n");
        let e = UsageTable::parse(&dup, p).unwrap_err();
        assert!(e.message.contains("listed twice"), "{e}");

        let nocode = EMBEDDED.replace(", code = 0x0100000d", "");
        let e = UsageTable::parse(&nocode, p).unwrap_err();
        assert_eq!(
            e.message,
            "control code CLUSCTL_RESOURCE_GET_CLASS_INFO has no numeric `code`"
        );
        let line = nocode
            .lines()
            .position(|l| l.contains("\"CLUSCTL_RESOURCE_GET_CLASS_INFO\""))
            .unwrap()
            + 1;
        assert_eq!(e.line, line);

        let badusage = EMBEDDED.replacen("usage = \"do-not-use\"", "usage = \"sometimes\"", 1);
        assert!(UsageTable::parse(&badusage, p)
            .unwrap_err()
            .message
            .contains("sometimes"));
    }
}
