//! Stacks as the analysis reads them: frames innermost first, each named
//! as far as the images and symbols go.

use std::fmt;
use std::sync::Arc;

/// One frame of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Frame {
    pub address: u64,
    /// The image holding the address, lower case (`clusapi.dll`).
    pub module: Option<String>,
    /// The function holding it, where symbols name one.
    pub function: Option<String>,
    /// From the function's start, or else from the image's base.
    pub offset: u64,
}

impl Frame {
    /// Whether the frame is in `module` (lower case).
    pub fn in_module(&self, module: &str) -> bool {
        self.module.as_deref() == Some(module)
    }
}

impl fmt::Display for Frame {
    /// `clusapi.dll!OnlineClusterResource+0x1a`, `clusapi.dll+0x1a2c`, or
    /// the address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.module, &self.function) {
            (Some(m), Some(func)) => write!(f, "{m}!{func}+{:#x}", self.offset),
            (Some(m), None) => write!(f, "{m}+{:#x}", self.offset),
            _ => write!(f, "{:#x}", self.address),
        }
    }
}

/// A stack, innermost frame first, shared by every record that has it.
pub type Stack = Arc<[Frame]>;
