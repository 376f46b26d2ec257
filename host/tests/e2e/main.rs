//! The whole platform as real processes on free ports, driven only through the gateway, as a
//! client would; the stores are read directly only to check the invariants.

mod chaos;
mod helpers;
mod journeys;
