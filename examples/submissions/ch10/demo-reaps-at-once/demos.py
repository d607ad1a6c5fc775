"""Broken twin of our process demos: `zombie` waits for its child at once.

The parent blocks in waitpid() before the child exits, so the child is reaped the
moment it ends: no zombie ever shows in /proc, which is what the demo is for.
`waitpid` is done right.
"""
import os
import sys
import time

cmd, seconds = sys.argv[1], float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
if cmd == "zombie":
    pid = os.fork()
    if pid == 0:
        print("Hi, I am a child process", flush=True)
        time.sleep(0.2)
        os._exit(0)
    print(f"Child Process ID: {pid}", flush=True)
    os.waitpid(pid, 0)  # the mistake: reaped at once, never seen as a zombie
    time.sleep(seconds)
elif cmd == "waitpid":
    pid = os.fork()
    if pid == 0:
        time.sleep(seconds)
        os._exit(24)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print(f"Child send {os.WEXITSTATUS(status)}")
            break
        print("sleep 0.2sec.", flush=True)
        time.sleep(0.2)
