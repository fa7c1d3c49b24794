#!/usr/bin/python3
"""A stand-in for a VM on Ceph: keeps an RBD image open (as librbd clients do) and writes unique random
4 KiB blocks at random aligned offsets until SIGTERM (RBD_WRITER_QUEUE_DEPTH writes in flight, default 1).

usage: rbd-live-writer.py CONF POOL IMAGE RATE PIDFILE [STOPFILE]
RATE: bytes per second, or `bursty` (cycles of 10 s: 1.5 s at 10 MiB/s, then 8.5 s at 0.6 MiB/s; mean
2 MiB/s). On SIGTERM it finishes the write in flight, flushes, closes the image, writes to STOPFILE
"EPOCH BYTES SECONDS" (the wall-clock instant of its last flushed write, the bytes it wrote, for how
long), and removes PIDFILE.
Needs python3-rbd (Debian) and /usr/bin/python3 (the interpreter that has the rbd module).
"""
import os, random, signal, sys, threading, time

import rados
import rbd

conf, pool, image_name, rate_arg, pidfile = sys.argv[1:6]
stopfile = sys.argv[6] if len(sys.argv) > 6 else None
MiB = 1 << 20
stopping = False


def stop(*_):
    global stopping
    stopping = True


def due_bytes(elapsed):
    """Bytes the pattern should have written after `elapsed` seconds."""
    if rate_arg != "bursty":
        return elapsed * float(rate_arg)
    cycles, t = divmod(elapsed, 10.0)
    per_cycle = 1.5 * 10 * MiB + 8.5 * 0.6 * MiB
    within = min(t, 1.5) * 10 * MiB + max(0.0, t - 1.5) * 0.6 * MiB
    return cycles * per_cycle + within


signal.signal(signal.SIGTERM, stop)
cluster = rados.Rados(conffile=conf)
cluster.connect(timeout=30)
ioctx = cluster.open_ioctx(pool)
image = rbd.Image(ioctx, image_name)
blocks = image.size() // 4096
with open(pidfile, "w") as f:
    f.write(str(os.getpid()))
written = 0
in_flight = 0
failed = []
lock = threading.Condition()


def done(completion):
    global in_flight
    with lock:
        if completion.get_return_value() < 0:
            failed.append(completion.get_return_value())
        in_flight -= 1
        lock.notify()


# Writes in flight: RBD_WRITER_QUEUE_DEPTH (default 1: one at a time). A guest with a queue keeps several
# in flight; one write at a time waits for each OSD commit and cannot hold a few MiB/s while snapshots
# are taken (the downtime bench uses 16).
depth = int(os.environ.get("RBD_WRITER_QUEUE_DEPTH", "1"))
t0 = time.monotonic()
while not stopping and not failed:
    due = int(due_bytes(time.monotonic() - t0) / 4096)
    while written < due and not stopping:
        with lock:
            while in_flight >= depth:
                lock.wait()
            in_flight += 1
        image.aio_write(os.urandom(4096), random.randrange(blocks) * 4096, done)
        written += 1
    time.sleep(0.005)
with lock:
    while in_flight > 0:
        lock.wait()
if failed:
    sys.stderr.write("rbd-live-writer: a write failed: %d\n" % failed[0])
image.flush()
stopped_at = time.time()
image.close()
if stopfile:
    with open(stopfile, "w") as f:
        f.write("%.6f %d %.3f\n" % (stopped_at, written * 4096, time.monotonic() - t0))
os.unlink(pidfile)
ioctx.close()
cluster.shutdown()
sys.stderr.write("rbd-live-writer: stopped after %d blocks of 4 KiB\n" % written)
