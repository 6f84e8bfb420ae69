"""The original LockManager's API, behaviour by behaviour, in one process.

Each test names the behaviour it checks; the original's semantics are those of
little-loops' scripts/little_loops/fsm/concurrency.py (see docs/python.md
for where ours deliberately differ).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

import scope_lock
from scope_lock import (
    RUNNING_DIR,
    LockManager,
    NotALockFileError,
    ScopeConflict,
    ScopeLock,
    resolve_scope,
)

from conftest import dead_pid, write_original_lock


# --- construction -------------------------------------------------------------------------


def test_default_loops_dir_is_dot_loops_under_the_current_directory(project: Path) -> None:
    manager = LockManager()
    assert manager.loops_dir == Path(".loops")
    assert manager.running_dir == Path(".loops") / RUNNING_DIR == Path(".loops/.running")
    assert manager.acquire("demo", ["src"])
    assert (project / ".loops" / ".running" / "demo.lock").is_file()


def test_loops_dir_may_be_a_path_or_a_string(loops_dir: Path) -> None:
    assert LockManager(loops_dir).running_dir == loops_dir / ".running"
    assert LockManager(str(loops_dir)).running_dir == loops_dir / ".running"


# --- acquire and release ------------------------------------------------------------------


def test_acquire_writes_the_originals_record_and_returns_true(manager: LockManager, project: Path) -> None:
    assert manager.acquire("demo", ["src", "docs/../docs/api"]) is True
    text = (manager.running_dir / "demo.lock").read_text()
    data = json.loads(text)
    identity = ["pid_namespace", "pid_start_ticks"] if sys.platform == "linux" else []
    ours = ["liveness", *identity, "token"]
    assert list(data) == ["loop_name", "scope", "pid", "started_at", *ours]
    assert data["loop_name"] == "demo"
    assert data["scope"] == [str(project / "src"), str(project / "docs" / "api")]
    assert data["pid"] == os.getpid()
    assert data["started_at"].endswith("+00:00")
    assert data["liveness"] == "flock"
    # json.dump's separators, one line, no newline: what the original writes and reads.
    assert text == json.dumps(data)


def test_release_removes_the_lock_and_frees_the_scope(manager: LockManager) -> None:
    assert manager.acquire("demo", ["src"])
    assert not manager.acquire("other", ["src"])
    assert manager.release("demo") is None
    assert not (manager.running_dir / "demo.lock").exists()
    assert manager.acquire("other", ["src"])


def test_release_of_nothing_held_is_a_no_op_and_release_is_idempotent(manager: LockManager) -> None:
    manager.release("never-acquired")
    assert manager.acquire("demo", ["src"])
    manager.release("demo")
    manager.release("demo")
    assert manager.list_locks() == []


def test_release_of_a_lock_file_whose_file_vanished_does_not_raise(manager: LockManager) -> None:
    assert manager.acquire("demo", ["src"])
    (manager.running_dir / "demo.lock").unlink()
    manager.release("demo")
    assert manager.held() == []


def test_release_touches_only_what_this_manager_acquired(loops_dir: Path) -> None:
    mine, theirs = LockManager(loops_dir), LockManager(loops_dir)
    assert theirs.acquire("demo", ["src"])
    mine.release("demo")  # the original would delete theirs.lock here
    assert (loops_dir / ".running" / "demo.lock").exists()
    assert not mine.acquire("other", ["src"])
    theirs.release("demo")
    assert mine.acquire("other", ["src"])


def test_a_manager_keeps_its_locks_after_it_is_garbage_collected(loops_dir: Path) -> None:
    assert LockManager(loops_dir).acquire("demo", ["src"])
    import gc

    gc.collect()
    assert not LockManager(loops_dir).acquire("other", ["src"])


# --- a relative loops directory (the default) ----------------------------------------------
# Lock files are resolved to absolute paths when acquired, and release() names them again from
# a relative directory: these tests go through LockManager() in the `project` fixture's cwd.


def test_release_frees_a_lock_taken_through_the_default_relative_directory(project: Path, actor) -> None:
    manager = LockManager()
    assert manager.acquire("job", ["src"])
    lock_file = project / ".loops" / ".running" / "job.lock"
    assert actor("probe", lock_file).line() == "held"
    manager.release("job")
    assert manager.held() == [], "release left the lock held"
    assert actor("probe", lock_file).line() == "missing"
    assert manager.acquire("job", ["src"])


def test_hold_on_the_default_directory_releases_when_the_block_ends(project: Path) -> None:
    # The example of README.md and of crates/scope-lock-py/README.md.
    with LockManager().hold("docs-fixer", ["docs/"]):
        assert (project / ".loops" / ".running" / "docs-fixer.lock").is_file()
    assert not (project / ".loops" / ".running" / "docs-fixer.lock").exists(), \
        "the lock outlived its with block"
    assert LockManager().acquire("other", ["docs"])


def test_release_after_a_chdir_releases_the_lock_acquired(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = project / "elsewhere"
    elsewhere.mkdir()
    manager = LockManager()
    assert manager.acquire("job", ["src"])
    monkeypatch.chdir(elsewhere)
    manager.release("job")
    assert manager.held() == [], "release after a chdir left the lock held"
    assert not (project / ".loops" / ".running" / "job.lock").exists()
    monkeypatch.chdir(project)
    with manager.hold("block", ["src"]):
        monkeypatch.chdir(elsewhere)
    assert manager.held() == [], "a chdir inside the with block left the lock held"
    assert not (project / ".loops" / ".running" / "block.lock").exists()


def test_release_of_a_name_held_under_two_directories_takes_the_one_under_the_current_directory(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, third = (project / name for name in ("first", "second", "third"))
    for directory in (first, second, third):
        directory.mkdir()
    manager = LockManager()
    for directory in (first, second):
        monkeypatch.chdir(directory)
        assert manager.acquire("job", ["src"])
    monkeypatch.chdir(third)
    with pytest.raises(ValueError, match='holds 2 locks named "job"'):
        manager.release("job")
    assert len(manager.held()) == 2
    monkeypatch.chdir(first)
    manager.release("job")
    assert manager.held() == [second / ".loops" / ".running" / "job.lock"]


# --- conflicts by overlap -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "wanted", "conflicts"),
    [
        (["src"], ["src"], True),  # the same path
        (["src"], ["src/lib/x.py"], True),  # a child of the held path
        (["src/lib"], ["src"], True),  # a parent of the held path
        (["src/a"], ["src/b"], False),  # siblings
        (["a/b"], ["a/bc"], False),  # a common prefix is not a parent
        (["docs", "src/x"], ["tests", "src"], True),  # any pair overlapping is enough
        (["*.md"], ["README.md"], True),  # a glob holds the paths it matches (SL-23)
        (["literal:*.md"], ["README.md"], False),  # meant literally: one file named *.md
    ],
)
def test_conflicts_are_decided_by_path_overlap(manager: LockManager, held, wanted, conflicts) -> None:
    assert manager.acquire("first", held)
    assert manager.acquire("second", wanted) is (not conflicts)


def test_the_empty_scope_is_the_whole_project(manager: LockManager, project: Path) -> None:
    assert manager.acquire("everything", [])
    (lock,) = manager.list_locks()
    assert lock.scope == [str(project)]
    assert not manager.acquire("part", ["src/deep/file.py"])
    assert not manager.acquire("also-everything", [])
    manager.release("everything")
    assert manager.acquire("part", ["src/deep/file.py"])
    assert not manager.acquire("everything", [])


def test_scope_entries_resolve_symlinks_like_path_resolve(manager: LockManager, project: Path) -> None:
    (project / "real").mkdir()
    (project / "alias").symlink_to(project / "real")
    assert manager.acquire("by-alias", ["alias/sub"])
    assert manager.list_locks()[0].scope == [str(project / "real" / "sub")]
    assert not manager.acquire("by-real", ["real"])


# --- scope arguments: a str is one path, os.PathLike is a path ----------------------------


class FsPath:
    """An os.PathLike that is not a pathlib.Path."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return self.path


