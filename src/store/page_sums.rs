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
//! A page of zeros is not sealed: it is the commonest face of a disk fault (a lost write, a
//! zeroed sector), and SQLite reads some such pages without complaint (an overflow page of
//! zeros is a value's bytes turned to zeros). SQLite itself may leave a hole in the main file (a
//! page past the end written before the ones under it, a free page it never writes, a truncate
//! that grows the file at a checkpoint); the shim fills every such hole with sealed pages of
//! zeros as it happens, so no page of a sealed ledger is ever legitimately all zeros.
//!
//! Only the main file is sealed. Pages in the write-ahead log are written by SQLite with its own
//! frame checksums computed over the bytes it hands over (changing them there would break the
//! log's recovery), so a page read from the log is not checked; it is sealed when a checkpoint
//! writes it into the main file. Memory-mapped reads are refused (`xFetch` returns no mapping), so
//! every page of the main file comes through `xRead`.
//!
//! This is the program's one room for unsafe code (the workspace denies `unsafe_code`
//! everywhere else): every unsafe operation is a block of its own with the reason it is sound.
#![allow(unsafe_code)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

use rusqlite::{ffi, Connection};
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
        // SAFETY: sqlite3_vfs_find is thread-safe; a null name asks for the default VFS.
        let real = unsafe { ffi::sqlite3_vfs_find(std::ptr::null()) };
        // SAFETY: a VFS sqlite3_vfs_find returns is registered and, as SQLite's VFSes are never
        // unregistered in this program, lives as long as the process.
        let Some(wrapped) = (unsafe { real.as_ref() }) else {
            return Err(ffi::SQLITE_ERROR);
        };
        let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
            iVersion: wrapped.iVersion.min(3),
            szOsFile: c_int::try_from(HEAD).unwrap_or(c_int::MAX - 1024) + wrapped.szOsFile,
            mxPathname: wrapped.mxPathname,
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
        // SAFETY: registration is thread-safe; the VFS struct is leaked, so it outlives every
        // connection (SQLite keeps the pointer).
        match unsafe { ffi::sqlite3_vfs_register(vfs, 1) } {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(rc),
        }
    })
}

/// The bytes reserved at the end of each page of the main database: set to `n` when `n` is not
/// negative (for a database without content, at once; otherwise at the next `VACUUM`), and in
/// either case what was reserved (or requested) before; an error when SQLite refuses.
pub(super) fn reserve_bytes(conn: &Connection, n: i32) -> rusqlite::Result<i32> {
    let mut n: c_int = n;
    // SAFETY: the handle is only passed to sqlite3_file_control below, while `conn` is borrowed
    // (so open); it is never closed nor kept.
    let handle = unsafe { conn.handle() };
    // SAFETY: the handle is valid for the connection's lifetime; this file control reads and
    // writes the int it is given, nothing else.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            handle,
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_RESERVE_BYTES,
            std::ptr::from_mut(&mut n).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("cannot reserve the bytes of the page checksums".into()),
        ));
    }
    Ok(n)
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

/// Whether page `pgno` holds its seal. A page of zeros does not (its seal is never zeros: the
/// Fletcher half of a page of zeros is its word count): the shim fills SQLite's holes with
/// sealed pages (see the module's note), so zeros are a fault of the disk, not a page SQLite
/// left unwritten.
pub(super) fn sealed(page: &[u8], pgno: u64) -> bool {
    let at = page.len() - usize::from(RESERVE);
    page[at..] == seal_of(pgno, &page[..at])
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
    /// Its page size, from its header (to fill a hole with whole pages).
    page_size: Option<c_int>,
}

impl File {
    /// The wrapped file and (a copy of) its methods.
    fn real(&self) -> (*mut ffi::sqlite3_file, ffi::sqlite3_io_methods) {
        // SAFETY: `real` points into the allocation that holds `self`, at [`HEAD`], where
        // [`x_open`] had the wrapped VFS open it; SQLite calls our methods only on a file whose
        // open succeeded, so the wrapped one is open too.
        let wrapped = unsafe { &*self.real };
        // SAFETY: an open file's methods pointer is set by its VFS to a table that outlives it.
        let methods = unsafe { *wrapped.pMethods };
        (self.real, methods)
    }

