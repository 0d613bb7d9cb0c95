"""tests/e2e/test_api_docs.py - keeps the API's description honest: one daemon with an admin
listener; its registered actions (`bulwarkctl -j help`, "actions") against docs/openapi.yaml
and docs/api.md, and every path of openapi.yaml against the daemon (served: neither 404 nor
405).

Probes use a viewer token, so an admin action answers 403 after it was routed and nothing
is changed; a viewer's read answers 200 (or 400 for a missing argument).
"""

import json
import os
import time

import pytest
import yaml

from conftest import ctl
from test_admin_api import admin_config, bearer, free_port, request, token

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILTIN = {("get", "/api/v1/health"), ("post", "/api/v1/login"), ("post", "/api/v1/logout"),
           ("get", "/api/v1/whoami")}
METHODS = ("get", "post", "delete", "put", "patch")


def openapi():
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        return yaml.safe_load(f)


def openapi_path(action):
    """/api/v1/allow/* with tail name -> /api/v1/allow/{name}"""
    path = action["path"]
    if path.endswith("/*"):
        path = path[:-1] + "{%s}" % action["tail"]
    return path


@pytest.fixture(scope="module")
def api(bulwark_module, internet, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("apidocs"))
    aport = free_port()
    cfg = {"listen": "127.0.0.1@%d" % aport}
    daemon = bulwark_module(lambda port, wd: admin_config(internet, port, wd, cfg), workdir=d)
    daemon.aport = aport
    daemon.viewer = token(daemon.config_path, "docs-viewer", "viewer")
    deadline = time.monotonic() + 10
    while request(aport, "GET", "/api/v1/whoami", headers=bearer(daemon.viewer)).status != 200:
        assert time.monotonic() < deadline, "the new token was not picked up"
        time.sleep(0.2)
    p = ctl(os.path.join(d, "state"), "-j", "help")
    daemon.actions = json.loads(p.stdout)["result"]["actions"]
    return daemon


def test_openapi_is_well_formed():
    doc = openapi()
    assert str(doc["openapi"]).startswith("3.0")
    text = json.dumps(doc)
    for ref in set(x.split('"')[0] for x in text.split('"$ref": "')[1:]):
        node = doc
        assert ref.startswith("#/"), ref
        for part in ref[2:].split("/"):
            assert part in node, "unresolved $ref " + ref
            node = node[part]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert method in METHODS, (path, method)
            assert "200" in op["responses"], (path, method)
            assert op.get("x-bulwark-role") in ("none", "viewer", "admin"), (path, method)
            for name in (p["name"] for p in op.get("parameters", []) if "name" in p):
                assert name  # a parameter has a name


def test_every_action_route_is_described(api):
    doc = openapi()
    with open(os.path.join(ROOT, "docs", "api.md")) as f:
        prose = f.read()
    assert len(api.actions) >= 20, api.actions
    for a in api.actions:
        path, method = openapi_path(a), a["method"].lower()
        op = doc["paths"].get(path, {}).get(method)
        assert op, "%s %s (action %s) is not in docs/openapi.yaml" % (a["method"], path, a["name"])
        assert op.get("x-bulwark-action") == a["name"], (path, op.get("x-bulwark-action"))
        assert op.get("x-bulwark-role") == a["role"], (path, a["role"])
        assert bool(op.get("x-bulwark-audited")) == a["changes"], (path, a["changes"])
        words = "`%s %s`" % (a["method"], a["path"].replace("*", a["tail"].upper()
                                                             if a["tail"] else "*"))
        assert words in prose, "%s is not in docs/api.md" % words
    # and nothing else but the four endpoints that are not actions
    routes = {(a["method"].lower(), openapi_path(a)) for a in api.actions}
    described = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert described - routes == BUILTIN


def test_every_described_path_is_served(api):
    doc = openapi()
    for path, item in doc["paths"].items():
        for method in item:
            url = path.replace("{name}", "example.com")
            body = {} if method == "post" else None
            r = request(api.aport, method.upper(), url, body=body, headers=bearer(api.viewer))
            assert r.status not in (404, 405), (method, url, r.status, r.body)
            if r.status != 200:
                assert "no such API endpoint" not in r.json()["error"], (method, url, r.body)
            role = item[method].get("x-bulwark-role")
            if role == "admin":
                assert r.status == 403, (method, url, r.status, r.body)
            elif path != "/api/v1/login":
                assert r.status in (200, 400), (method, url, r.status, r.body)
    # the probe itself is sound: a path that is not described is not served
    r = request(api.aport, "GET", "/api/v1/nothing-here", headers=bearer(api.viewer))
    assert r.status == 404


def test_help_lists_each_word_once(api):
    p = ctl(os.path.join(api.dir, "state"), "-j", "help")
    names = [row[0].split()[0] for row in json.loads(p.stdout)["result"]["rows"]]
    assert sorted(names) == sorted(set(names)), names
    assert "status" in names and "why" in names
    table = ctl(os.path.join(api.dir, "state"), "help").stdout
    assert sum(1 for line in table.splitlines() if line.split()[:1] == ["status"]) == 1, table
