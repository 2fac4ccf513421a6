//! Choosing events by provider: by GUID, or by name (any letter case) as
//! the trace or rhscope's table of well-known providers names them.

use super::{known, Event, Guid};

#[derive(Debug, Clone, Default)]
pub struct ProviderFilter {
    guids: Vec<Guid>,
    names: Vec<String>,
}

impl ProviderFilter {
    /// Each spec a GUID or a provider name; none keeps every event.
    pub fn new(specs: &[String]) -> ProviderFilter {
        let mut f = ProviderFilter::default();
        for spec in specs {
            match spec.parse::<Guid>() {
                Ok(g) => f.guids.push(g),
                Err(_) => {
                    f.guids.extend(known::guids_named(spec));
                    f.names.push(spec.to_ascii_lowercase());
                }
            }
        }
        f
    }

    pub fn is_empty(&self) -> bool {
        self.guids.is_empty() && self.names.is_empty()
    }

    pub fn keeps(&self, ev: &Event<'_>) -> bool {
        self.is_empty()
            || self.guids.contains(&ev.provider)
            || ev
                .provider_name()
                .is_some_and(|n| self.names.iter().any(|want| n.eq_ignore_ascii_case(want)))
    }
}
