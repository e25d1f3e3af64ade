//! Integer socket options that neither the standard library nor tokio
//! sets (Linux).

use std::{io, os::fd::AsRawFd};

/// Sets the integer option `name` at `level` on `socket` to `value`.
pub(crate) fn set_int(
    socket: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the descriptor is the socket's own, open for the call, as
    // `socket` is borrowed across it; the option value points at `value`,
    // a live `c_int` on this frame, and the length passed is its size,
    // which is what an integer option reads. The kernel only reads the
    // value during the call.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