@pytest.mark.parametrize("scope", ["docs", Path("docs"), FsPath("docs"), ["docs"], [Path("docs")],
                                   (FsPath("docs"),)],
                         ids=["str", "Path", "PathLike", "list-of-str", "list-of-Path", "tuple-of-PathLike"])
def test_a_str_or_path_like_scope_is_one_path_on_every_entry_point(
        manager: LockManager, loops_dir: Path, project: Path, scope) -> None:
    docs = [str(project / "docs")]
    with manager.hold("s", scope) as lock:
        assert lock.scope == docs
    assert manager.acquire("a", scope) and manager.list_locks()[0].scope == docs
    # The split scope would have locked ./d, ./o, ./c and ./s instead.
    assert manager.acquire("d", ["d", "o", "c", "s"])
    assert manager.find_conflict(scope).loop_name == "a"
    assert not manager.wait_for_scope(scope, timeout=0)
    manager.release("a")
    assert manager.find_conflict(scope) is None
    assert manager.wait_for_scope(scope, timeout=0)
    assert manager.acquire_wait("w", scope, timeout=0)
    assert {lock.loop_name: lock.scope for lock in manager.list_locks()}["w"] == docs
    assert LockManager(FsPath(str(loops_dir))).running_dir == loops_dir / ".running"
    with pytest.raises(TypeError):
        LockManager(b".loops")
    assert manager._scopes_overlap(scope, ["docs/x"])
    assert not manager._scopes_overlap(scope, ["d"])