    /// Notes what the database header says when a read or write covers it (at offset 0).
    fn note_header(&mut self, data: &[u8], offset: i64) {
        if offset == 0 && data.len() > 20 {
            self.sealed = data[20] == RESERVE;
            let size = match u16::from_be_bytes([data[16], data[17]]) {
                1 => 65_536,
                n => c_int::from(n),
            };
            self.page_size = page_number(size, 0).map(|_| size);
        }
    }
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

/// The shim's state of a file SQLite passes to one of its methods.
///
/// # Safety
/// `file` is a file [`x_open`] initialised and SQLite has not yet closed.
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut File {
    // SAFETY: the caller's contract: x_open wrote a File at the start of this allocation
    // (SQLite's, aligned for any sqlite3_file), and SQLite calls one method of a file at a time.
    unsafe { &mut *file.cast::<File>() }
}

/// The wrapped VFS, as a pointer to hand to its methods and as a reference to read them from.
///
/// # Safety
/// `vfs` is the shim's VFS, as SQLite passes it to each of its methods.
unsafe fn wrapped_vfs(
    vfs: *mut ffi::sqlite3_vfs,
) -> (*mut ffi::sqlite3_vfs, &'static ffi::sqlite3_vfs) {
    // SAFETY: the caller's contract; the shim's VFS is leaked by [`register`], never freed.
    let shim = unsafe { &*vfs };
    let real: *mut ffi::sqlite3_vfs = shim.pAppData.cast();
    // SAFETY: pAppData is the VFS sqlite3_vfs_find gave [`register`], which lives as long as the
    // process.
    (real, unsafe { &*real })
}

/// Calls method `$m` of the wrapped file of `$file` (a [`File`]; `SQLITE_IOERR` if it has none).
macro_rules! forward {
    ($file:expr, $m:ident $(, $arg:expr)*) => {{
        let (real, methods) = $file.real();
        match methods.$m {
            // SAFETY: the wrapped file's own method, on the wrapped file, with the arguments
            // SQLite gave ours (whose contract SQLite's call met) or buffers of ours of the same
            // kind and length.
            Some(f) => unsafe { f(real $(, $arg)*) },
            None => ffi::SQLITE_IOERR,
        }
    }};
}

/// Calls method `$m` of the wrapped VFS of `$vfs` (the shim's), or gives `$none` if it has none.
macro_rules! forward_vfs {
    ($vfs:expr, $m:ident, $none:expr $(, $arg:expr)*) => {{
        // SAFETY: SQLite passes the shim's VFS to its methods.
        let (real, wrapped) = unsafe { wrapped_vfs($vfs) };
        match wrapped.$m {
            // SAFETY: the wrapped VFS's own method, given itself and SQLite's own arguments.
            Some(f) => unsafe { f(real $(, $arg)*) },
            None => $none,
        }
    }};
}

/// Writes sealed pages of zeros over what the main file lacks below `until` (pages of `size`
/// bytes): SQLite may leave a hole there, which would read as zeros, and zeros are not a sealed
/// page.
fn fill_hole(file: &File, until: i64, size: c_int) -> c_int {
    let mut end = 0i64;
    let rc = forward!(file, xFileSize, &mut end);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let step = i64::from(size);
    let Ok(len) = usize::try_from(size) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let mut page = vec![0u8; len];
    let mut at = (end.max(0) + step - 1) / step * step;
    while at + step <= until {
        let Some(pgno) = page_number(size, at) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        page.fill(0);
        seal(&mut page, pgno);
        let rc = forward!(file, xWrite, page.as_ptr().cast(), size, at);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        at += step;
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite passes the shim's VFS.
    let (real_vfs, wrapped) = unsafe { wrapped_vfs(vfs) };
    // SAFETY: SQLite gives `file` szOsFile bytes: HEAD, then the wrapped VFS's szOsFile
    // (register); HEAD is within them.
    let real = unsafe { file.cast::<u8>().add(HEAD) }.cast::<ffi::sqlite3_file>();
    let head = File {
        base: ffi::sqlite3_file {
            pMethods: std::ptr::null(),
        },
        real,
        main: flags & ffi::SQLITE_OPEN_MAIN_DB != 0,
        sealed: false,
        page_size: None,
    };
    // SAFETY: `file` is SQLite's allocation, aligned for any sqlite3_file (so for File, which
    // holds pointers, ints and bools); File takes at most HEAD bytes of it.
    unsafe { file.cast::<File>().write(head) };
    // SAFETY: `real` is within the allocation and 16-aligned; a VFS's open finds its file's
    // methods pointer null and sets it once the file is open.
    unsafe { (*real).pMethods = std::ptr::null() };
    let Some(open) = wrapped.xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    // SAFETY: the wrapped VFS's open, given itself, SQLite's name, flags and out-flags, and
    // room for its file of its own szOsFile bytes.
    let rc = unsafe { open(real_vfs, name, real, flags, out_flags) };
    // SAFETY: `real` is initialised (above, then by the wrapped open).
    let opened = unsafe { !(*real).pMethods.is_null() };
    if opened {
        // SAFETY: `file` holds the File written above, whose first field is this sqlite3_file.
        unsafe { (*file).pMethods = &METHODS };
    }
    rc
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xClose)
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    let rc = forward!(f, xRead, buf, amt, offset);
    if rc != ffi::SQLITE_OK || !f.main || amt <= 0 {
        return rc;
    }
    let Ok(len) = usize::try_from(amt) else {
        return rc;
    };
    // SAFETY: SQLite's buffer holds `amt` bytes, which the wrapped read just filled.
    let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    f.note_header(data, offset);
    match page_number(amt, offset) {
        Some(pgno) if f.sealed && !sealed(data, pgno) => ffi::SQLITE_IOERR_DATA,
        _ => rc,
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    if f.main && amt > 0 {
        if let Ok(len) = usize::try_from(amt) {
            // SAFETY: SQLite's buffer holds the `amt` bytes to write.
            let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
            f.note_header(data, offset);
            if let Some(pgno) = page_number(amt, offset).filter(|_| f.sealed) {
                let rc = fill_hole(f, offset, amt);
                if rc != ffi::SQLITE_OK {
                    return rc;
                }
                let mut page = data.to_vec();
                seal(&mut page, pgno);
                return forward!(f, xWrite, page.as_ptr().cast(), amt, offset);
            }
        }
    }
    forward!(f, xWrite, buf, amt, offset)
}

/// A truncate that grows the main file (a checkpoint whose last pages are not in the log) would
/// leave zeros: they are written as sealed pages first.
unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    if let Some(page) = f.page_size.filter(|_| f.main && f.sealed) {
        let rc = fill_hole(f, size, page);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    forward!(f, xTruncate, size)
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xSync, flags)
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xFileSize, size)
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, lock: c_int) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xLock, lock)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, lock: c_int) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xUnlock, lock)
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xCheckReservedLock, out)
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xFileControl, op, arg)
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    let (real, methods) = f.real();
    // SAFETY: the wrapped file's own method, on the wrapped file.
    methods.xSectorSize.map_or(4096, |m| unsafe { m(real) })
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    let (real, methods) = f.real();
    // SAFETY: the wrapped file's own method, on the wrapped file.
    methods
        .xDeviceCharacteristics
        .map_or(0, |m| unsafe { m(real) })
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xShmMap, region, size, extend, out)
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xShmLock, offset, n, flags)
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    let (real, methods) = f.real();
    if let Some(m) = methods.xShmBarrier {
        // SAFETY: the wrapped file's own method, on the wrapped file.
        unsafe { m(real) };
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: SQLite calls a method only on a file x_open opened and not yet closed.
    let f = unsafe { state(file) };
    forward!(f, xShmUnmap, delete)
}

