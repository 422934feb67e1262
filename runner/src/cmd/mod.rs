//! One module per subcommand.

pub mod base;
pub mod book;
pub mod chaos;
pub mod check;
pub mod consistency;
pub mod console;
pub mod down;
pub mod exec;
pub mod load;
pub mod net;
pub mod serve;
pub mod status;
pub mod topology;
pub mod up;
pub mod verify;
pub mod watch;
