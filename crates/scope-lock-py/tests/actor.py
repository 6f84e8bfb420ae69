"""One process of a multi-process test, driven over its stdin and stdout.

    actor.py hold LOOPS_DIR NAME [SCOPE ...] [--instance ID] [--singleton] [--shared]
        Tries once to acquire (shared with --shared); says "held <lock file>" or "conflict". Then, per
        line on stdin: "release" releases and says "released"; "probe" says the
        lock file's state as another process sees it. At end of input it exits
        (without releasing: the end of the process is the release).
    actor.py fork-hold LOOPS_DIR NAME SCOPE
        Acquires, says "held <lock file>", forks; the child says
        "child <pid> held=<paths its manager holds>" and lives until its stdin
        ends (or 60 s), the parent blocks until killed.
    actor.py cycle LOOPS_DIR NAME SCOPE CYCLES DEADLINE_S WITNESS WORKER [WAIT_S]
        Says "ready", waits for one line (the start), then CYCLES times:
        acquire (again until it succeeds; with WAIT_S, acquire_wait with that
        timeout, counting each False as "gave_up"), witness "enter", check from
        a separate open file description that the lock file is flocked, witness
        "exit", release. Ends early at DEADLINE_S. Last line: a JSON summary.
    actor.py churn LOOPS_DIR NAME SCOPE MAX_CYCLES
        Says "ready", then acquires and releases until stdin ends or
        MAX_CYCLES; last line: a JSON summary.
    actor.py probe PATH
        Says "held", "free" or "missing" for PATH's flock.
    actor.py list LOOPS_DIR
        Says the live locks as one JSON list of records.

Every wait is bounded, and every actor ends by itself when its stdin ends.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import select
import sys
import time

from scope_lock import LockManager


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def probe(path: str) -> str:
    """The flock state of PATH through a fresh open file description."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "missing"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return "held"
        raise
    finally:
        os.close(fd)
    return "free"


def options(args: list[str]) -> tuple[list[str], str | None, bool, bool]:
    instance = None
    singleton = False
    shared = False
    rest = []
    it = iter(args)
    for arg in it:
        if arg == "--instance":
            instance = next(it)
        elif arg == "--singleton":
            singleton = True
        elif arg == "--shared":
            shared = True
        else:
            rest.append(arg)
    return rest, instance, singleton, shared


def hold(args: list[str]) -> None:
    (loops_dir, name, *scope), instance, singleton, shared = options(args)
    manager = LockManager(loops_dir)
    if not manager.acquire(name, scope, instance, singleton=singleton, shared=shared):
        say("conflict")
    path = str(manager.running_dir / f"{instance or name}.lock")
    if manager.held():
        say(f"held {path}")
    for line in sys.stdin:
        command = line.strip()
        if command == "release":
            manager.release(name, instance)
            say("released")
        elif command == "probe":
            say(probe(path))


def fork_hold(args: list[str]) -> None:
    loops_dir, name, scope = args
    manager = LockManager(loops_dir)
    if not manager.acquire(name, [scope]):
        say("conflict")
        return
    say(f"held {manager.held()[0]}")
    pid = os.fork()
    if pid == 0:
        held = ",".join(str(p) for p in manager.held())
        manager.release(name)  # must not touch the parent's lock
        say(f"child {os.getpid()} held={held}")
        select.select([sys.stdin], [], [], 60)
        os._exit(0)
    # The parent holds until it is killed; it never reads stdin, which is the child's.
    time.sleep(120)


def cycle(args: list[str]) -> None:
    loops_dir, name, scope, cycles, deadline_s, witness_path, worker, *wait_s = args
    manager = LockManager(loops_dir)
    instance = f"{name}-{worker}"

    def acquire() -> bool:
        if wait_s:
            return manager.acquire_wait(name, [scope], float(wait_s[0]), instance)
        return manager.acquire(name, [scope], instance)

    witness = os.open(witness_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    say("ready")
    sys.stdin.readline()
    deadline = time.monotonic() + float(deadline_s)
    done = attempts = unheld = gave_up = 0
    while done < int(cycles) and time.monotonic() < deadline:
        attempts += 1
        if not acquire():
            gave_up += 1 if wait_s else 0
            continue
        os.write(witness, f"enter {worker} {done} {time.monotonic_ns()}\n".encode())
        path = manager.held()[0]
        if probe(str(path)) != "held":
            unheld += 1
        os.write(witness, f"exit {worker} {done} {time.monotonic_ns()}\n".encode())
        manager.release(name, instance)
        done += 1
    say(json.dumps({"worker": int(worker), "holds": done, "attempts": attempts, "unheld": unheld,
                    "gave_up": gave_up}))


def churn(args: list[str]) -> None:
    loops_dir, name, scope, max_cycles = args
    manager = LockManager(loops_dir)
    say("ready")
    cycles = errors = 0
    while cycles < int(max_cycles):
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        if ready and not sys.stdin.readline():
            break
        try:
            if manager.acquire(name, [scope]):
                manager.release(name)
        except OSError:
            errors += 1
        cycles += 1
    say(json.dumps({"cycles": cycles, "errors": errors}))


def list_locks(args: list[str]) -> None:
    (loops_dir,) = args
    say(json.dumps([lock.to_dict() for lock in LockManager(loops_dir).list_locks()]))


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    {
        "hold": hold,
        "fork-hold": fork_hold,
        "cycle": cycle,
        "churn": churn,
        "probe": lambda a: say(probe(a[0])),
        "list": list_locks,
    }[command](args)


if __name__ == "__main__":
    main()
