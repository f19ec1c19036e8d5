"""Writing a file the user named, and nothing else: the one helper every command that writes a
file uses (``plot --out``, ``profile --save``).

* The path comes from the user. Nothing here derives a path from a spec's content.
* The data is written first to a temporary file created exclusively (``O_CREAT | O_EXCL |
  O_NOFOLLOW``) in the target's folder, under a fresh random name: an existing file or symlink
  of that name is never opened, written through or removed. The temporary file is removed on
  failure only if it is still the one this process created (same device and inode).
* The finished file is moved into place atomically: without ``overwrite`` by a hard link, which
  fails if the target appeared meanwhile (nothing is ever replaced), falling back to a rename
  only after checking the name is still free where the file system has no hard links; with
  ``overwrite`` by ``os.replace``, which replaces a symlink itself, never its target.
* A directory, a device, a FIFO or a socket is refused as a target, even with ``overwrite``; an
  over-long, unwritable or missing path is one line (:class:`OutputError`, exit 2).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from .errors import OptionError, quoted

MAX_NAME_BYTES = 255  # one path component (NAME_MAX on Linux, macOS and Windows' NTFS)
MAX_PATH_BYTES = 4095  # a whole path (PATH_MAX less its terminating zero)
_ATTEMPTS = 16  # fresh temporary names tried before giving up


class OutputError(OptionError):
    """An output path that cannot be written: one line, exit status 2."""


def _fail(label: str, path: str | os.PathLike[str], problem: str) -> OutputError:
    return OutputError(f"{label}: {quoted(os.fspath(path))} {problem}")


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "is too long a path for the file system"
    if exc.errno == errno.ENOSPC:
        return "cannot be written: no space left on the device"
    return f"cannot be written: {(exc.strerror or str(exc)).lower()}"


def check_target(path: Path, *, overwrite: bool, label: str) -> None:
    """Refuse, before any work is done, a target that :func:`write_file` would refuse."""
    raw = os.fsencode(path)
    name = os.fsencode(path.name)
    if not path.name or path.name in (".", ".."):
        raise _fail(label, path, "is not a file name")
    if len(name) > MAX_NAME_BYTES:
        raise _fail(label, path, f"has a file name of {len(name):,} bytes; the limit is "
                                 f"{MAX_NAME_BYTES}")
    if len(raw) > MAX_PATH_BYTES:
        raise _fail(label, path, f"is {len(raw):,} bytes long; the limit is {MAX_PATH_BYTES:,}")
    parent = path.parent
    try:
        parent_mode = os.stat(parent).st_mode
    except FileNotFoundError:
        raise OutputError(f"{label}: no such directory {quoted(str(parent))}") from None
    except OSError as exc:
        raise _fail(label, parent, _reason(exc)) from None
    if not stat.S_ISDIR(parent_mode):
        raise _fail(label, parent, "is not a directory")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _fail(label, path, _reason(exc)) from None
    if stat.S_ISDIR(mode):
        raise _fail(label, path, "is a directory; give a file name")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise _fail(label, path, "is not a regular file (a device, FIFO or socket); cnncalc "
                                 "writes only regular files")
    if not overwrite:
        hint = " (--force replaces it)" if label == "--out" else ""
        raise _fail(label, path, f"exists; cnncalc does not overwrite files{hint}")


def _create_temporary(folder: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | \
        getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        temporary = folder / f".cnncalc-{secrets.token_hex(6)}.partial"
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a temporary file", str(folder))


def _remove_if_ours(temporary: Path, identity: tuple[int, int]) -> None:
    try:
        st = os.lstat(temporary)
    except OSError:
        return
    if (st.st_dev, st.st_ino) == identity and stat.S_ISREG(st.st_mode):
        try:
            os.unlink(temporary)
        except OSError:
            pass


def write_file(path: Path, write: Callable[[IO[bytes]], None], *, overwrite: bool = False,
               label: str = "--out") -> Path:
    """Write ``path`` through ``write(binary_stream)``; see the module's docstring. ``label``
    names the option in messages (``--out``, ``--save``)."""
    check_target(path, overwrite=overwrite, label=label)
    with _terminate_as_exit():
        return _write_file(path, write, overwrite, label)


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While the temporary file exists, SIGTERM (``timeout``, a closed session) unwinds like
    Ctrl-C, so that the temporary file is removed; only SIGKILL can leave it behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except (ValueError, OSError):  # no signals here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_file(path: Path, write: Callable[[IO[bytes]], None], overwrite: bool,
                label: str) -> Path:
    try:
        fd, temporary = _create_temporary(path.parent)
    except OSError as exc:
        raise _fail(label, path, _reason(exc)) from None
    st = os.fstat(fd)
    identity = (st.st_dev, st.st_ino)
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            check_target(path, overwrite=True, label=label)  # still not a directory or device
            os.replace(temporary, path)
        else:
            _link_new(temporary, path, label)
    except OSError as exc:
        raise _fail(label, path, _reason(exc)) from None
    finally:
        _remove_if_ours(temporary, identity)
    return path


def _link_new(temporary: Path, path: Path, label: str) -> None:
    """Give the finished file its name without ever replacing a file that has it."""
    try:
        os.link(temporary, path, follow_symlinks=False)
    except FileExistsError:
        raise _fail(label, path, "exists; cnncalc does not overwrite files (it appeared while "
                                 "the file was being written)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV,
                             errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(path):  # no hard links here: a rename, after checking once more
            raise _fail(label, path, "exists; cnncalc does not overwrite files") from None
        os.rename(temporary, path)


def write_text(path: Path, text: str, *, overwrite: bool = False, label: str = "--out") -> Path:
    return write_file(path, lambda stream: stream.write(text.encode("utf-8")),
                      overwrite=overwrite, label=label)


def safe_stem(text: str, fallback: str = "plot") -> str:
    """A file name stem made from what the user typed (``nets/mine.yaml`` → ``mine``): only
    letters, digits, ``.``, ``_`` and ``-``, no leading dot, at most 100 characters."""
    stem = Path(text.replace("\\", "/")).stem if text else ""
    cleaned = "".join(ch if (ch.isascii() and (ch.isalnum() or ch in "._-")) else "_"
                      for ch in stem).lstrip(".")[:100]
    return cleaned if cleaned.strip("_") else fallback
