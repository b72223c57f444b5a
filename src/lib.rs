//! arcade: the Astro Software menu and desktop-app launcher of the CANFAR ARCADE desktop.
//!
//! Modules in reading order; `ARCHITECTURE.md` has the map and the invariants.

pub mod bus;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod harbor;
pub mod http;
pub mod image;
pub mod labels;
pub mod launch;
pub mod menu;
pub mod remote_icons;
pub mod samp;
pub mod skaha;
pub mod sync;
pub mod text;
pub mod x11;
