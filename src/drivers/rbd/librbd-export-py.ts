/**
 * `rbd export-diff` through librbd (python3-rbd), reading changed extents in object-sized spans: the same
 * "rbd diff v1" stream, byte for byte, with far fewer reads. `rbd export-diff` reads every changed extent
 * on its own (10 at a time); beside a live writer the source's reads of 4 KiB extents were what every
 * round of the downtime bench waited for (docs/BENCHMARKS.md). Here the extents of one RADOS object
 * whose gaps are at most `gap` bytes are read as one span (at most one object), 16 spans at a time, and
 * the records are cut from the span. Run as `python3 -c SOURCE CONN`: it connects, then reads its job (one
 * JSON line) from stdin, so it can be started before the job is known (librbd-exporters.ts); EOF instead
 * of a job: disconnect and exit 0. The stream goes to stdout.
 *
 * Like export-diff: header 'f' (a delta), 't', 's' (the size at the end snapshot); for each extent of
 * `diff_iterate(from, include_parent, whole_object)`, a 'z' record where it does not exist or reads back
 * as zeros, else a 'w' record with its data at the end snapshot; then 'e'. Failures go to stderr in the
 * rbd CLI's shape (exit 1), so rbd-errors.ts classifies them.
 */
import { LIBRBD_CONNECT_PY } from './librbd-session-py.js'

/** Largest gap between two changed extents of one object that are read as one span. */
export const EXPORT_SPAN_GAP_BYTES = 256 << 10
/** Spans read at once; each is at most one object (4 MiB by default). */
export const EXPORT_SPANS_IN_FLIGHT = 16

export const LIBRBD_EXPORT_PY = String.raw`${LIBRBD_CONNECT_PY}
import struct, threading
from collections import deque

def fail(f):
    sys.stderr.write('rbd: export-diff failed: %s\n' % f['error'])
    sys.stderr.flush()

rados, rbd, cluster = connect(json.loads(sys.argv[1]), fail)
line = sys.stdin.readline()
if not line.strip():
    cluster.shutdown()
    sys.exit(0)
try:
    req = json.loads(line)
    io = cluster.open_ioctx(req['pool'])
    io.set_namespace(req.get('namespace') or '')
    img = rbd.Image(io, req['image'], snapshot=req['toSnap'], read_only=True)
    size = img.size()
    objsize = 1 << img.stat()['order']
except Exception as e:
    fail(failure(e))
    os._exit(1)

out = sys.stdout.buffer
def name(tag, n):
    b = n.encode()
    out.write(tag + struct.pack('<I', len(b)) + b)

zeros = bytes(objsize)
def is_zero(d):
    for i in range(0, len(d), objsize):
        if d[i:i + objsize] != zeros[:min(objsize, len(d) - i)]:
            return False
    return True

class Read:
    __slots__ = ('span', 'done', 'data', 'ret')

# Streamed, like export-diff: spans are read while diff_iterate still reports extents, at most
# req['inFlight'] at once, and written in order, so memory does not grow with the image.
ahead = deque()
def emit_first():
    r = ahead.popleft()
    r.done.wait()
    if r.ret < 0:
        raise OSError(-r.ret, 'reading %d+%d' % (r.span[0], r.span[1] - r.span[0]))
    view = memoryview(r.data) if r.data is not None else None
    for o, l, e in r.span[2]:
        d = view[o - r.span[0]:o - r.span[0] + l] if e else None
        # export-diff: an extent that does not exist, or reads back as zeros, is a 'z' record.
        if d is None or is_zero(d):
            out.write(b'z' + struct.pack('<QQ', o, l))
        else:
            out.write(b'w' + struct.pack('<QQ', o, l))
            out.write(d)

def submit(s):
    while len(ahead) >= req['inFlight']:
        emit_first()
    r = Read()
    r.span, r.done, r.data, r.ret = s, threading.Event(), None, 0
    if s[2][0][2]:
        def cb(c, data, r=r):
            r.ret, r.data = c.get_return_value(), data
            r.done.set()
        img.aio_read(s[0], s[1] - s[0], cb, rados.LIBRADOS_OP_FLAG_FADVISE_NOCACHE)
    else:
        r.done.set()
    ahead.append(r)

# A span: a run of existing extents within one object whose gaps are at most req['gap'].
span = None
def on_extent(o, l, e):
    global span
    e = bool(e)
    if e and span and span[2][-1][2] and o // objsize == (span[1] - 1) // objsize and o - span[1] <= req['gap']:
        span[1] = o + l
        span[2].append((o, l, e))
        return 0
    if span:
        submit(span)
    span = [o, o + l, [(o, l, e)]]
    return 0

try:
    out.write(b'rbd diff v1\n')
    if req.get('fromSnap') is not None:
        name(b'f', req['fromSnap'])
    name(b't', req['toSnap'])
    out.write(b's' + struct.pack('<Q', size))
    img.diff_iterate(0, size, req.get('fromSnap'), on_extent, include_parent=True,
                     whole_object=bool(req.get('wholeObject')))
    if span:
        submit(span)
    while ahead:
        emit_first()
    out.write(b'e')
    out.flush()
except BrokenPipeError:
    os._exit(1)
except Exception as e:
    fail(failure(e))
    os._exit(1)
img.close()
io.close()
cluster.shutdown()
`