def test_resolve_scope_takes_a_str_as_one_entry() -> None:
    assert resolve_scope("${context.dir}/x", {"dir": "docs"}) == ["docs/x"]
    assert resolve_scope([Path("docs")], {}) == ["docs"]


@pytest.mark.parametrize("scope", [[7], [None]], ids=["list-of-int", "list-of-None"])
def test_a_scope_entry_that_is_not_a_path_is_a_type_error_naming_it(manager: LockManager, scope) -> None:
    shown = repr(scope[0])
    for call in (lambda: manager.acquire("x", scope), lambda: manager.acquire_wait("x", scope, 0),
                 lambda: manager.find_conflict(scope), lambda: manager.wait_for_scope(scope, 0),
                 lambda: manager._scopes_overlap(scope, ["a"])):
        with pytest.raises(TypeError, match="scope entry") as raised:
            call()
        assert shown in str(raised.value)
    with pytest.raises(TypeError, match="scope entry"):
        with manager.hold("x", scope):
            pass
    assert manager.list_locks() == []


# The Latin-1 `café`: a file name that is not UTF-8, as bytes and as the str that
# os.fsdecode makes of it (the byte 0xE9 as the surrogate escape U+DCE9).
CAFE_BYTES = b"caf\xe9"
CAFE_STR = os.fsdecode(CAFE_BYTES)


class FsBytes:
    """An os.PathLike whose path is bytes."""

    def __init__(self, path: bytes) -> None:
        self.path = path

    def __fspath__(self) -> bytes:
        return self.path


@pytest.mark.parametrize("entry", [CAFE_STR, CAFE_BYTES, Path(CAFE_STR), FsBytes(CAFE_BYTES)],
                         ids=["surrogateescape-str", "bytes", "Path", "bytes-PathLike"])
def test_a_non_utf8_scope_entry_is_locked_byte_for_byte(
        manager: LockManager, project: Path, entry) -> None:
    cafe = os.fsdecode(os.fsencode(project) + b"/" + CAFE_BYTES)
    assert CAFE_STR == "caf\udce9"
    assert manager.acquire("latin1", [entry])
    # The record and the listing give the path as os.fsdecode does, so os.fsencode gives
    # the bytes back.
    [listed] = manager.list_locks()
    assert listed.scope == [cafe]
    assert os.fsencode(listed.scope[0]).endswith(b"/caf\xe9")
    # The lock file has it as the original writes it: json.dump of the fsdecoded str.
    data = json.loads((manager.running_dir / "latin1.lock").read_text())
    assert data["scope"] == [cafe]
    # Inside it conflicts; names that only look alike once the byte is lost do not.
    raw = os.fspath(entry)
    assert not manager.acquire("inside", [os.path.join(raw, b"menu" if isinstance(raw, bytes) else "menu")])
    assert manager.find_conflict([CAFE_BYTES + b"/menu"]).loop_name == "latin1"
    assert manager.acquire("lookalike-utf8", ["caf\u00e9"])
    assert manager.acquire("lookalike-fffd", ["caf\ufffd"])
    manager.release("latin1")
    assert manager.acquire("inside", [CAFE_BYTES + b"/x"])


