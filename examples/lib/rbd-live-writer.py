#!/usr/bin/python3
"""A stand-in for a VM on Ceph: keeps an RBD image open (as librbd clients do) and writes unique random
4 KiB blocks at random aligned offsets at a fixed rate until SIGTERM.

usage: rbd-live-writer.py CONF POOL IMAGE BYTES_PER_SECOND PIDFILE
Needs python3-rbd (Debian) and /usr/bin/python3 (the interpreter that has the rbd module).
"""
import os, random, signal, sys, time

import rados
import rbd

conf, pool, image_name, rate, pidfile = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
stopping = False


def stop(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
cluster = rados.Rados(conffile=conf)
cluster.connect(timeout=30)
ioctx = cluster.open_ioctx(pool)
image = rbd.Image(ioctx, image_name)
blocks = image.size() // 4096
with open(pidfile, "w") as f:
    f.write(str(os.getpid()))
written = 0
t0 = time.monotonic()
while not stopping:
    due = int((time.monotonic() - t0) * rate / 4096)
    while written < due and not stopping:
        image.write(os.urandom(4096), random.randrange(blocks) * 4096)
        written += 1
    time.sleep(0.01)
image.flush()
image.close()
ioctx.close()
cluster.shutdown()
os.unlink(pidfile)
sys.stderr.write("rbd-live-writer: stopped after %d blocks of 4 KiB\n" % written)
