//! apsfs: Autodesk Platform Services Data Management content as a filesystem, and the
//! local APS emulator every test and demo runs against.

pub mod emulator;