def test_resolve_scope_keeps_bytes_that_are_not_utf8() -> None:
    assert resolve_scope([CAFE_STR + "/${context.run}"], {"run": 7}) == [CAFE_STR + "/7"]
    assert resolve_scope(CAFE_BYTES + b"/${context.run}", {"run": "r"}) == [CAFE_STR + "/r"]


# --- instance ids and names ---------------------------------------------------------------


def test_instance_id_names_the_lock_file_and_release_needs_it(manager: LockManager) -> None:
    assert manager.acquire("loop", ["a"], "loop-run-1")
    assert (manager.running_dir / "loop-run-1.lock").is_file()
    assert not (manager.running_dir / "loop.lock").exists()
    assert manager.list_locks()[0].loop_name == "loop"
    manager.release("loop")  # not this lock's name
    assert (manager.running_dir / "loop-run-1.lock").is_file()
    manager.release("loop", "loop-run-1")
    assert manager.list_locks() == []


def test_instances_of_one_loop_hold_disjoint_scopes_together(manager: LockManager) -> None:
    assert manager.acquire("loop", ["a"], "loop-1")
    assert manager.acquire("loop", ["b"], "loop-2")
    assert not manager.acquire("loop", ["a/x"], "loop-3")
    assert sorted(lock.scope[0][-1] for lock in manager.list_locks()) == ["a", "b"]


def test_a_lock_name_held_live_is_a_conflict_not_an_overwrite(manager: LockManager) -> None:
    assert manager.acquire("loop", ["a"], "same")
    assert not manager.acquire("loop", ["b"], "same")
    assert manager.list_locks()[0].scope[0].endswith("/a")


def test_nested_instance_ids_are_lock_files_in_subdirectories_and_are_seen(manager: LockManager) -> None:
    assert manager.acquire("gen", ["."], "generated/gen-20260101T000000")
    assert (manager.running_dir / "generated" / "gen-20260101T000000.lock").is_file()
    assert [lock.loop_name for lock in manager.list_locks()] == ["gen"]
    assert not manager.acquire("other", ["x"], "generated/other")


@pytest.mark.parametrize("name", ["", "/abs", "../escape", "a/../../b", ".hidden", "nul\0"])
def test_names_that_cannot_name_a_lock_file_raise_value_error_quoting_them(manager: LockManager, name: str) -> None:
    with pytest.raises(ValueError, match="invalid loop name") as raised:
        manager.acquire(name, ["src"])
    assert repr(name)[1:-1].replace("\\x00", "\\0") in str(raised.value)
    with pytest.raises(ValueError, match="invalid instance id"):
        manager.acquire("fine", ["src"], name or "/")


# --- singletons and the ancestor carve-out (the carve-out needs processes: test_processes) --


def test_a_singleton_conflicts_with_its_own_name_whatever_the_scopes(manager: LockManager) -> None:
    assert manager.acquire("solo", ["a"], "solo-1", singleton=True)
    assert not manager.acquire("solo", ["b"], "solo-2", singleton=True)
    # Not a singleton request: scopes decide, as in the original.
    assert manager.acquire("solo", ["c"], "solo-3")
    # Another name's singleton is not concerned.
    assert manager.acquire("duo", ["d"], "duo-1", singleton=True)


def test_a_non_singleton_holder_does_not_block_a_singleton_of_its_name(manager: LockManager) -> None:
    assert manager.acquire("solo", ["a"], "solo-1")
    assert manager.acquire("solo", ["b"], "solo-2", singleton=True)


