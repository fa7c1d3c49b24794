/**
 * The Python side of a librbd session (python3-rbd, a dependency of Debian's ceph-common): one process
 * per cluster connection that connects once and answers the short calls over JSON lines, each in a
 * worker thread so a long diff does not hold up a snapshot listing. Run as `python3 -c SOURCE CONN`.
 *
 * Protocol (stdout, one JSON object per line): first `{"ready":true}` once connected, or
 * `{"ready":false,"errno":N,"error":"..."}` and exit. Then per request `{"id","op",...}` on stdin, one
 * `{"id","ok":true,"result":...}` or `{"id","ok":false,"errno":N,"error":"..."}`. EOF on stdin: finish
 * what is running, disconnect, exit. Errors carry librbd's errno and text in the rbd CLI's shape
 * ("... (2) No such file or directory") so the CLI's error rules classify both.
 */
/**
 * Connecting to a cluster the way the rbd CLI does, with snapferry's timeouts (shared by the session and
 * the exporter, librbd-export-py.ts): `connect(conn, report)` returns (rados, rbd, cluster), or passes
 * report() librbd's errno and text in the rbd CLI's shape ("... (2) No such file or directory", so the
 * CLI's error rules classify both) and exits: 3 without python3-rbd, 4 when the cluster is unreachable.
 */
export const LIBRBD_CONNECT_PY = `
import json, os, sys

def failure(e):
    n = getattr(e, 'errno', None) or 0
    text = str(e)
    if n:
        text += ' (%d) %s' % (n, os.strerror(n))
    return {'errno': n, 'error': text}

def connect(conn, report):
    try:
        import rados, rbd
    except ImportError as e:
        report(failure(e))
        sys.exit(3)
    t = str(conn['timeoutSeconds'])
    try:
        cluster = rados.Rados(rados_id=conn.get('id'), clustername=conn.get('cluster') or 'ceph', conffile=None)
        cluster.conf_read_file(conn.get('conf'))
        cluster.conf_parse_env()
        if conn.get('keyring'):
            cluster.conf_set('keyring', conn['keyring'])
        for k in ('client_mount_timeout', 'rados_osd_op_timeout', 'rados_mon_op_timeout'):
            cluster.conf_set(k, t)
        cluster.connect(timeout=int(t))
    except Exception as e:
        report(failure(e))
        sys.exit(4)
    return rados, rbd, cluster
`

export const LIBRBD_SESSION_PY = String.raw`${LIBRBD_CONNECT_PY}
import calendar, threading
from concurrent.futures import ThreadPoolExecutor

out = threading.Lock()
def send(obj):
    line = json.dumps(obj, separators=(',', ':')) + '\n'
    with out:
        sys.stdout.write(line)
        sys.stdout.flush()

rados, rbd, cluster = connect(json.loads(sys.argv[1]), lambda f: send(dict(ready=False, **f)))

ioctxs = {}
ioctx_lock = threading.Lock()
def ioctx(pool, ns):
    with ioctx_lock:
        key = (pool, ns or '')
        if key not in ioctxs:
            io = cluster.open_ioctx(pool)
            io.set_namespace(ns or '')
            ioctxs[key] = io
        return ioctxs[key]

def image(req, read_only):
    return rbd.Image(ioctx(req['pool'], req.get('namespace')), req['image'], read_only=read_only)

def op_size(req):
    with image(req, True) as im:
        return im.size()

def op_snapshots(req):
    with image(req, True) as im:
        out = []
        for s in im.list_snaps():
            # Like 'rbd snap ls': user snapshots only (not trash or mirror ones).
            if s.get('namespace', rbd.RBD_SNAP_NAMESPACE_TYPE_USER) != rbd.RBD_SNAP_NAMESPACE_TYPE_USER:
                continue
            ts = calendar.timegm(im.get_snap_timestamp(s['id']).timetuple())
            out.append({'id': s['id'], 'name': s['name'], 'size': s['size'], 'timestamp': ts})
        return out

def op_snap_create(req):
    with image(req, False) as im:
        im.create_snap(req['name'])

def op_snap_remove(req):
    with image(req, False) as im:
        im.remove_snap(req['name'])

def op_diff(req):
    extents = []
    with image(req, True) as im:
        im.diff_iterate(0, im.size(), req.get('fromSnap'), lambda o, l, e: extents.append([o, l, bool(e)]),
                        include_parent=True, whole_object=bool(req.get('wholeObject')))
    return extents

def op_meta_get(req):
    try:
        with image(req, True) as im:
            return im.metadata_get(req['key'])
    except (KeyError, rbd.ImageNotFound):
        return None

# Images opened for writing ahead of the metaSet that follows (an apply's marker): the open, the watch and
# the header refresh happen while the apply waits for its first bytes, not in the marker's time.
held = {}
held_lock = threading.Lock()

def held_key(req):
    return (req['pool'], req.get('namespace') or '', req['image'])

def take_held(req):
    with held_lock:
        return held.pop(held_key(req), None)

def op_hold_writable(req):
    im = image(req, False)
    with held_lock:
        old = held.pop(held_key(req), None)
        held[held_key(req)] = im
    if old is not None:
        old.close()

def op_release_writable(req):
    im = take_held(req)
    if im is not None:
        im.close()

class Later:
    # An answer to send first, and work to do after it (closing an image releases its exclusive lock,
    # which the caller's next step, import-diff, needs: it is not worth making the caller wait for).
    def __init__(self, result, after):
        self.result, self.after = result, after

def op_meta_set(req):
    im = take_held(req) or image(req, False)
    try:
        im.metadata_set(req['key'], req['value'])
    except Exception:
        im.close()
        raise
    return Later(None, im.close)

def op_meta_remove(req):
    with image(req, False) as im:
        try:
            im.metadata_remove(req['key'])
        except KeyError as e:
            raise rbd.ObjectNotFound(str(e), errno=2)

OPS = {'size': op_size, 'snapshots': op_snapshots, 'snapCreate': op_snap_create,
       'snapRemove': op_snap_remove, 'diff': op_diff, 'metaGet': op_meta_get, 'metaSet': op_meta_set,
       'metaRemove': op_meta_remove, 'holdWritable': op_hold_writable,
       'releaseWritable': op_release_writable}

def handle(req):
    after = None
    try:
        result = OPS[req['op']](req)
        if isinstance(result, Later):
            result, after = result.result, result.after
        send({'id': req['id'], 'ok': True, 'result': result})
    except Exception as e:
        send(dict(id=req['id'], ok=False, **failure(e)))
    if after is not None:
        try:
            after()
        except Exception:
            pass

send({'ready': True})
pool = ThreadPoolExecutor(max_workers=8)
for line in sys.stdin:
    if line.strip():
        pool.submit(handle, json.loads(line))
pool.shutdown(wait=True)
for im in held.values():
    im.close()
for io in ioctxs.values():
    io.close()
cluster.shutdown()
`
