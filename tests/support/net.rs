//! Addresses for tests that stop the emulator and start it again.

/// A loopback address nothing listens on now, for `Emulator::start_on`: the emulator can then
/// be stopped and started again where a mount expects it.
pub fn free_listen() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("127.0.0.1:{}", l.local_addr().expect("addr").port())
}
