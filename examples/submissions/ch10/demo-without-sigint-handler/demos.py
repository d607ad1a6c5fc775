"""Broken twin of our signal demos: `signal` handles SIGALRM but not SIGINT.

Ctrl-C keeps its default action and ends the program instead of printing
"CTRL+C pressed". `remove-zombie` is done right.
"""
import os
import signal
import sys
import time

cmd, seconds = sys.argv[1], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
if cmd == "signal":
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # the mistake: no handler for SIGINT
    signal.signal(signal.SIGALRM, lambda s, f: print("Time out!", flush=True))
    for _ in range(3):
        signal.alarm(int(seconds))
        print("wait...", flush=True)
        signal.pause()
elif cmd == "remove-zombie":
    reaped = []

    def reap(sig, frame):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            reaped.append((pid, os.WEXITSTATUS(status)))

    signal.signal(signal.SIGCHLD, reap)
    for code in (12, 24):
        pid = os.fork()
        if pid == 0:
            time.sleep(seconds)
            os._exit(code)
        print(f"Child proc id: {pid}", flush=True)
    shown = 0
    while shown < 2:
        print("wait...", flush=True)
        time.sleep(0.1)
        while shown < len(reaped):
            pid, code = reaped[shown]
            print(f"removed proc id: {pid}")
            print(f"Child send: {code}")
            shown += 1