def test_singleton_is_a_keyword_only_argument(manager: LockManager) -> None:
    with pytest.raises(TypeError):
        manager.acquire("solo", ["a"], None, True)  # type: ignore[misc]


def test_singleton_is_recorded_only_when_true(manager: LockManager) -> None:
    assert manager.acquire("solo", ["a"], singleton=True)
    assert manager.acquire("plain", ["b"])
    solo = json.loads((manager.running_dir / "solo.lock").read_text())
    plain = json.loads((manager.running_dir / "plain.lock").read_text())
    assert solo["singleton"] is True
    assert "singleton" not in plain


# --- find_conflict and list_locks ---------------------------------------------------------


def test_find_conflict_returns_the_holder_or_none(manager: LockManager, project: Path) -> None:
    assert manager.find_conflict(["src"]) is None
    assert manager.acquire("holder", ["src"])
    found = manager.find_conflict(["src/x"])
    assert isinstance(found, ScopeLock)
    assert (found.loop_name, found.scope, found.pid) == ("holder", [str(project / "src")], os.getpid())
    assert manager.find_conflict(["docs"]) is None
    # find_conflict takes nothing.
    assert [lock.loop_name for lock in manager.list_locks()] == ["holder"]


def test_find_conflict_applies_the_singleton_rule_only_when_asked(manager: LockManager) -> None:
    assert manager.acquire("solo", ["a"], singleton=True)
    assert manager.find_conflict(["b"]) is None
    assert manager.find_conflict(["b"], caller_loop_name="solo") is None
    found = manager.find_conflict(["b"], caller_loop_name="solo", caller_singleton=True)
    assert found is not None and found.loop_name == "solo"
    assert manager.find_conflict(["b"], caller_singleton=True) is None


def test_find_conflict_ignores_lock_names(manager: LockManager) -> None:
    # Like the original, find_conflict knows scopes and singletons, not file names.
    assert manager.acquire("demo", ["a"])
    assert manager.find_conflict(["b"], caller_loop_name="demo") is None


def test_list_locks_lists_every_live_lock_as_scope_locks(manager: LockManager, project: Path) -> None:
    assert manager.list_locks() == []
    assert manager.acquire("one", ["a"])
    assert manager.acquire("two", ["b"], "two-x", singleton=True)
    locks = sorted(manager.list_locks(), key=lambda lock: lock.loop_name)
    assert [(lock.loop_name, lock.scope, lock.singleton, lock.liveness) for lock in locks] == [
        ("one", [str(project / "a")], False, "flock"),
        ("two", [str(project / "b")], True, "flock"),
    ]


def test_no_lock_directory_means_no_locks(manager: LockManager) -> None:
    assert manager.list_locks() == []
    assert manager.find_conflict(["src"]) is None
    assert not manager.running_dir.exists()


# --- the original's files: liveness by pid, stale cleanup -----------------------------------


def test_a_lock_of_the_original_with_a_live_pid_blocks(manager: LockManager, project: Path) -> None:
    write_original_lock(manager.running_dir / "py.lock", loop_name="py", scope=[str(project / "src")],
                        pid=1, started_at="2026-01-01T00:00:00.000000+00:00")
    (lock,) = manager.list_locks()
    assert (lock.loop_name, lock.pid, lock.liveness) == ("py", 1, None)
    assert not manager.acquire("mine", ["src/x"])
    assert manager.find_conflict(["src"]).loop_name == "py"


def test_locks_of_dead_pids_are_removed_by_every_scan(manager: LockManager, project: Path) -> None:
    stale = manager.running_dir / "stale.lock"
    record = dict(loop_name="stale", scope=[str(project / "src")], pid=dead_pid(),
                  started_at="2026-01-01T00:00:00.000000+00:00")
    write_original_lock(stale, **record)
    assert manager.list_locks() == []
    assert not stale.exists()
    write_original_lock(stale, **record)
    assert manager.find_conflict(["src"]) is None
    assert not stale.exists()
    write_original_lock(stale, **record)
    assert manager.acquire("mine", ["src"])
    assert not stale.exists()


