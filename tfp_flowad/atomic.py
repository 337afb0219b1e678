"""The one way the library writes files and directories: whole or not at all.

``atomic_file(target)`` and ``atomic_directory(target)`` are context managers that yield a
temporary path next to ``target`` (same directory, so the same file system). The caller writes
there; when the ``with`` block ends without an exception the temporary path is moved onto
``target`` in one rename, and when it raises the temporary path is removed and ``target`` is
left as it was. A reader therefore sees either the previous content or the new one, never a
half-written file.

Temporary names say whose they are: ``.{target name}.tfp_flowad-tmp-{pid}-{random}`` (plus the
target's suffix, so writers that check the extension, such as Keras' ``.keras`` files or
Parquet, accept them). A process killed mid-write cannot clean up after itself, so every write
first sweeps the temporary names in its directory whose process id is no longer alive. After a
kill, nothing of ours stays behind once the next write into that directory runs. The liveness
test sees only this machine's processes in this PID namespace: do not share one output
directory between machines or containers that write into it at the same time.

Permissions follow the umask like an ordinary ``open`` or ``mkdir``: a new file gets
``0o666 & ~umask`` (an existing file keeps its mode, as ``open(target, "w")`` would), a new
directory ``0o777 & ~umask``.
"""

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["atomic_directory", "atomic_file", "same_path", "sweep_leftovers"]

