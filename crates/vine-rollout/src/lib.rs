//! placeholder
pub mod error;
pub mod request;
pub mod sampling;

pub use error::{Error, Result};
pub use request::*;
