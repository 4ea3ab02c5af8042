//! The subcommands of the `ezenroll` binary, one file each, over the library.

pub mod args;
pub mod dev_mode;
pub mod dev_secret;
pub mod offline;
pub mod process;
pub mod serve;
pub mod token;
pub mod worker;
