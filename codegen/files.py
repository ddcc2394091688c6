"""Opening an input file: every file graph2py reads from its input (a graph, a SavedModel's
saved_model.pb, a .meta, a checkpoint's index and data files) is opened here, and only if it is
a regular file.

A FIFO blocks `open()` until a writer comes; a link to /dev/zero or /dev/urandom never ends;
a directory or a socket is no graph. Each is refused before it is read: the path is checked
after resolving links, then opened without blocking (a FIFO swapped in after the check opens
at once instead of hanging) and checked again on the open descriptor. A file is read up to the
size it had when opened, never further.

The refusal is an OSError whose strerror is "not a regular file", so that a caller's handling
of unreadable files ("PATH: cannot read: ...") reports it too.
"""

from __future__ import annotations

import errno
import os
import stat


def open_input(path):
    """(binary file object, size in bytes) of the regular file at `path`, links resolved;
    OSError "not a regular file" for anything else, before it is read from."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def read_input(path):
    """The bytes of the regular file at `path`: no more than its size when opened."""
    file, size = open_input(path)
    with file:
        return file.read(size)