def test_a_legacy_string_scope_and_a_missing_singleton_are_read(manager: LockManager, project: Path) -> None:
    write_original_lock(manager.running_dir / "old.lock", loop_name="old", scope=str(project / "src"),
                        pid=1, started_at="2026-01-01T00:00:00+00:00")
    (lock,) = manager.list_locks()
    assert (lock.scope, lock.singleton) == ([str(project / "src")], False)
    assert not manager.acquire("new", ["src"])


def test_an_unreadable_file_that_may_be_live_blocks_and_is_never_deleted(manager: LockManager, caplog) -> None:
    # The original skipped what it could not parse, as if there were no lock. A torn file with
    # no proof that its holder is gone may be the original's live lock: it blocks every scope.
    manager.running_dir.mkdir(parents=True)
    torn = manager.running_dir / "torn.lock"
    torn.write_text('{"loop_name": "x", "sco')
    (manager.running_dir / "notes.txt").write_text("not a lock")
    with caplog.at_level("WARNING", logger="scope_lock"):
        assert manager.list_locks() == []
        found = manager.find_conflict(["anything"])
    assert "torn.lock" in caplog.text
    assert (found.loop_name, found.pid, found.liveness) == ("torn", 0, "unreadable")
    assert not manager.acquire("mine", ["anything"])
    with pytest.raises(ScopeConflict) as raised:
        with manager.hold("mine", ["anything"]):
            pass
    assert raised.value.holder is None and raised.value.rule == "unreadable"
    assert torn.read_text() == '{"loop_name": "x", "sco'
    assert (manager.running_dir / "notes.txt").read_text() == "not a lock"


def test_an_unreadable_file_of_a_dead_holder_is_moved_aside_not_deleted(manager: LockManager, caplog) -> None:
    manager.running_dir.mkdir(parents=True)
    torn = manager.running_dir / "torn.lock"
    content = '{"loop_name": "x", "pid": %d, "sco' % dead_pid()
    torn.write_text(content)
    with caplog.at_level("WARNING", logger="scope_lock"):
        assert manager.list_locks() == []
    assert "torn.lock" in caplog.text
    assert not torn.exists()
    (aside,) = [p for p in manager.running_dir.iterdir() if p.name.startswith(".torn.lock")]
    assert aside.read_text() == content
    assert manager.acquire("mine", ["anything"])


# --- hold() and ScopeConflict -------------------------------------------------------------


def test_hold_holds_for_the_block_and_yields_the_record(manager: LockManager, project: Path) -> None:
    with manager.hold("held", ["src"]) as lock:
        assert (lock.loop_name, lock.scope, lock.pid) == ("held", [str(project / "src")], os.getpid())
        assert not manager.acquire("other", ["src"])
    assert manager.acquire("other", ["src"])


def test_hold_releases_when_the_block_raises(manager: LockManager) -> None:
    with pytest.raises(KeyError):
        with manager.hold("held", ["src"]):
            raise KeyError("boom")
    assert manager.list_locks() == []


def test_hold_raises_scope_conflict_carrying_the_holder(manager: LockManager, project: Path) -> None:
    assert manager.acquire("holder", ["src"], singleton=True)
    holder = manager.list_locks()[0]
    with pytest.raises(ScopeConflict) as raised:
        with manager.hold("late", ["src/x"]):
            pytest.fail("entered a held scope")
    err = raised.value
    assert err.holder == holder
    assert (err.loop_name, err.scope, err.pid, err.since) == (
        "holder", [str(project / "src")], os.getpid(), holder.started_at)
    assert err.rule == "overlap"
    assert err.lock_path.endswith("holder.lock")
    assert err.held_by_this_process
    assert "held by loop `holder`" in str(err)
    with pytest.raises(ScopeConflict) as raised:
        with manager.hold("holder", ["elsewhere"], "holder-2", singleton=True):
            pass
    assert raised.value.rule == "singleton"


def test_an_early_release_inside_hold_is_not_released_twice(manager: LockManager) -> None:
    with manager.hold("held", ["src"]):
        manager.release("held")
        assert manager.acquire("held", ["src"])
    # The second acquire is not the hold's: it survives the end of the block.
    assert [lock.loop_name for lock in manager.list_locks()] == ["held"]


