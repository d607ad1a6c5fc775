"""Broken twin of our signal demos: `remove-zombie` has no SIGCHLD handler.

Its children end and stay zombies; nothing reaps them or reports them. `signal` is
done right.
"""
import os
import signal
import sys
import time

cmd, seconds = sys.argv[1], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
if cmd == "signal":
    signal.signal(signal.SIGINT, lambda s, f: print("CTRL+C pressed", flush=True))
    signal.signal(signal.SIGALRM, lambda s, f: print("Time out!", flush=True))
    timeouts = 0
    signal.alarm(int(seconds))
    while timeouts < 3:
        print("wait...", flush=True)
        signal.pause()
        if signal.alarm(0) == 0:
            timeouts += 1
        signal.alarm(int(seconds))
    signal.alarm(0)
elif cmd == "remove-zombie":
    # the mistake: no signal.signal(signal.SIGCHLD, ...): nothing reaps the children
    for code in (12, 24):
        pid = os.fork()
        if pid == 0:
            time.sleep(seconds)
            os._exit(code)
        print(f"Child proc id: {pid}", flush=True)
    for _ in range(int(seconds / 0.1) + 5):
        print("wait...", flush=True)
        time.sleep(0.1)
