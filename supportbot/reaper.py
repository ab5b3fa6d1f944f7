"""`python -m supportbot.reaper PID`: started by `supportbot up` (supportbot_cli.stack.Reaper) to end
the services' process groups once the supervisor PID is gone, however it ended.

Protocol on standard input, one line each: `+PGID` watch a group, `-PGID` forget it (stopped
normally). End of input, or the supervisor no longer being our parent, means the supervisor ended:
SIGTERM to every watched group still alive, SIGKILL to what is left after the grace period."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

GRACE_S = 20.0


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal(groups: set[int], number: int) -> None:
    for group in groups:
        try:
            os.killpg(group, number)
        except (ProcessLookupError, PermissionError):
            pass


def end_groups(groups: set[int], grace_s: float = GRACE_S) -> None:
    living = {g for g in groups if _alive(g)}
    _signal(living, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while living and time.monotonic() < deadline:
        time.sleep(0.2)
        living = {g for g in living if _alive(g)}
    _signal(living, signal.SIGKILL)


def main() -> None:
    supervisor = int(sys.argv[1])
    # Not ours to stop: a terminal's Ctrl-C or hang-up reaches the supervisor, which tells us.
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    groups: set[int] = set()
    lock = threading.Lock()
    ended = threading.Event()

    def read() -> None:
        for line in sys.stdin:
            line = line.strip()
            if line[:1] in "+-" and line[1:].isdigit():
                with lock:
                    (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    # Also watch the parent: the pipe closes with the supervisor, unless something inherited it.
    while not ended.wait(1.0):
        if os.getppid() != supervisor:
            break
    with lock:
        watched = set(groups)
    end_groups(watched)


if __name__ == "__main__":
    main()