# --- I/O errors ---------------------------------------------------------------------------


def test_a_symlink_where_the_lock_file_goes_is_refused_with_its_path(manager: LockManager, project: Path) -> None:
    manager.running_dir.mkdir(parents=True)
    target = project / "elsewhere"
    target.write_text("precious")
    (manager.running_dir / "demo.lock").symlink_to(target)
    with pytest.raises(NotALockFileError) as raised:
        manager.acquire("demo", ["src"])
    assert isinstance(raised.value, OSError)
    assert raised.value.filename.endswith("demo.lock")
    assert "symlink" in str(raised.value)
    assert target.read_text() == "precious"


def test_a_lock_directory_that_cannot_be_made_raises_the_os_error_with_its_path(project: Path) -> None:
    (project / "loops-file").write_text("a file, not a directory")
    with pytest.raises(OSError) as raised:
        LockManager(project / "loops-file").acquire("demo", ["src"])
    assert type(raised.value) in (FileExistsError, NotADirectoryError)
    assert raised.value.errno is not None
    assert raised.value.filename == str(project / "loops-file" / ".running")


# --- ScopeLock ----------------------------------------------------------------------------


def test_scope_lock_to_dict_writes_singleton_only_when_true() -> None:
    plain = ScopeLock("a", ["/x"], 5, "t")
    assert plain.to_dict() == {"loop_name": "a", "scope": ["/x"], "pid": 5, "started_at": "t"}
    assert ScopeLock("a", ["/x"], 5, "t", singleton=True).to_dict()["singleton"] is True


def test_scope_lock_from_dict_reads_legacy_and_missing_keys() -> None:
    assert ScopeLock.from_dict({"loop_name": "a", "scope": "/x", "pid": "5", "started_at": "t"}) == \
        ScopeLock("a", ["/x"], 5, "t", False)
    with pytest.raises(KeyError):
        ScopeLock.from_dict({"loop_name": "a", "scope": [], "started_at": "t"})


def test_a_held_lock_has_a_fencing_token_above_every_earlier_locks(loops_dir: Path) -> None:
    first, other = LockManager(loops_dir), LockManager(loops_dir)
    tokens = []
    for round in range(3):
        with first.hold(f"a{round}", ["src"]) as a, other.hold(f"b{round}", ["docs"]) as b:
            tokens += [a.token, b.token]
    assert all(isinstance(token, int) for token in tokens), tokens
    assert tokens == sorted(set(tokens)), tokens
    assert [lock.token for lock in first.list_locks()] == []
    assert first.acquire("listed", ["src"])
    (listed,) = other.list_locks()
    assert listed.token is not None and listed.token > tokens[-1]
    first.release("listed")


def test_scope_lock_round_trips_and_carries_our_liveness_key() -> None:
    ours = ScopeLock("a", ["/x"], 5, "t", True, liveness="flock", token=9)
    assert ScopeLock.from_dict(ours.to_dict()) == ours
    assert ours.to_dict()["liveness"] == "flock"
    assert ScopeLock.from_dict(ours.to_dict()).token == 9
    assert "token" not in ScopeLock("a", ["/x"], 5, "t").to_dict()
    # liveness takes no part in equality: records compare as the original's do.
    assert ours == ScopeLock("a", ["/x"], 5, "t", True)


# --- resolve_scope ------------------------------------------------------------------------


def test_resolve_scope_replaces_known_context_variables() -> None:
    assert resolve_scope(["src/${context.module}/", "static"], {"module": "core"}) == ["src/core/", "static"]


def test_resolve_scope_leaves_unknown_variables_and_other_namespaces() -> None:
    assert resolve_scope(["${context.nope}/x", "${env.HOME}", "${context.}"], {"a": 1}) == \
        ["${context.nope}/x", "${env.HOME}", "${context.}"]


