//! The process's file descriptors: how many it may open, and room for them
//! made before connections arrive.
//!
//! Linux grows a process's descriptor table by doubling as descriptors are
//! opened. In a process with more than one thread, each growth waits for an
//! RCU grace period (10 to 30 ms on a 2-CPU virtual machine) inside the `accept`,
//! `socket` or `open` call that needed the room, and the thread and every
//! task on it wait too. A multithreaded server taking 5,000 connections
//! stalls so at 64, 128, 256, ..., 4,096 of them: connect times of 20 ms
//! and more at the 99th percentile where they are otherwise 3 ms.
//! [`reserve_descriptors`] grows the table once, before that.

use std::io;

/// Makes room in this process's descriptor table for `count` descriptors
/// now, so that opening them later never waits for the table to grow (see
/// the module's documentation). Capped at the soft limit on open files (see
/// [`raise_descriptor_limit`]); returns the room made (0 where the
/// platform's table needs no help). The kernel rounds the table up to a
/// power of two; a slot costs about 8 bytes of kernel memory and nothing in
/// the process's own memory.
///
/// Growing the table is itself a growth: call this at start-up, before
/// connections arrive, best before the runtime starts its threads. Calling
/// it again costs a few system calls.
pub fn reserve_descriptors(count: usize) -> io::Result<usize> {
    imp::reserve(count)
}

/// Raises this process's soft limit on open files to its hard limit, as a
/// server holding many connections needs (the common default soft limit is
/// 1,024); returns the soft limit now in force (`u64::MAX`: unlimited).
pub fn raise_descriptor_limit() -> io::Result<u64> {
    imp::raise()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use std::{io, os::fd::AsRawFd};

    fn limits() -> io::Result<libc::rlimit> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `getrlimit` writes one `rlimit` through the pointer,
        // which points at a live, writable `rlimit` owned by this frame.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(lim)
    }

    pub(super) fn raise() -> io::Result<u64> {
        let mut lim = limits()?;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            // SAFETY: `setrlimit` only reads the `rlimit` the pointer
            // points at, a live value owned by this frame.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(if lim.rlim_cur == libc::RLIM_INFINITY {
            u64::MAX
        } else {
            lim.rlim_cur as u64
        })
    }

    pub(super) fn reserve(count: usize) -> io::Result<usize> {
        let soft = limits()?.rlim_cur;
        let room = if soft == libc::RLIM_INFINITY {
            count
        } else {
            count.min(usize::try_from(soft).unwrap_or(usize::MAX))
        };
        // The highest descriptor number the table must hold; a table of a
        // few slots needs no help (the kernel starts with 64).
        let Some(top) = room.checked_sub(1).filter(|&t| t > 2) else {
            return Ok(room);
        };
        let top = libc::c_int::try_from(top).unwrap_or(libc::c_int::MAX);
        let null = std::fs::File::open("/dev/null")?;
        // SAFETY: `F_DUPFD_CLOEXEC` takes a descriptor and an int and only
        // creates a new descriptor (the lowest free one at or above `top`);
        // `null` is open for the whole call. No memory is passed.
        let copy = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top) };
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `copy` was just created by this function and nothing
        // else knows of it, so closing it cannot close a descriptor that
        // another owner still uses.
        unsafe { libc::close(copy) };
        Ok(room)
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use std::io;

    pub(super) fn raise() -> io::Result<u64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "raising the open-file limit is implemented for Linux only",
        ))
    }

    pub(super) fn reserve(_: usize) -> io::Result<usize> {
        Ok(0)
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;

    fn table_size() -> usize {
        // The kernel reports the table's size as `FDSize` in status.
        mqtt_test_support::brokers::proc_number("self", "status", "FDSize:").unwrap_or(0) as usize
    }

    #[test]
    fn the_table_is_grown_up_front_and_within_the_limit() {
        // (Raises the limit for the whole test process, which only helps.)
        let soft = raise_descriptor_limit().unwrap();
        assert!(soft >= 16, "soft limit {soft}");
        let want = 4000usize.min(soft as usize);
        let room = reserve_descriptors(want).unwrap();
        assert_eq!(room, want);
        assert!(table_size() >= want, "FDSize {} < {want}", table_size());
        // Beyond the limit, the room is the limit.
        if soft < 100_000 {
            assert_eq!(
                reserve_descriptors(soft as usize + 10).unwrap() as u64,
                soft
            );
        }
    }
}