_TAG = "tfp_flowad-tmp"
#: ``.{name}.tfp_flowad-tmp-{pid}-{16 hex digits}{suffix}``
_LEFTOVER = re.compile(rf"^\..*\.{_TAG}-(\d+)-[0-9a-f]{{16}}(\.[^.]*)?$")

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def same_path(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name the same file: ``os.path.samefile`` when both exist
    (this sees hard links and symbolic links), else the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


@contextlib.contextmanager
def atomic_file(target, not_same_as: Iterable = ()) -> Iterator[Path]:
    """Yields a temporary path in ``target``'s directory; on success it replaces ``target``.

    The caller creates and writes the file at the yielded path (any writer: ``open``,
    ``DataFrame.to_csv``, ``keras.Model.save``). On leaving the block the file is flushed to
    disk and renamed onto ``target`` with ``os.replace``; on an exception it is removed and
    ``target`` keeps its previous content. A ``target`` that is a symbolic link is written
    through: the file it points to is replaced.

    Args:
        target: the file to write.
        not_same_as: input paths that ``target`` must not be (the same file through any name).

    Raises:
        ValueError: ``target`` is a directory or another file that is not a regular one (such
            as ``/dev/stdout``), or the same file as one of ``not_same_as``.
        FileNotFoundError: ``target``'s directory does not exist.
        FileNotFoundError: the block left no file at the yielded path.
    """
    target = Path(os.path.realpath(target))
    for source in not_same_as:
        if same_path(target, source):
            raise ValueError(f"refusing to write {str(target)!r}: it is the input {str(source)!r}")
    if target.is_dir():
        raise ValueError(f"cannot write file {str(target)!r}: it is a directory")
    if target.exists() and not target.is_file():
        raise ValueError(
            f"cannot write file {str(target)!r}: it is not a regular file (a device, a pipe or a "
            "socket), which a rename would replace"
        )
    _check_parent(target)
    sweep_leftovers(target.parent)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    temporary = _temporary_path(target)
    try:
        yield temporary
        if not temporary.is_file():
            raise FileNotFoundError(f"nothing was written to the temporary file of {target}")
        os.chmod(temporary, mode)
        _fsync_file(temporary)
        os.replace(temporary, target)
        _fsync_directory(target.parent)
    except BaseException:
        _remove(temporary)
        raise


@contextlib.contextmanager
def atomic_directory(target, may_replace: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yields an empty staging directory next to ``target``; on success it becomes ``target``.

    A new ``target`` appears in one ``rename`` (Linux ``renameat2(RENAME_NOREPLACE)``, so a
    directory created meanwhile by someone else is never overwritten). An existing ``target``
    may be replaced only when ``may_replace(target)`` says it is a directory of ours; it is
    swapped with the staging directory in one step by Linux ``renameat2(RENAME_EXCHANGE)``,
    then the old content, now at the staging path, is removed. Where ``renameat2`` is
    unavailable (not Linux, an old kernel or C library, a file system without it) the swap
    falls back to two renames, with a moment in between where ``target`` does not exist. On
    an exception inside the block the staging directory is removed and ``target`` is untouched.
    A ``target`` that is a symbolic link is written through, like ``mkdir`` would.

    Args:
        target: the directory to write.
        may_replace: called with an existing ``target``; ``True`` allows replacing it.

    Raises:
        ValueError: ``target`` exists and is not a directory.
        FileExistsError: ``target`` exists and ``may_replace`` is missing or refuses it.
        FileNotFoundError: ``target``'s parent directory does not exist.
    """
    target = Path(os.path.realpath(target))
    _check_replaceable(target, may_replace)
    _check_parent(target)
    sweep_leftovers(target.parent)
    staging = _temporary_path(target, suffix=False)
    os.mkdir(staging, 0o777)  # the mode follows the umask, as with mkdir
    try:
        yield staging
        for root, _, files in os.walk(staging):
            for name in files:
                _fsync_file(Path(root) / name)
        if not _rename(staging, target, _RENAME_NOREPLACE):
            _check_replaceable(target, may_replace)
            if not _rename(staging, target, _RENAME_EXCHANGE):
                _swap_by_two_renames(staging, target)
        _fsync_directory(target.parent)
    except BaseException:
        _remove(staging)
        raise
    _remove(staging)  # the old content after an exchange


def sweep_leftovers(directory) -> list[Path]:
    """Removes the temporary files and directories of this module in ``directory`` whose
    writing process is no longer alive (left by a killed write); returns what was removed."""
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _LEFTOVER.match(name)
        if match and not _alive(int(match.group(1))):
            path = Path(directory) / name
            _remove(path)
            removed.append(path)
    return removed


def _check_parent(target: Path) -> None:
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(target)!r}: directory {str(target.parent)!r} does not exist"
        )


def _check_replaceable(target: Path, may_replace) -> None:
    if not os.path.lexists(target):
        return
    if not target.is_dir():
        raise ValueError(f"cannot write directory {str(target)!r}: a file of that name exists")
    if may_replace is None or not may_replace(target):
        raise FileExistsError(
            f"refusing to replace {str(target)!r}: it exists and is not a directory this "
            "library wrote"
        )


def _temporary_path(target: Path, suffix: bool = True) -> Path:
    """A fresh name ``.{name}.tfp_flowad-tmp-{pid}-{random}[{suffix}]`` next to ``target``."""
    extension = target.suffix if suffix and re.fullmatch(r"\.[^.]+", target.suffix) else ""
    token = secrets.token_hex(8)
    return target.with_name(f".{target.name}.{_TAG}-{os.getpid()}-{token}{extension}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except (OverflowError, OSError):
        return False
    return True


def _remove(path: Path) -> None:
    """Removes a file, a symbolic link or a directory tree; a missing path is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _renameat2():
    """libc's ``renameat2`` (glibc 2.28 or later), or ``None``."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def _rename(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(source, target, flags)``: ``True`` when done, ``False`` when ``target``
    exists (``RENAME_NOREPLACE``) or the call is unavailable (then ``RENAME_NOREPLACE``
    falls back to ``os.rename`` onto a missing ``target``).

    Raises:
        OSError: any other failure of the rename.
    """
    function = _renameat2()
    if function is not None:
        result = function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags)
        if result == 0:
            return True
        code = ctypes.get_errno()
        if code == errno.EEXIST and flags == _RENAME_NOREPLACE:
            return False
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(source), None, str(target))
    if flags == _RENAME_NOREPLACE and not os.path.lexists(target):
        os.rename(source, target)
        return True
    return False


def _swap_by_two_renames(staging: Path, target: Path) -> None:
    """Moves ``target`` aside, ``staging`` onto ``target``, and the old content to ``staging``."""
    aside = _temporary_path(target, suffix=False)
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    os.rename(aside, staging)


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    if path.is_symlink() or not path.is_file():
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_directory(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, AttributeError):
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
