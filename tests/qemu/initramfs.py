#!/usr/bin/env python3
"""Pack a directory into a gzip-compressed cpio "newc" archive for the kernel's initramfs.

    initramfs.py STAGING_DIR OUT.cpio.gz

Everything is owned by 0:0 with mtime 0 (the archive is reproducible) and /dev/console is added as
a character device (5, 1): without it the kernel opens no console for /init and the guest prints
nothing. Written in Python so that neither cpio nor root (mknod) is needed on the host.
"""

import gzip
import os
import stat
import sys


def header(ino, mode, nlink, size, name, rdev=(0, 0)):
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    h = b"070701" + b"".join(b"%08X" % f for f in fields) + name + b"\0"
    return h + b"\0" * (-len(h) % 4)


def pad(data):
    return data + b"\0" * (-len(data) % 4)


def entries(root):
    """(archive name, lstat, path) for every file under root, parents first, sorted."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            arcname = name if rel == "." else os.path.join(rel, name)
            yield arcname, os.lstat(path), path


def pack(root, out):
    chunks = []
    ino = 1
    names = set()
    for arcname, st, path in entries(root):
        names.add(arcname)
        name = arcname.encode()
        if stat.S_ISDIR(st.st_mode):
            chunks.append(header(ino, stat.S_IFDIR | 0o755, 2, 0, name))
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(path).encode()
            chunks.append(header(ino, stat.S_IFLNK | 0o777, 1, len(target), name))
            chunks.append(pad(target))
        elif stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                data = f.read()
            perm = 0o755 if st.st_mode & 0o111 else 0o644
            chunks.append(header(ino, stat.S_IFREG | perm, 1, len(data), name))
            chunks.append(pad(data))
        else:
            sys.exit(f"initramfs.py: {path}: not a directory, file or symlink")
        ino += 1
    if "dev" not in names:
        chunks.append(header(ino, stat.S_IFDIR | 0o755, 2, 0, b"dev"))
        ino += 1
    chunks.append(header(ino, stat.S_IFCHR | 0o600, 1, 0, b"dev/console", rdev=(5, 1)))
    chunks.append(header(0, 0, 1, 0, b"TRAILER!!!"))
    raw = b"".join(chunks)
    raw += b"\0" * (-len(raw) % 512)
    with open(out + ".tmp", "wb") as f:
        f.write(gzip.compress(raw, compresslevel=6, mtime=0))
    os.replace(out + ".tmp", out)
    return len(raw)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    size = pack(sys.argv[1], sys.argv[2])
    print(f"initramfs: {sys.argv[2]}: {size} bytes of cpio, {os.path.getsize(sys.argv[2])} gzipped")


if __name__ == "__main__":
    main()
