"""Drives a real Stride with the `marathon` client from PyPI (0.13.0).

Run by tests/marathon_client.rs as `drive.py STRIDE_URL`, against a Stride on
a local Mesos cluster. Every public method of MarathonClient is called (the
few outside this scope are listed in OUT_OF_SCOPE with the reason), and the
run fails if one is neither. Answers are parsed with the client's own models,
which refuse keys they do not know; event bodies, on /v2/events and on a
callback endpoint, are checked against the field sets of Marathon's
core/event/Events.scala and api/v2/json/Formats.scala, and their deployment
plans parsed with the client's MarathonDeploymentPlan.
"""

import collections
import collections.abc

# marathon 0.13.0's JSON encoders name collections.Iterable, which Python
# 3.10 removed; without this alias the client cannot send a nested object.
if not hasattr(collections, "Iterable"):
    collections.Iterable = collections.abc.Iterable

import http.server
import json
import sys
import threading
import time

import requests
from marathon import MarathonClient
from marathon.exceptions import MarathonHttpError, NotFoundError
from marathon.models import MarathonApp, MarathonGroup, MarathonHealthCheck
from marathon.models.app import PortDefinition
from marathon.models.deployment import MarathonDeploymentPlan
from marathon.models.events import EventFactory

OUT_OF_SCOPE = {
    # /metrics belongs to the metrics issue (17), not to Marathon's /v2 API.
    "get_metrics": "Marathon's /metrics is Stride issue 17 (metrics)",
}

# Each event's keys besides eventType and timestamp, as Marathon writes
# them (core/event/Events.scala case classes, api/v2/json/Formats.scala
# EventFormats). Optional keys are in the second set.
EVENT_KEYS = {
    "api_post_event": ({"clientIp", "uri", "appDefinition"}, set()),
    "subscribe_event": ({"clientIp", "callbackUrl"}, set()),
    "unsubscribe_event": ({"clientIp", "callbackUrl"}, set()),
    "event_stream_attached": ({"remoteAddress"}, set()),
    "add_health_check_event": ({"appId", "healthCheck", "version"}, set()),
    "remove_health_check_event": ({"appId"}, set()),
    "health_status_changed_event": ({"appId", "instanceId", "version", "alive"}, set()),
    "unhealthy_instance_kill_event": (
        {"appId", "taskId", "instanceId", "version", "reason", "host"}, {"slaveId"}),
    "group_change_success": ({"groupId", "version"}, set()),
    "deployment_success": ({"id", "plan"}, set()),
    "deployment_failed": ({"id", "plan"}, {"reason"}),
    "deployment_info": ({"plan", "currentStep"}, set()),
    "deployment_step_success": ({"plan", "currentStep"}, set()),
    "app_terminated_event": ({"appId"}, set()),
    "status_update_event": (
        {"slaveId", "taskId", "taskStatus", "message", "appId", "host", "ipAddresses",
         "ports", "version"}, set()),
    "instance_changed_event": (
        {"instanceId", "condition", "runSpecId", "agentId", "host", "runSpecVersion"}, set()),
    "instance_health_changed_event": (
        {"instanceId", "runSpecId", "healthy", "runSpecVersion"}, set()),
    "unknown_instance_terminated_event": ({"instanceId", "runSpecId", "condition"}, set()),
    "scheduler_registered_event": ({"frameworkId", "master"}, set()),
}

# What this run must see on /v2/events and on its callback endpoint.
EXPECTED_EVENTS = {
    "event_stream_attached", "api_post_event", "group_change_success", "deployment_info",
    "deployment_step_success", "deployment_success", "deployment_failed",
    "status_update_event", "instance_changed_event", "add_health_check_event",
    "remove_health_check_event", "health_status_changed_event",
    "instance_health_changed_event", "app_terminated_event", "unhealthy_instance_kill_event",
}

PLAN_KEYS = {"id", "steps", "version", "original", "target"}
GROUP_IN_PLAN_KEYS = {"id", "apps", "groups", "pods", "dependencies", "version"}


class Recorded:
    """The client, with every public method call recorded by name."""

    def __init__(self, client):
        self._client = client
        self.called = set()

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if callable(attribute) and not name.startswith("_"):
            def call(*args, **kwargs):
                self.called.add(name)
                return attribute(*args, **kwargs)
            return call
        return attribute


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def step(message):
    print(f"-- {message}", flush=True)


