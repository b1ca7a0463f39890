//! Page checksums: a SQLite VFS shim that keeps a checksum of every page of the ledger in the page's last 8 bytes and checks it on every read of the file.
//!
//! SQLite leaves a page's last `reserve` bytes to the application (`PRAGMA`-free: set with
//! `SQLITE_FCNTL_RESERVE_BYTES` before a database has content, or followed by `VACUUM`). A ledger
//! whose header says 8 reserved bytes has, in each page of its main file, the CRC-32 of the page
//! number and the page's other bytes, then a Fletcher-style sum of them; the shim writes both on
//! every write of a page to the main file and checks them on every read, where a mismatch is
//! `SQLITE_IOERR_DATA` (the statement fails; [`super::StoreError`] names `recover`). So a byte that
//! changed on disk can no longer hide a row from a query: the page it is in fails as it is read.
//!
//! Only the main file is sealed. Pages in the write-ahead log are written by SQLite with its own
//! frame checksums computed over the bytes it hands over (changing them there would break the
//! log's recovery), so a page read from the log is not checked; it is sealed when a checkpoint
//! writes it into the main file. Memory-mapped reads are refused (`xFetch` returns no mapping), so
//! every page of the main file comes through `xRead`.

use rusqlite::ffi;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

/// The name the shim is registered under (as SQLite's default VFS, over the one it wraps).
pub(super) const VFS_NAME: &CStr = c"egme-page-sums";

/// Bytes reserved at the end of every page for its checksum.
pub(super) const RESERVE: u8 = 8;

/// Registers the shim as SQLite's default VFS (once per process; every connection opened after
/// it, of any database, goes through it — a database whose header does not reserve 8 bytes per
/// page is passed through untouched).
pub(super) fn register() -> Result<(), c_int> {
    static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find and sqlite3_vfs_register are thread-safe; the VFS struct is
        // leaked, so it outlives every connection (SQLite keeps the pointer).
        unsafe {
            let real = ffi::sqlite3_vfs_find(std::ptr::null());
            if real.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
                iVersion: (*real).iVersion.min(3),
                szOsFile: c_int::try_from(HEAD).unwrap_or(c_int::MAX - 1024) + (*real).szOsFile,
                mxPathname: (*real).mxPathname,
                pNext: std::ptr::null_mut(),
                zName: VFS_NAME.as_ptr(),
                pAppData: real.cast(),
                xOpen: Some(x_open),
                xDelete: Some(x_delete),
                xAccess: Some(x_access),
                xFullPathname: Some(x_full_pathname),
                xDlOpen: Some(x_dl_open),
                xDlError: Some(x_dl_error),
                xDlSym: Some(x_dl_sym),
                xDlClose: Some(x_dl_close),
                xRandomness: Some(x_randomness),
                xSleep: Some(x_sleep),
                xCurrentTime: Some(x_current_time),
                xGetLastError: Some(x_get_last_error),
                xCurrentTimeInt64: Some(x_current_time_int64),
                xSetSystemCall: None,
                xGetSystemCall: None,
                xNextSystemCall: None,
            }));
            match ffi::sqlite3_vfs_register(vfs, 1) {
                ffi::SQLITE_OK => Ok(()),
                rc => Err(rc),
            }
        }
    })
}

/// The 8 bytes of page `pgno` (1-based) sealed over `body` (the page less its last 8 bytes).
fn seal_of(pgno: u64, body: &[u8]) -> [u8; 8] {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&pgno.to_le_bytes());
    crc.update(body);
    let (mut s1, mut s2) = (1u32, 0u32);
    // (A page less its 8 bytes is a multiple of 4 bytes: pages are powers of two from 512.)
    for word in body.chunks_exact(4) {
        s1 = s1.wrapping_add(u32::from_le_bytes([word[0], word[1], word[2], word[3]]));
        s2 = s2.wrapping_add(s1);
    }
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&crc.finalize().to_le_bytes());
    out[4..].copy_from_slice(&s2.to_le_bytes());
    out
}

/// Writes the seal of page `pgno` into its last 8 bytes.
pub(super) fn seal(page: &mut [u8], pgno: u64) {
    let at = page.len() - usize::from(RESERVE);
    let sum = seal_of(pgno, &page[..at]);
    page[at..].copy_from_slice(&sum);
}