def test_resolve_scope_renders_values_with_str_in_one_pass() -> None:
    context = {"n": 7, "flag": True, "path": Path("/p/q"), "loop": "${context.n}"}
    assert resolve_scope(["${context.n}-${context.flag}", "${context.path}/x", "${context.loop}"], context) == \
        ["7-True", "/p/q/x", "${context.n}"]


# --- the original's private helpers -------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("/a/b", "/a/b", True),
        ("/a/b", "/a/b/c", True),
        ("/a/b/c", "/a/b", True),
        ("/a/b", "/a/bc", False),
        ("/a/b", "/a/c", False),
        ("/a/b/", "/a/b", True),
        ("/", "/anything", True),
    ],
)
def test_paths_overlap(manager: LockManager, a: str, b: str, overlap: bool) -> None:
    assert manager._paths_overlap(a, b) is overlap


def test_scopes_overlap(manager: LockManager) -> None:
    assert manager._scopes_overlap(["/x", "/a/b"], ["/y", "/a"])
    assert not manager._scopes_overlap(["/x", "/a/b"], ["/y", "/a/bc"])
    assert not manager._scopes_overlap([], ["/a"])


def test_normalize_path_is_path_resolve(manager: LockManager, project: Path) -> None:
    for entry in ["src", "./src/../docs", "missing/tail", str(project), "."]:
        assert manager._normalize_path(entry) == str(Path(entry).resolve())


def test_the_package_exports_the_originals_names() -> None:
    for name in ["LockManager", "ScopeLock", "resolve_scope", "RUNNING_DIR"]:
        assert hasattr(scope_lock, name)


# --- is_locked and __version__ (not in the original) -------------------------------------------


def test_is_locked_tells_whether_a_live_lock_holds_the_name(manager: LockManager, loops_dir: Path, actor) -> None:
    assert manager.is_locked("job") is False
    holder = actor("hold", loops_dir, "job", "src")
    assert holder.line().startswith("held ")
    instance = actor("hold", loops_dir, "job", "docs", "--instance", "job-2")
    assert instance.line().startswith("held ")
    assert manager.is_locked("job") is True
    assert manager.is_locked("job", "job-2") is True
    assert manager.is_locked("other") is False
    assert manager.acquire("mine", ["elsewhere"])
    assert manager.is_locked("mine") is True
    holder.send("release")
    assert holder.line() == "released"
    assert manager.is_locked("job") is False
    assert manager.is_locked("job", "job-2") is True


def test_is_locked_counts_no_dead_holder_and_leaves_its_file(manager: LockManager, project: Path) -> None:
    stale = manager.running_dir / "gone.lock"
    write_original_lock(stale, loop_name="gone", scope=[str(project / "src")], pid=dead_pid(),
                        started_at="2026-01-01T00:00:00+00:00")
    assert manager.is_locked("gone") is False
    assert stale.exists(), "asking whether a name is locked reclaimed a lock file"


@pytest.mark.parametrize("name", ["", "../escape", "/abs", ".hidden"])
def test_is_locked_refuses_a_name_that_cannot_name_a_lock_file(manager: LockManager, name: str) -> None:
    with pytest.raises(ValueError, match="invalid loop name") as raised:
        manager.is_locked(name)
    assert repr(name)[1:-1] in str(raised.value)
    with pytest.raises(ValueError, match="invalid instance id"):
        manager.is_locked("fine", name or "/")


def test_version_is_the_distributions_version() -> None:
    from importlib.metadata import version

    assert scope_lock.__version__ == version("scope-lock")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", scope_lock.__version__)


def test_a_pattern_scope_holds_the_paths_it_matches_and_literal_takes_it_as_a_path(
        manager: LockManager) -> None:
    assert manager.acquire("readme", ["README.md"])
    # The same process: an overlapping scope is refused, as any holder's would be.
    assert not manager.acquire("docs-sync", ["docs/", "*.md"])
    assert manager.acquire("odd", ["literal:*.md"])
    assert manager.acquire("rust", ["src/**/*.rs"])
    assert not manager.acquire("mod", ["src/*/mod.rs"])
    assert manager._scopes_overlap(["*.md"], ["README.md"])
    assert not manager._paths_overlap("*.md", "README.md")