def check_event(event, where):
    """The body has Marathon's keys for its type; its plan and its apps parse."""
    kind = event.get("eventType")
    check(kind in EVENT_KEYS, f"{where}: unexpected event type {kind}: {event}")
    required, optional = EVENT_KEYS[kind]
    keys = set(event) - {"eventType", "timestamp"}
    check(required <= keys <= required | optional,
          f"{where}: {kind} has keys {sorted(keys)}, Marathon's are {sorted(required)}"
          f" (optional {sorted(optional)})")
    if "plan" in event:
        plan = event["plan"]
        check(set(plan) == PLAN_KEYS, f"{where}: {kind} plan keys {sorted(plan)}")
        MarathonDeploymentPlan.from_json(plan)
        for side in ("original", "target"):
            check_group_in_plan(plan[side], f"{where}: {kind} plan.{side}")
    if "currentStep" in event:
        check(set(event["currentStep"]) == {"actions"}, f"{where}: {kind} currentStep")
    if "appDefinition" in event:
        MarathonApp.from_json(event["appDefinition"])
    if "healthCheck" in event:
        MarathonHealthCheck.from_json(event["healthCheck"])
    # The client's parser knows every type but scheduler_registered_event
    # (it raises on that one, from Marathon too).
    if kind in EventFactory.event_to_class:
        EventFactory().process(event)


def check_group_in_plan(group, where):
    check(set(group) == GROUP_IN_PLAN_KEYS, f"{where} keys {sorted(group)}")
    for app in group["apps"]:
        MarathonApp.from_json(app)
    for child in group["groups"]:
        check_group_in_plan(child, where)


class Events:
    """Every event one /v2/events connection parsed, by the client."""

    def __init__(self, client, **kwargs):
        self.events = []
        self.raw = kwargs.get("raw", False)
        self.thread = threading.Thread(
            target=self._follow, args=(client, kwargs), daemon=True)
        self.error = None
        self.thread.start()

    def _follow(self, client, kwargs):
        try:
            for event in client.event_stream(**kwargs):
                self.events.append(event)
        except Exception as error:  # reported by the main thread
            self.error = error

    def types(self):
        if self.raw:
            return {json.loads(e)["eventType"] for e in self.events}
        return {e.event_type for e in self.events}