/// Whether page `pgno` holds its seal (a page of zeros, never written, is taken as it is: SQLite
/// reads it as free space or fails on it as corrupt).
pub(super) fn sealed(page: &[u8], pgno: u64) -> bool {
    let at = page.len() - usize::from(RESERVE);
    page[at..] == seal_of(pgno, &page[..at]) || page.iter().all(|&b| b == 0)
}

/// A read or write of a whole page: a power of two from 512 to 65,536 bytes at a multiple of it.
fn page_number(amt: c_int, offset: i64) -> Option<u64> {
    let amt = i64::from(amt);
    let whole = (512..=65_536).contains(&amt) && amt.count_ones() == 1 && offset % amt == 0;
    whole
        .then(|| u64::try_from(offset / amt + 1).ok())
        .flatten()
}

/// An open file: SQLite's handle (its methods ours), then the wrapped VFS's file (after [`HEAD`]).
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The main database file (the only one sealed).
    main: bool,
    /// Its header reserves 8 bytes per page: seal on write, check on read.
    sealed: bool,
}

/// Bytes of [`File`], rounded up to 16: where the wrapped file starts.
const HEAD: usize = std::mem::size_of::<File>().div_ceil(16) * 16;

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

/// The wrapped VFS.
unsafe fn real_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    (*vfs).pAppData.cast()
}

/// The wrapped file and its methods.
unsafe fn real(file: *mut ffi::sqlite3_file) -> (*mut ffi::sqlite3_file, ffi::sqlite3_io_methods) {
    let real = (*file.cast::<File>()).real;
    (real, *(*real).pMethods)
}