/// No memory mapping: every page comes through [`x_read`] and is checked.
unsafe extern "C" fn x_fetch(
    _file: *mut ffi::sqlite3_file,
    _offset: i64,
    _amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes a valid pointer for the mapping it asks for.
    unsafe { out.write(std::ptr::null_mut()) };
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
    forward_vfs!(vfs, xDelete, ffi::SQLITE_IOERR_DELETE, name, sync_dir)
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    forward_vfs!(vfs, xAccess, ffi::SQLITE_IOERR_ACCESS, name, flags, out)
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    forward_vfs!(vfs, xFullPathname, ffi::SQLITE_CANTOPEN, name, n, out)
}

unsafe extern "C" fn x_dl_open(vfs: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    forward_vfs!(vfs, xDlOpen, std::ptr::null_mut(), name)
}

unsafe extern "C" fn x_dl_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    forward_vfs!(vfs, xDlError, (), n, out)
}

type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);

unsafe extern "C" fn x_dl_sym(
    vfs: *mut ffi::sqlite3_vfs,
    handle: *mut c_void,
    symbol: *const c_char,
) -> Option<DlSym> {
    forward_vfs!(vfs, xDlSym, None, handle, symbol)
}

unsafe extern "C" fn x_dl_close(vfs: *mut ffi::sqlite3_vfs, handle: *mut c_void) {
    forward_vfs!(vfs, xDlClose, (), handle)
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    forward_vfs!(vfs, xRandomness, 0, n, out)
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    forward_vfs!(vfs, xSleep, 0, micros)
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    forward_vfs!(vfs, xCurrentTime, ffi::SQLITE_ERROR, out)
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    forward_vfs!(vfs, xGetLastError, 0, n, out)
}