class Callbacks(http.server.BaseHTTPRequestHandler):
    """A callback endpoint: keeps every body Stride POSTs."""

    received = []

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        Callbacks.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def wait(what, predicate, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def settled(c, timeout=120):
    wait("no deployments", lambda: not c.list_deployments(), timeout)


def sleeper(app_id, **kwargs):
    fields = {"cmd": "sleep 1000", "cpus": 0.01, "mem": 8, "instances": 1}
    fields.update(kwargs)
    return MarathonApp(id=app_id, **fields)


def check_deployment_result(result, where):
    check(set(result) == {"deploymentId", "version"}, f"{where}: {result}")


def main(url):
    c = Recorded(MarathonClient(url, timeout=30))

    step("info, leader, ping")
    info = c.get_info()
    check(info.name == "marathon" and info.version == "1.11.0", f"info: {info}")
    check(info.zookeeper_config is not None and info.http_config is not None, "info objects")
    check(c.ping().strip() == b"pong", "ping")
    check(set(c.get_leader()) == {"leader"}, "leader")

    step("event streams and a callback endpoint")
    # Every type the client's parser knows: it raises on any other (Marathon's
    # scheduler_registered_event among them), which would end its stream.
    full = Events(c, event_types=list(EventFactory.event_to_class))
    bodies = Events(c, raw=True)
    raw = Events(c, raw=True, event_types=["deployment_success", "app_terminated_event"])
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Callbacks)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback_url = f"http://127.0.0.1:{receiver.server_port}/events"
    subscribed = c.create_event_subscription(callback_url)
    check(subscribed["eventType"] == "subscribe_event", f"subscribe: {subscribed}")
    check_event(subscribed, "create_event_subscription")
    check(c.list_event_subscriptions() == [callback_url], "subscriptions")
    wait("both streams attached",
         lambda: "event_stream_attached" in full.types() and raw.thread.is_alive())

    step("apps: create, list and get with every embed")
    web = MarathonApp(
        cmd="exec python3 -m http.server $PORT0 --bind 127.0.0.1",
        cpus=0.01, mem=32, instances=1, labels={"tier": "web"},
        port_definitions=[PortDefinition(port=0, protocol="tcp", name="http")],
        health_checks=[MarathonHealthCheck(
            protocol="HTTP", path="/", port_index=0, interval_seconds=1,
            timeout_seconds=1, grace_period_seconds=30, max_consecutive_failures=3)])
    created = c.create_app("/client/web", web)
    check(isinstance(created, MarathonApp) and created.id == "/client/web", f"{created}")
    settled(c)
    wait("a healthy task", lambda: c.get_app("/client/web", embed_counts=True).tasks_healthy == 1)
    everything = dict(embed_tasks=True, embed_counts=True, embed_deployments=True,
                      embed_readiness=True, embed_last_task_failure=True,
                      embed_failures=True, embed_task_stats=True)
    listed = c.list_apps(**everything)
    check([a.id for a in listed] == ["/client/web"], f"list_apps: {listed}")
    app = c.get_app("/client/web", **everything)
    check(app.tasks_running == 1 and len(app.tasks) == 1, f"get_app: {app}")
    check(app.tasks[0].health_check_results[0].alive, "the task is alive")
    check(app.health_checks[0].interval_seconds == 1 and app.health_checks[0].timeout_seconds == 1,
          "health check interval 1, timeout 1 kept")
    check([a.id for a in c.list_apps(cmd="http.server")] == ["/client/web"], "cmd filter")
    check([a.id for a in c.list_apps(app_id="web")] == ["/client/web"], "id filter")
    check([a.id for a in c.list_apps(label="tier==web")] == ["/client/web"], "label filter")
    check(c.list_apps(label="tier==db") == [], "label filter excludes")

    step("tasks and endpoints")
    tasks = c.list_tasks()
    check(len(tasks) == 1 and tasks[0].app_id == "/client/web", f"list_tasks: {tasks}")
    check(len(c.list_tasks("/client/web")) == 1, "list_tasks(app)")
    endpoints = c.list_endpoints()
    check(len(endpoints) == 1 and endpoints[0].app_id == "/client/web", f"{endpoints}")

    step("update, versions, rollback, scale, restart")
    first_version = app.version
    check_deployment_result(
        c.update_app("/client/web", MarathonApp(env={"GREETING": "hi"})), "update_app")
    settled(c)
    check(c.get_app("/client/web").env == {"GREETING": "hi"}, "a partial update keeps the rest")
    versions = c.list_versions("/client/web")
    check(len(versions) == 2 and first_version in versions, f"versions: {versions}")
    old = c.get_version("/client/web", first_version)
    check(old.env == {} and old.version == first_version, f"get_version: {old}")
    check_deployment_result(c.rollback_app("/client/web", first_version), "rollback_app")
    settled(c)
    check(c.get_app("/client/web").env == {}, "rolled back")
    check_deployment_result(c.scale_app("/client/web", instances=3), "scale_app")
    settled(c)
    check(c.get_app("/client/web").instances == 3, "scaled to 3")
    check_deployment_result(c.scale_app("/client/web", delta=-1), "scale_app delta")
    settled(c)
    check(c.get_app("/client/web").instances == 2, "scaled by -1")
    check_deployment_result(c.restart_app("/client/web", force=True), "restart_app")
    settled(c)
    result = c.update_apps([MarathonApp(id="/client/web", instances=1),
                            sleeper("/client/worker", instances=2)])
    check_deployment_result(result, "update_apps")
    settled(c)
    check(sorted(a.id for a in c.list_apps()) == ["/client/web", "/client/worker"],
          "update_apps created the worker")

    step("killing tasks")
    wait("two worker tasks", lambda: len(c.list_tasks("/client/worker")) == 2)
    one = c.list_tasks("/client/worker")[0]
    check_deployment_result(c.kill_task("/client/worker", one.id, scale=True), "kill_task(scale)")
    wait("worker at one instance", lambda: c.get_app("/client/worker").instances == 1)
    settled(c)
    other = wait("one worker task", lambda: c.list_tasks("/client/worker"))[0]
    killed = c.kill_task("/client/worker", other.id)
    check(killed.id == other.id, f"kill_task: {killed}")
    wait("a replacement", lambda: [t.id for t in c.list_tasks("/client/worker")
                                   if t.started_at and t.id != other.id])
    c.update_app("/client/worker", MarathonApp(instances=3))
    settled(c)
    wait("three worker tasks", lambda: len(c.list_tasks("/client/worker")) == 3)
    before = {t.id for t in c.list_tasks("/client/worker")}
    try:
        c.kill_tasks("/client/worker", batch_size=1, batch_delay=1)
    except RuntimeError as error:
        # marathon 0.13.0's batch() lets StopIteration out of a generator,
        # which Python 3.7+ (PEP 479) raises as this once every batch is done.
        check(isinstance(error.__cause__, StopIteration), f"kill_tasks in batches: {error!r}")
    settled(c)
    after = {t.id for t in c.list_tasks("/client/worker")}
    check(before.isdisjoint(after), f"every task killed in batches: {before} {after}")
    wait("three worker tasks again", lambda: len(c.list_tasks("/client/worker")) == 3)
    everyone = c.kill_tasks("/client/worker", wipe=False)
    check(len(everyone) == 3 and all(t.app_id == "/client/worker" for t in everyone),
          f"kill_tasks: {everyone}")
    wait("three worker tasks once more", lambda: len(c.list_tasks("/client/worker")) == 3)
    given = [t.id for t in c.list_tasks("/client/worker")[:2]]
    check(c.kill_given_tasks(given, scale=True, force=True), "kill_given_tasks")
    wait("worker scaled to one", lambda: c.get_app("/client/worker").instances == 1)
    settled(c)
    host = wait("a worker task", lambda: c.list_tasks("/client/worker"))[0].host
    scaled = c.kill_tasks("/client/worker", scale=True, host=host)
    check_deployment_result(scaled, "kill_tasks(scale, host)")
    wait("worker at zero", lambda: c.get_app("/client/worker").instances == 0)
    settled(c)

    step("queue and deployments that cannot finish")
    c.create_app("/client/huge", sleeper("/client/huge", cpus=1000))
    queued = wait("a queue item", lambda: c.list_queue())
    check(queued[0].app.id == "/client/huge" and queued[0].count == 1, f"queue: {queued}")
    offers = c.list_queue(embed_last_unused_offers=True)
    check(offers[0].last_unused_offers == [], f"queue with offers: {offers}")
    c.reset_delay("/client/huge")
    deployments = c.list_deployments()
    check(len(deployments) == 1 and deployments[0].affected_apps == ["/client/huge"],
          f"list_deployments: {deployments}")
    check(deployments[0].steps[0].actions[0].action == "StartApplication", f"{deployments}")
    rollback = c.delete_deployment(deployments[0].id)
    check_deployment_result(rollback, "delete_deployment (rollback)")
    settled(c)
    wait("huge rolled back away", lambda: "/client/huge" not in [a.id for a in c.list_apps()])
    c.create_app("/client/huge", sleeper("/client/huge", cpus=1000))
    stuck = c.list_deployments()[0]
    check(c.delete_deployment(stuck.id, force=True) == {}, "delete_deployment(force)")
    wait("no deployments", lambda: not c.list_deployments())
    check_deployment_result(c.delete_app("/client/huge", force=True), "delete_app")

    step("groups")
    shop = MarathonGroup(id="/shop", apps=[
        sleeper("/shop/db"),
        sleeper("/shop/web", dependencies=["/shop/db"]),
    ], groups=[MarathonGroup(id="/shop/cache", apps=[sleeper("/shop/cache/redis")])])
    check_deployment_result(c.create_group(shop), "create_group")
    settled(c)
    groups = c.list_groups()
    check([g.id for g in groups] == ["/client", "/shop"], f"list_groups: {groups}")
    got = c.get_group("/shop")
    check(sorted(a.id for a in got.apps) == ["/shop/db", "/shop/web"], f"get_group: {got}")
    check([g.id for g in got.groups] == ["/shop/cache"], f"nested: {got}")
    first_group_version = got.version
    changed = MarathonGroup(id="/shop", apps=[
        sleeper("/shop/db", instances=2),
        sleeper("/shop/web", dependencies=["/shop/db"]),
    ], groups=[MarathonGroup(id="/shop/cache", apps=[sleeper("/shop/cache/redis")])])
    check_deployment_result(c.update_group("/shop", changed, force=True), "update_group")
    settled(c)
    check(c.get_app("/shop/db").instances == 2, "update_group changed db")
    check_deployment_result(
        c.rollback_group("/shop", first_group_version, force=True), "rollback_group")
    settled(c)
    check(c.get_app("/shop/db").instances == 1, "rollback_group restored db")
    check_deployment_result(c.scale_group("/shop", 2), "scale_group")
    settled(c)
    check([c.get_app(a).instances for a in ("/shop/db", "/shop/web", "/shop/cache/redis")]
          == [2, 2, 2], "scale_group doubled every app")
    deleted = c.delete_group("/shop", force=True)
    check_deployment_result(deleted, "delete_group")
    settled(c)
    try:
        c.get_group("/shop")
        raise AssertionError("the group is still there")
    except NotFoundError:
        pass

    step("a task that fails its health check is killed")
    sick = MarathonApp(
        cmd="sleep 1000", cpus=0.01, mem=8, instances=1,
        port_definitions=[PortDefinition(port=0)],
        health_checks=[MarathonHealthCheck(
            protocol="TCP", port_index=0, interval_seconds=1, timeout_seconds=1,
            grace_period_seconds=0, max_consecutive_failures=1)])
    c.create_app("/client/sick", sick)
    wait("an unhealthy kill", lambda: "unhealthy_instance_kill_event" in full.types())
    check_deployment_result(c.delete_app("/client/sick", force=True), "delete_app sick")

    step("errors as Marathon's clients expect them")
    try:
        c.create_app("/client/bad", MarathonApp(cpus=0.1, mem=8))
        raise AssertionError("an app without cmd, args or container was accepted")
    except MarathonHttpError as error:
        check(error.status_code == 422, f"422 expected: {error}")

    step("deleting, leadership, unsubscribing")
    check_deployment_result(c.delete_app("/client/web", force=True), "delete_app web")
    check_deployment_result(c.delete_app("/client/worker"), "delete_app worker")
    settled(c)
    try:
        c.get_app("/client/web")
        raise AssertionError("deleted app still there")
    except NotFoundError:
        pass
    check(set(c.delete_leader()) == {"message"}, "delete_leader")
    check(set(c.get_leader()) == {"leader"}, "a leader again")

    try:
        wait("every expected event on the stream",
             lambda: EXPECTED_EVENTS <= full.types()
             and full.types() == bodies.types() - {"scheduler_registered_event"}, timeout=60)
    except AssertionError as error:
        raise AssertionError(f"{error}: parsed {sorted(full.types())} ({full.error!r}), "
                             f"sent {sorted(bodies.types())} ({bodies.error!r})") from None
    wait("the filtered stream", lambda: raw.types() == {"deployment_success",
                                                        "app_terminated_event"}, timeout=60)
    wait("the same events on the callback endpoint",
         lambda: EXPECTED_EVENTS - {"event_stream_attached"}
         <= {e["eventType"] for e in Callbacks.received}, timeout=60)
    unsubscribed = c.delete_event_subscription(callback_url)
    check(unsubscribed["eventType"] == "unsubscribe_event", f"{unsubscribed}")
    check(c.list_event_subscriptions() == [], "no subscriptions left")

    step("every event body has Marathon's fields")
    check(full.error is None and bodies.error is None and raw.error is None,
          f"stream errors: {full.error} {bodies.error} {raw.error}")
    for body in [json.loads(e) for e in bodies.events]:
        check_event(body, "/v2/events")
    for body in Callbacks.received:
        check_event(body, "callback")

    # Stride registered with Mesos before any stream here attached; its
    # /v2/events replays from a Last-Event-ID, which shows that event too.
    replay = requests.get(f"{url}/v2/events", stream=True, timeout=30,
                          headers={"Accept": "text/event-stream", "Last-Event-ID": "0"})
    for line in replay.iter_lines():
        if line.startswith(b"data:") and b"scheduler_registered_event" in line:
            registered = json.loads(line[5:])
            check_event(registered, "/v2/events replayed")
            check("/" not in registered["master"], f"the master's host name: {registered}")
            break
    else:
        raise AssertionError("no scheduler_registered_event in the replay")
    replay.close()

    missed = {name for name in dir(MarathonClient)
              if not name.startswith("_") and callable(getattr(MarathonClient, name))}
    missed -= c.called | set(OUT_OF_SCOPE)
    check(not missed, f"client methods never called: {sorted(missed)}")
    print(f"called {len(c.called)} client methods: {', '.join(sorted(c.called))}")
    print(f"/v2/events: {len(full.events)} events of {len(full.types())} types "
          f"({', '.join(sorted(full.types()))}); callbacks: {len(Callbacks.received)} events")
    print("marathon client: ok")


if __name__ == "__main__":
    main(sys.argv[1])
