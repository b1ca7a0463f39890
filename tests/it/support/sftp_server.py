#!/usr/bin/env python3
"""An independently written SSH/SFTP server (asyncssh) for the interoperability tests.

Started by tests/it/support/asyncssh.rs on 127.0.0.1 with a host key and the client keys it
accepts; prints "listening on PORT" once it listens. Flags give it the policies of servers an ORD
may run (docs/INTEROP.md):

  --windows          no OpenSSH extensions (no fsync@openssh.com, no posix-rename), a rename
                     onto an existing name refused with a generic failure (SSH_FX_FAILURE)
  --no-permissions   attributes (listing, stat, lstat, fstat) carry no permission bits, so no type
  --no-dot-names     creating or renaming to a name that starts with a dot is refused
  --no-overwrite     an existing file is never opened for writing nor renamed onto (ProFTPD's
                     `AllowOverwrite off`, its default): permission denied
  --no-rename        every rename is refused (permission denied)
  --rename-replaces  a rename onto an existing name replaces it silently (SFTPGo's and Go
                     pkg/sftp's plain rename)
  --readdir-again  a folder's listing starts again after its end: a READDIR after the one answered
                     with the end gets the first names again (a server that does not read a
                     folder's READDIRs in order, as a client with several outstanding sees it)
  --journal FILE     each path opened for writing is appended to FILE, one per line (what a test
                     counts to see which files were put)
"""

import argparse
import asyncio
import inspect
import os
import sys

import asyncssh
from asyncssh import constants as C
from asyncssh import sftp as sftp_mod


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host-key", required=True)
    p.add_argument("--authorized-keys", required=True)
    p.add_argument("--windows", action="store_true")
    p.add_argument("--no-permissions", action="store_true")
    p.add_argument("--no-dot-names", action="store_true")
    p.add_argument("--no-overwrite", action="store_true")
    p.add_argument("--no-rename", action="store_true")
    p.add_argument("--rename-replaces", action="store_true")
    p.add_argument("--readdir-again", action="store_true")
    p.add_argument("--journal")
    return p.parse_args()


ARGS = parse()


def strip(attrs):
    """The attributes as this server reports them."""
    if isinstance(attrs, os.stat_result):
        attrs = asyncssh.SFTPAttrs.from_local(attrs)
    if ARGS.no_permissions:
        attrs.permissions = None
        attrs.type = C.FILEXFER_TYPE_UNKNOWN
    return attrs


def base(path):
    return os.path.basename(path.rstrip(b"/"))


class Server(asyncssh.SFTPServer):
    def format_longname(self, name):
        if ARGS.no_permissions:
            # What such a server says in its long names: no mode, so no type either.
            size = "" if name.attrs.size is None else str(name.attrs.size)
            name.longname = f"{'':10s} {'':>4s} {'':8s} {'':8s} {size:>8s} {'':12s} ".encode() + name.filename
            return None
        return super().format_longname(name)

    async def scandir(self, path):
        async for name in super().scandir(path):
            name.attrs = strip(name.attrs)
            yield name

    def lstat(self, path):
        return strip(super().lstat(path))

    def stat(self, path):
        return strip(super().stat(path))

    def fstat(self, file_obj):
        return strip(super().fstat(file_obj))

    def open(self, path, pflags, attrs):
        if ARGS.no_dot_names and pflags & C.FXF_CREAT and base(path).startswith(b"."):
            raise asyncssh.SFTPPermissionDenied("names starting with a dot are not allowed")
        if ARGS.no_overwrite and pflags & C.FXF_WRITE:
            if os.path.exists(self.map_path(path)):
                raise asyncssh.SFTPPermissionDenied("Permission denied (overwrite not allowed)")
        if ARGS.journal and pflags & C.FXF_WRITE:
            with open(ARGS.journal, "ab") as j:
                j.write(path + b"\n")
        return super().open(path, pflags, attrs)

    def rename(self, oldpath, newpath):
        if ARGS.no_rename:
            raise asyncssh.SFTPPermissionDenied("rename: Permission denied")
        if ARGS.no_dot_names and base(newpath).startswith(b"."):
            raise asyncssh.SFTPPermissionDenied("names starting with a dot are not allowed")
        if os.path.exists(self.map_path(newpath)):
            if ARGS.no_overwrite:
                raise asyncssh.SFTPPermissionDenied("Permission denied (overwrite not allowed)")
            if ARGS.windows:
                raise asyncssh.SFTPFailure("Failure")
            if ARGS.rename_replaces:
                os.replace(self.map_path(oldpath), self.map_path(newpath))
                return None
        return super().rename(oldpath, newpath)


async def opendir_remembered(self, packet):
    """OPENDIR as asyncssh does it, the folder's path kept for `readdir_again`."""
    path = packet.get_string()
    if self._version < 6:
        packet.check_end()
    handle = self._get_next_handle()
    self._dir_handles[handle] = self._server.scandir(path)
    if not hasattr(self, "egme_dir_paths"):
        self.egme_dir_paths = {}
    self.egme_dir_paths[handle] = path
    return handle


async def readdir_again(self, packet):
    """READDIR as asyncssh does it, except that the end of a folder starts its listing again."""
    handle = packet.get_string()
    if self._version < 6:
        packet.check_end()
    names = self._dir_handles.get(handle)
    if names is None:
        raise asyncssh.SFTPInvalidHandle("Invalid file handle")
    result = []
    async for name in names:
        if not name.longname and self._version == 3:
            formatted = self._server.format_longname(name)
            if inspect.isawaitable(formatted):
                await formatted
        result.append(name)
        if len(result) == sftp_mod._MAX_READDIR_NAMES:
            break
    if result:
        return result, len(result) < sftp_mod._MAX_READDIR_NAMES
    self._dir_handles[handle] = self._server.scandir(self.egme_dir_paths[handle])
    raise asyncssh.SFTPEOFError("")


async def main():
    if ARGS.windows:
        sftp_mod.SFTPServerHandler._extensions = [
            (name, data)
            for name, data in sftp_mod.SFTPServerHandler._extensions
            if not name.endswith(b"@openssh.com")
        ]
    if ARGS.readdir_again:
        handlers = sftp_mod.SFTPServerHandler._packet_handlers
        handlers[sftp_mod.FXP_OPENDIR] = opendir_remembered
        handlers[sftp_mod.FXP_READDIR] = readdir_again
    await asyncssh.listen(
        "127.0.0.1",
        ARGS.port,
        server_host_keys=[ARGS.host_key],
        authorized_client_keys=ARGS.authorized_keys,
        sftp_factory=Server,
        allow_scp=False,
        server_version="EgmeTestMFT_1.0",
    )
    print(f"listening on {ARGS.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except (OSError, asyncssh.Error) as e:
        print(f"cannot start: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