unsafe extern "C" fn x_current_time_int64(vfs: *mut ffi::sqlite3_vfs, out: *mut i64) -> c_int {
    // SAFETY: SQLite passes the shim's VFS.
    let (real, wrapped) = unsafe { wrapped_vfs(vfs) };
    match wrapped.xCurrentTimeInt64 {
        // SAFETY: the wrapped VFS's own method (it has it from version 2), with SQLite's pointer.
        Some(f) if wrapped.iVersion >= 2 => unsafe { f(real, out) },
        _ => {
            let mut days = 0f64;
            // SAFETY: our own method, given the shim's VFS and a local to write.
            let rc = unsafe { x_current_time(vfs, &mut days) };
            // Julian day in milliseconds, as SQLite's own fallback computes it.
            // SAFETY: SQLite passes a valid pointer for the time it asks for.
            unsafe { out.write((days * 86_400_000.0) as i64) };
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
    }

    #[test]
    fn a_page_of_zeros_is_not_sealed_whatever_its_number() {
        for pgno in [1, 2, 3, 1_000, 262_145] {
            for size in [512, 4096, 65_536] {
                assert!(!sealed(&vec![0u8; size], pgno), "page {pgno} of {size}");
            }
        }
    }

    #[test]
    fn only_whole_pages_are_sealed() {
        assert_eq!(page_number(4096, 0), Some(1));
        assert_eq!(page_number(4096, 4096 * 9), Some(10));
        assert_eq!(page_number(100, 0), None);
        assert_eq!(page_number(4096, 24), None);
        assert_eq!(page_number(3000, 0), None);
    }

    /// A main file opened through the shim, driven as SQLite drives it.
    struct Opened {
        _dir: tempfile::TempDir,
        room: Vec<u128>,
    }

    impl Opened {
        fn new() -> Opened {
            register().unwrap();
            let dir = tempfile::tempdir().unwrap();
            // A database name as SQLite passes it: double-NUL terminated.
            let mut name = dir
                .path()
                .join("h.db")
                .into_os_string()
                .into_encoded_bytes();
            name.extend_from_slice(b"\0\0");
            // SAFETY: the shim is registered above.
            let vfs = unsafe { ffi::sqlite3_vfs_find(VFS_NAME.as_ptr()) };
            assert!(!vfs.is_null());
            // SAFETY: a registered VFS.
            let size = usize::try_from(unsafe { (*vfs).szOsFile }).unwrap();
            let mut room = vec![0u128; size.div_ceil(16)];
            let flags =
                ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
            let mut out = 0;
            // SAFETY: szOsFile bytes, 16-aligned, and a double-NUL terminated name
            // (kept until the file is closed: the unix VFS keeps a pointer to it).
            let rc = unsafe {
                x_open(
                    vfs,
                    name.leak().as_ptr().cast(),
                    room.as_mut_ptr().cast(),
                    flags,
                    &mut out,
                )
            };
            assert_eq!(rc, ffi::SQLITE_OK);
            Opened { _dir: dir, room }
        }

        fn file(&mut self) -> *mut ffi::sqlite3_file {
            self.room.as_mut_ptr().cast()
        }

        fn write(&mut self, page: &[u8], offset: i64) -> c_int {
            let amt = c_int::try_from(page.len()).unwrap();
            // SAFETY: an open file and a buffer of `amt` bytes.
            unsafe { x_write(self.file(), page.as_ptr().cast(), amt, offset) }
        }

        fn read(&mut self, size: usize, offset: i64) -> (c_int, Vec<u8>) {
            let mut buf = vec![0u8; size];
            let amt = c_int::try_from(size).unwrap();
            // SAFETY: an open file and a buffer of `amt` bytes.
            let rc = unsafe { x_read(self.file(), buf.as_mut_ptr().cast(), amt, offset) };
            (rc, buf)
        }
    }

    impl Drop for Opened {
        fn drop(&mut self) {
            // SAFETY: an open file, closed once.
            unsafe { x_close(self.file()) };
        }
    }

    #[test]
    fn a_hole_sqlite_leaves_in_the_main_file_is_filled_with_sealed_pages_not_read_as_zeros() {
        let mut file = Opened::new();
        let mut first = vec![0u8; 4096];
        first[..16].copy_from_slice(b"SQLite format 3\0");
        first[16..18].copy_from_slice(&4096u16.to_be_bytes());
        first[20] = RESERVE;
        assert_eq!(file.write(&first, 0), ffi::SQLITE_OK);
        // Page 4 written before pages 2 and 3 (as a page SQLite never writes leaves them).
        assert_eq!(file.write(&[7u8; 4096], 3 * 4096), ffi::SQLITE_OK);
        for pgno in 1..=4u64 {
            let (rc, page) = file.read(4096, (pgno as i64 - 1) * 4096);
            assert_eq!(rc, ffi::SQLITE_OK, "page {pgno}");
            assert!(sealed(&page, pgno), "page {pgno}");
        }
        // A truncate that grows the file (a checkpoint whose last pages the log lacks).
        // SAFETY: an open file.
        assert_eq!(unsafe { x_truncate(file.file(), 7 * 4096) }, ffi::SQLITE_OK);
        let (rc, page) = file.read(4096, 6 * 4096);
        assert_eq!(rc, ffi::SQLITE_OK);
        assert!(sealed(&page, 7) && page[..4088].iter().all(|&b| b == 0));
        // A page of zeros written over a sealed one is read as the fault it is.
        let mut raw = std::fs::OpenOptions::new()
            .write(true)
            .open(file._dir.path().join("h.db"))
            .unwrap();
        std::io::Seek::seek(&mut raw, std::io::SeekFrom::Start(4096)).unwrap();
        std::io::Write::write_all(&mut raw, &[0u8; 4096]).unwrap();
        assert_eq!(file.read(4096, 4096).0, ffi::SQLITE_IOERR_DATA);
    }
}
