"""Whole-or-nothing writes of files and directories (tfp_flowad.atomic)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tfp_flowad import atomic
from tfp_flowad.atomic import atomic_directory, atomic_file, sweep_leftovers


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_file_appears_whole_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old\n")
    with atomic_file(target) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".csv"
        temporary.write_text("new\n")
        assert target.read_text() == "old\n"  # nothing visible before the block ends
    assert target.read_text() == "new\n"
    assert _hidden(tmp_path) == []


def test_error_inside_leaves_the_old_file_and_no_leftover(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old\n")
    with pytest.raises(OSError, match="disk full"), atomic_file(target) as temporary:
        temporary.write_text("half")
        raise OSError("disk full")
    assert target.read_text() == "old\n"
    assert _hidden(tmp_path) == []


def test_refuses_a_directory_and_the_input_itself(tmp_path):
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    same = tmp_path / "sub" / ".." / "x.csv"
    with pytest.raises(ValueError, match="x.csv.*input.*x.csv"), atomic_file(same, [data]):
        pass
    link = tmp_path / "link.csv"
    os.link(data, link)  # a hard link is the same file under another name
    with pytest.raises(ValueError, match="input"), atomic_file(link, not_same_as=[data]):
        pass
    with pytest.raises(ValueError, match="is a directory"), atomic_file(tmp_path):
        pass
    with pytest.raises(ValueError, match="not a regular file"), atomic_file("/dev/null"):
        pass
    missing = tmp_path / "missing" / "out.csv"
    with pytest.raises(FileNotFoundError, match="does not exist"), atomic_file(missing):
        pass
    assert data.read_text() == "a\n1\n"


def test_stale_leftovers_of_dead_processes_are_swept_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getppid()
    stale_file = tmp_path / f".out.csv.tfp_flowad-tmp-{dead}-{'a' * 16}.csv"
    stale_dir = tmp_path / f".model.tfp_flowad-tmp-{dead}-{'b' * 16}"
    kept = tmp_path / f".out.csv.tfp_flowad-tmp-{live}-{'c' * 16}.csv"
    stale_file.write_text("half")
    (stale_dir / "sub").mkdir(parents=True)
    kept.write_text("being written")
    unrelated = tmp_path / ".out.csv.other-tmp-1-x"
    unrelated.write_text("not ours")
    with atomic_file(tmp_path / "out.csv") as temporary:
        temporary.write_text("done")
    assert _hidden(tmp_path) == sorted([kept.name, unrelated.name])
    assert sweep_leftovers(tmp_path) == []


def test_modes_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_file(tmp_path / "f.csv") as temporary:
            temporary.write_text("x")
        with atomic_directory(tmp_path / "d") as staging:
            (staging / "inside").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.csv").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750


def test_an_existing_file_keeps_its_mode(tmp_path):
    target = tmp_path / "f.csv"
    target.write_text("old")
    target.chmod(0o600)
    with atomic_file(target) as temporary:
        temporary.write_text("new")
    assert target.stat().st_mode & 0o777 == 0o600


def test_directory_appears_whole_and_is_exchanged_when_allowed(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("1")
        assert not target.exists()
    assert sorted(os.listdir(target)) == ["a"]
    with pytest.raises(FileExistsError, match="refusing to replace"), atomic_directory(target):
        pass
    with pytest.raises(FileExistsError), atomic_directory(target, may_replace=lambda p: False):
        pass
    with atomic_directory(target, may_replace=lambda p: (p / "a").exists()) as staging:
        (staging / "b").write_text("2")
    assert sorted(os.listdir(target)) == ["b"]
    assert _hidden(tmp_path) == []


def test_directory_error_inside_leaves_the_old_one(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "a").write_text("1")
    replacing = atomic_directory(target, may_replace=lambda p: True)
    with pytest.raises(RuntimeError), replacing as staging:
        (staging / "b").write_text("2")
        raise RuntimeError("failed halfway")
    assert sorted(os.listdir(target)) == ["a"]
    assert _hidden(tmp_path) == []
    (tmp_path / "file").write_text("x")
    onto_file = atomic_directory(tmp_path / "file")
    with pytest.raises(ValueError, match="a file of that name exists"), onto_file:
        pass


def test_exchange_falls_back_to_two_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_renameat2", lambda: None)
    target = tmp_path / "model"
    with atomic_directory(target) as staging:
        (staging / "a").write_text("1")
    with atomic_directory(target, may_replace=lambda p: True) as staging:
        (staging / "b").write_text("2")
    assert sorted(os.listdir(target)) == ["b"]
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_killed_write_leaves_nothing_once_the_next_write_runs(tmp_path, kind):
    target = tmp_path / ("out.csv" if kind == "file" else "model")
    writer = textwrap.dedent(
        f"""
        import importlib.util, time
        spec = importlib.util.spec_from_file_location("atomic", {atomic.__file__!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # without the package, which loads TensorFlow
        atomic_{kind} = module.atomic_{kind}
        with atomic_{kind}({str(target)!r}) as temporary:
            path = temporary / "part" if {kind == "directory"} else temporary
            path.write_text("half")
            print("writing", flush=True)
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert len(_hidden(tmp_path)) == 1 and not target.exists()
    started = time.perf_counter()
    with (atomic_file if kind == "file" else atomic_directory)(target) as temporary:
        (temporary / "part" if kind == "directory" else temporary).write_text("whole")
    assert time.perf_counter() - started < 10
    assert _hidden(tmp_path) == []
