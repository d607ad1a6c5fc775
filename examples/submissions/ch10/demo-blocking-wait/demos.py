"""Broken twin of our process demos: `waitpid` blocks instead of polling.

waitpid(pid, 0) waits until the child ends, so the parent never gets to do anything
meanwhile: WNOHANG is the point of the book's example. `zombie` is done right.
"""
import os
import sys
import time

cmd, seconds = sys.argv[1], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
if cmd == "zombie":
    pid = os.fork()
    if pid == 0:
        print("Hi, I am a child process", flush=True)
        os._exit(0)
    print(f"Child Process ID: {pid}", flush=True)
    time.sleep(seconds)
    os.waitpid(pid, 0)
elif cmd == "waitpid":
    pid = os.fork()
    if pid == 0:
        time.sleep(seconds)
        os._exit(24)
    _, status = os.waitpid(pid, 0)  # the mistake: no WNOHANG, no polling
    print(f"Child send {os.WEXITSTATUS(status)}")