/// Calls method `$m` of the wrapped file (`SQLITE_IOERR` if it has none).
macro_rules! forward {
    ($file:expr, $m:ident $(, $arg:expr)*) => {{
        let (real, methods) = real($file);
        match methods.$m {
            Some(f) => f(real $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real_vfs = real_vfs(vfs);
    let p = file.cast::<File>();
    let real = file.cast::<u8>().add(HEAD).cast::<ffi::sqlite3_file>();
    std::ptr::write(
        p,
        File {
            base: ffi::sqlite3_file {
                pMethods: std::ptr::null(),
            },
            real,
            main: flags & ffi::SQLITE_OPEN_MAIN_DB != 0,
            sealed: false,
        },
    );
    (*real).pMethods = std::ptr::null();
    let Some(open) = (*real_vfs).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    let rc = open(real_vfs, name, real, flags, out_flags);
    if !(*real).pMethods.is_null() {
        (*p).base.pMethods = &METHODS;
    }
    rc
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    forward!(file, xClose)
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    let rc = forward!(file, xRead, buf, amt, offset);
    let p = file.cast::<File>();
    if rc != ffi::SQLITE_OK || !(*p).main || amt <= 0 {
        return rc;
    }
    let Ok(len) = usize::try_from(amt) else {
        return rc;
    };
    let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    if offset == 0 && len > 20 {
        (*p).sealed = data[20] == RESERVE;
    }
    match page_number(amt, offset) {
        Some(pgno) if (*p).sealed && !sealed(data, pgno) => ffi::SQLITE_IOERR_DATA,
        _ => rc,
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    let p = file.cast::<File>();
    if (*p).main && amt > 0 {
        if let Ok(len) = usize::try_from(amt) {
            let data = std::slice::from_raw_parts(buf.cast::<u8>(), len);
            if offset == 0 && len > 20 {
                (*p).sealed = data[20] == RESERVE;
            }
            if let Some(pgno) = page_number(amt, offset).filter(|_| (*p).sealed) {
                let mut page = data.to_vec();
                seal(&mut page, pgno);
                return forward!(file, xWrite, page.as_ptr().cast(), amt, offset);
            }
        }
    }
    forward!(file, xWrite, buf, amt, offset)
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    forward!(file, xTruncate, size)
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    forward!(file, xSync, flags)
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    forward!(file, xFileSize, size)
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, lock: c_int) -> c_int {
    forward!(file, xLock, lock)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, lock: c_int) -> c_int {
    forward!(file, xUnlock, lock)
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    forward!(file, xCheckReservedLock, out)
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    forward!(file, xFileControl, op, arg)
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, methods) = real(file);
    methods.xSectorSize.map_or(4096, |f| f(real))
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (real, methods) = real(file);
    methods.xDeviceCharacteristics.map_or(0, |f| f(real))
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    forward!(file, xShmMap, region, size, extend, out)
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    forward!(file, xShmLock, offset, n, flags)
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let (real, methods) = real(file);
    if let Some(f) = methods.xShmBarrier {
        f(real);
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    forward!(file, xShmUnmap, delete)
}

/// No memory mapping: every page comes through [`x_read`] and is checked.
unsafe extern "C" fn x_fetch(
    _file: *mut ffi::sqlite3_file,
    _offset: i64,
    _amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    *out = std::ptr::null_mut();
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_unfetch(
    _file: *mut ffi::sqlite3_file,
    _offset: i64,
    _p: *mut c_void,
) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let r = real_vfs(vfs);
    (*r).xDelete
        .map_or(ffi::SQLITE_IOERR_DELETE, |f| f(r, name, sync_dir))
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let r = real_vfs(vfs);
    (*r).xAccess
        .map_or(ffi::SQLITE_IOERR_ACCESS, |f| f(r, name, flags, out))
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let r = real_vfs(vfs);
    (*r).xFullPathname
        .map_or(ffi::SQLITE_CANTOPEN, |f| f(r, name, n, out))
}

unsafe extern "C" fn x_dl_open(vfs: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    let r = real_vfs(vfs);
    (*r).xDlOpen.map_or(std::ptr::null_mut(), |f| f(r, name))
}

unsafe extern "C" fn x_dl_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let r = real_vfs(vfs);
    if let Some(f) = (*r).xDlError {
        f(r, n, out);
    }
}

type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);

unsafe extern "C" fn x_dl_sym(
    vfs: *mut ffi::sqlite3_vfs,
    handle: *mut c_void,
    symbol: *const c_char,
) -> Option<DlSym> {
    let r = real_vfs(vfs);
    (*r).xDlSym.and_then(|f| f(r, handle, symbol))
}

unsafe extern "C" fn x_dl_close(vfs: *mut ffi::sqlite3_vfs, handle: *mut c_void) {
    let r = real_vfs(vfs);
    if let Some(f) = (*r).xDlClose {
        f(r, handle);
    }
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    let r = real_vfs(vfs);
    (*r).xRandomness.map_or(0, |f| f(r, n, out))
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    let r = real_vfs(vfs);
    (*r).xSleep.map_or(0, |f| f(r, micros))
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let r = real_vfs(vfs);
    (*r).xCurrentTime.map_or(ffi::SQLITE_ERROR, |f| f(r, out))
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let r = real_vfs(vfs);
    (*r).xGetLastError.map_or(0, |f| f(r, n, out))
}

unsafe extern "C" fn x_current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    let r = real_vfs(vfs);
    match (*r).xCurrentTimeInt64 {
        Some(f) if (*r).iVersion >= 2 => f(r, out),
        _ => {
            let mut days = 0f64;
            let rc = x_current_time(vfs, &mut days);
            // Julian day in milliseconds, as SQLite's own fallback computes it.
            *out = (days * 86_400_000.0) as i64;
            rc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_page_reads_as_sealed_and_any_flipped_bit_or_other_page_number_does_not() {
        let mut page: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
        seal(&mut page, 7);
        assert!(sealed(&page, 7));
        assert!(!sealed(&page, 8), "the page number is part of the seal");
        for bit in (0..page.len() * 8).step_by(97) {
            let mut flipped = page.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!sealed(&flipped, 7), "bit {bit}");
        }
        assert!(sealed(&[0u8; 4096], 3), "a page never written");
    }

    #[test]
    fn only_whole_pages_are_sealed() {
        assert_eq!(page_number(4096, 0), Some(1));
        assert_eq!(page_number(4096, 4096 * 9), Some(10));
        assert_eq!(page_number(100, 0), None);
        assert_eq!(page_number(4096, 24), None);
        assert_eq!(page_number(3000, 0), None);
    }
}
