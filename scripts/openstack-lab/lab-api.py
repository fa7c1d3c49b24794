#!/usr/bin/python3
"""Keystone registration and readiness checks for the OpenStack lab, over plain REST (no clients).

  lab-api.py register PASSWORD         users, roles, regions, services and endpoints of both regions
  lab-api.py wait-volume REGION SECS   until cinder-volume of REGION reports up
  lab-api.py wait-compute REGION SECS  until a hypervisor is listed in REGION
  lab-api.py flavor REGION             creates flavor m1.tiny (1 vCPU, 512 MiB, 1 GiB) if absent
Ports come from LAB_PORTS_JSON (written by openstack-lab.sh)."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

PORTS = json.loads(os.environ["LAB_PORTS_JSON"])
KEYSTONE = f"http://127.0.0.1:{PORTS['keystone']}/v3"
ADMIN_PASSWORD = os.environ["LAB_ADMIN_PASSWORD"]
SERVICE_PASSWORD = os.environ["LAB_SERVICE_PASSWORD"]
REGIONS = {"RegionOne": "r1", "RegionTwo": "r2"}


def call(method, url, token=None, body=None, headers=None, ok=(200, 201, 202, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else {}), r.headers
    except urllib.error.HTTPError as e:
        raw = e.read()
        if e.code in ok:
            return e.code, (json.loads(raw) if raw else {}), e.headers
        raise RuntimeError(f"{method} {url}: HTTP {e.code}: {raw[:500]!r}") from None


def admin_token():
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
    _, data, headers = call("POST", f"{KEYSTONE}/auth/tokens", body=body)
    return headers["X-Subject-Token"], data["token"]


def find(token, kind, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    _, data, _ = call("GET", f"{KEYSTONE}/{kind}?{qs}", token)
    return data[kind]


def ensure(token, kind, singular, body, **query):
    got = find(token, kind, **query)
    if got:
        return got[0]["id"]
    _, data, _ = call("POST", f"{KEYSTONE}/{kind}", token, {singular: body})
    return data[singular]["id"]


def register():
    token, _ = admin_token()
    if not [r for r in find(token, "regions") if r["id"] == "RegionTwo"]:
        call("POST", f"{KEYSTONE}/regions", token, {"region": {"id": "RegionTwo"}})
    project = ensure(token, "projects", "project", {"name": "service", "domain_id": "default"}, name="service")
    roles = {name: ensure(token, "roles", "role", {"name": name}, name=name) for name in ("admin", "service")}
    for user in ("cinder", "nova", "placement"):
        uid = ensure(token, "users", "user", {"name": user, "domain_id": "default",
                                               "password": SERVICE_PASSWORD}, name=user)
        for rid in roles.values():
            call("PUT", f"{KEYSTONE}/projects/{project}/users/{uid}/roles/{rid}", token)
    catalog = {
        "identity": ("keystone", lambda r: f"http://127.0.0.1:{PORTS['keystone']}/v3"),
        "volumev3": ("cinderv3", lambda r: f"http://127.0.0.1:{PORTS[r + '_cinder']}/v3/%(project_id)s"),
        "block-storage": ("cinder", lambda r: f"http://127.0.0.1:{PORTS[r + '_cinder']}/v3/%(project_id)s"),
        "compute": ("nova", lambda r: f"http://127.0.0.1:{PORTS[r + '_nova']}/v2.1"),
        "placement": ("placement", lambda r: f"http://127.0.0.1:{PORTS[r + '_placement']}"),
        "network": ("neutron", lambda r: f"http://127.0.0.1:{PORTS['neutron']}"),
    }
    endpoints = find(token, "endpoints")
    for stype, (name, url) in catalog.items():
        sid = ensure(token, "services", "service", {"type": stype, "name": name}, type=stype)
        for region, short in REGIONS.items():
            for iface in ("public", "internal", "admin"):
                if any(e["service_id"] == sid and e["region_id"] == region and e["interface"] == iface
                       for e in endpoints):
                    continue
                call("POST", f"{KEYSTONE}/endpoints", token, {"endpoint": {
                    "service_id": sid, "region_id": region, "interface": iface, "url": url(short)}})


def endpoint(token_body, stype, region):
    for svc in token_body["catalog"]:
        if svc["type"] == stype:
            for e in svc["endpoints"]:
                if e["region_id"] == region and e["interface"] == "public":
                    return e["url"]
    raise RuntimeError(f"no {stype} endpoint in {region}")


def wait(secs, what, check):
    deadline = time.time() + secs
    last = None
    while time.time() < deadline:
        try:
            if check():
                return
        except Exception as e:  # noqa: BLE001 - services come up in any order
            last = e
        time.sleep(1)
    sys.exit(f"timed out after {secs} s waiting for {what} ({last})")


def wait_volume(region, secs):
    token, body = admin_token()
    url = endpoint(body, "volumev3", region)

    def up():
        _, data, _ = call("GET", f"{url}/os-services?binary=cinder-volume", token)
        if not any(s["state"] == "up" for s in data["services"]):
            return False
        # Up is not enough: until the scheduler has the backend's capabilities, volumes go to error.
        _, pools, _ = call("GET", f"{url}/scheduler-stats/get_pools", token)
        return len(pools.get("pools", [])) > 0
    wait(secs, f"cinder-volume in {region} and its pool in the scheduler", up)


def wait_compute(region, secs):
    token, body = admin_token()
    url = endpoint(body, "compute", region)

    def up():
        _, data, _ = call("GET", f"{url}/os-hypervisors", token)
        return len(data["hypervisors"]) > 0
    wait(secs, f"a hypervisor in {region}", up)


def flavor(region):
    token, body = admin_token()
    url = endpoint(body, "compute", region)
    _, data, _ = call("GET", f"{url}/flavors", token)
    if not any(f["name"] == "m1.tiny" for f in data["flavors"]):
        call("POST", f"{url}/flavors", token, {"flavor": {"name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1}})


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "register":
        register()
    elif cmd == "wait-volume":
        wait_volume(sys.argv[2], int(sys.argv[3]))
    elif cmd == "wait-compute":
        wait_compute(sys.argv[2], int(sys.argv[3]))
    elif cmd == "flavor":
        flavor(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")
