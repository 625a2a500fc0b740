"""Catalog §5.13 (resgate 13query_event_test.go): query events and query requests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fakeservice import EMPTY, FakeService
from tests.support.fixtures import (
    E_DELETED,
    E_INTERNAL,
    E_NOTFOUND,
    MODELS,
    get_result,
)
from tests.support.gatewayrunner import GatewayHandle
from tests.support.logguard import ErrorLog
from tests.support.macros import connect, no_event, no_nats, subscribe, subscribe_q
from tests.support.wsclient import WSClient, assert_result

#: Quiet window of the NO_EVENT checks (catalog §7.1 item 8).
QUIET = 0.1
Q1 = "q=foo&f=bar"
Q2 = "q=foo&f=baz"
MODEL_CHANGE = {"values": {"string": "bar", "int": -12}}
ADD_BAR = {"idx": 1, "value": "bar"}


async def _query_event(svc: FakeService, name: str, subject: str = "_EVENT_01_") -> None:
    await svc.add_subject(subject)
    await svc.event(name, "query", {"subject": subject})


async def _setup(gw: GatewayHandle, svc: FakeService, name: str, *queries: tuple[str, str]) -> WSClient:
    """CONNECT; SUB_Q(name, q, nq) for each query; publish the query event (subject ``_EVENT_01_``)."""
    c = await connect(gw)
    for q, nq in queries:
        await subscribe_q(c, svc, name, q, nq)
    await _query_event(svc, name)
    return c


async def _query_request(svc: FakeService, nq: str, subject: str = "_EVENT_01_") -> Any:
    return (await svc.expect_request(subject)).assert_payload({"query": nq})


async def _query_requests(svc: FakeService, *nqs: str) -> dict[str, Any]:
    """The query requests (any order) for the normalized queries ``nqs``, by query."""
    reqs = await svc.requests(len(nqs))
    out = {}
    for req in reqs:
        req.assert_subject("_EVENT_01_")
        out[req.path("query")] = req
        assert set(req.data) == {"query"}, f"unexpected query request payload {req.data!r}"
    assert sorted(out) == sorted(nqs), f"query requests for {sorted(out)}, expected {sorted(nqs)}"
    return out


def _events(evs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {"events": [{"event": e, "data": d} for e, d in evs]}


# Test that a query event sends a query request with the normalized query.
async def test_qev_01_model_query_event(gateway: GatewayHandle, service: FakeService) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).ok({"events": []})
    await no_event(c, service, window=QUIET)


# Test that a query response without events produces no event and no error.
async def test_qev_02_model_query_event_with_omitted_events_to_query_request(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).ok({})
    await no_event(c, service, window=QUIET)


# Test that a query event sends one query request per query resource.
async def test_qev_03_model_query_event_on_multiple_queries(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1), (Q2, Q2))
    reqs = await _query_requests(service, Q1, Q2)
    for req in reqs.values():
        await req.ok({})
    await no_event(c, service, window=QUIET)


# Test that two queries with the same normalized query share one query request.
async def test_qev_04_model_query_event_on_same_normalized_query_results_in_single_query_request(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(
        gateway, service, "test.model", (Q1, "f=bar&q=foo"), ("f=bar&q=foo&fake=1", "f=bar&q=foo")
    )
    await (await _query_request(service, "f=bar&q=foo")).ok({})
    await no_event(c, service, window=QUIET)
    await no_nats(c, service)


# Test that a change event in the query response is sent to the client under its rid.
async def test_qev_05_model_query_event_resulting_in_change_event(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).ok(_events([("change", MODEL_CHANGE)]))
    await c.expect_event(f"test.model?{Q1}.change", MODEL_CHANGE)


# Test that each client rid aliasing one normalized query gets its own change event.
async def test_qev_06_different_model_queries_with_same_normalized_query_each_gets_client_change_events(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(
        gateway, service, "test.model", (Q1, "f=bar&q=foo"), ("f=bar&q=foo&fake=1", "f=bar&q=foo")
    )
    await (await _query_request(service, "f=bar&q=foo")).ok(_events([("change", MODEL_CHANGE)]))
    evs = await c.get_events(2)
    assert sorted(ev.name for ev in evs) == sorted(
        [f"test.model?{Q1}.change", "test.model?f=bar&q=foo&fake=1.change"]
    ), evs
    for ev in evs:
        assert ev.data == MODEL_CHANGE, ev
    await no_nats(c, service)


# Test that the query response updates the cached query resource.
async def test_qev_07_model_query_event_response_updates_the_cache(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).ok(_events([("change", MODEL_CHANGE)]))
    await c.expect_event(f"test.model?{Q1}.change", MODEL_CHANGE)
    c2 = await connect(gateway)
    pending = await c2.send(f"subscribe.test.model?{Q1}")
    await (await service.expect_request("access.test.model")).ok({"get": True})
    assert_result(
        await pending.response(),
        {"models": {f"test.model?{Q1}": {"string": "bar", "int": -12, "bool": True, "null": None}}},
    )


# Test that each query request's change events go to the matching query subscription.
async def test_qev_08_model_query_change_event_on_multiple_queries(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1), (Q2, Q2))
    reqs = await _query_requests(service, Q1, Q2)
    await reqs[Q1].ok(_events([("change", {"values": {"string": "barbar"}})]))
    await reqs[Q2].ok(_events([("change", {"values": {"string": "barbaz"}})]))
    evs = {ev.name: ev.data for ev in await c.get_events(2)}
    assert evs == {
        f"test.model?{Q1}.change": {"values": {"string": "barbar"}},
        f"test.model?{Q2}.change": {"values": {"string": "barbaz"}},
    }, evs


# Test that a query event for a resource without query subscriptions sends no query request.
async def test_qev_09_model_query_change_event_on_non_query_subscription(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe(c, service, "test.model")
    await _query_event(service, "test.model")
    await no_nats(c, service)


QEV_10_ROWS: list[Any] = [
    EMPTY,
    {},
    b'{"subject":BROKEN}',
    {"subject": 42},
    {"subject": ""},
]


# Test that an invalid query event payload logs an error and sends no request.
@pytest.mark.parametrize("payload", QEV_10_ROWS, ids=[f"QEV-10.{i:02d}" for i in range(1, 6)])
async def test_qev_10_invalid_model_query_event(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog, payload: Any
) -> None:
    c = await connect(gateway)
    await subscribe_q(c, service, "test.model", Q1, Q1)
    await service.event("test.model", "query", payload)
    await no_nats(c, service)
    await errors.expect(1)


# Test that a collection query event sends a query request with the normalized query.
async def test_qev_11_collection_query_event(gateway: GatewayHandle, service: FakeService) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).ok({"events": []})
    await no_event(c, service, window=QUIET)


# Test that a collection query response without events produces no event and no error.
async def test_qev_12_collection_query_event_with_omitted_events_to_query_request(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).ok({})
    await no_event(c, service, window=QUIET)


# Test that a collection query event sends one query request per query resource.
async def test_qev_13_collection_query_event_on_multiple_queries(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1), (Q2, Q2))
    for req in (await _query_requests(service, Q1, Q2)).values():
        await req.ok({})
    await no_event(c, service, window=QUIET)


# Test that two collection queries with the same normalized query share one query request.
async def test_qev_14_collection_query_event_on_same_normalized_query_results_in_single_query_request(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(
        gateway, service, "test.collection", (Q1, "f=bar&q=foo"), ("f=bar&q=foo&fake=1", "f=bar&q=foo")
    )
    await (await _query_request(service, "f=bar&q=foo")).ok({})
    await no_event(c, service, window=QUIET)
    await no_nats(c, service)


# Test that add and remove events in the query response are sent in order.
async def test_qev_15_collection_query_event_resulting_in_add_remove_event(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).ok(_events([("add", ADD_BAR), ("remove", {"idx": 4})]))
    await c.expect_event(f"test.collection?{Q1}.add", ADD_BAR)
    await c.expect_event(f"test.collection?{Q1}.remove", {"idx": 4})


# Test that each client rid aliasing one normalized collection query gets its own add event.
async def test_qev_16_different_collection_queries_with_same_normalized_query_each_gets_client_change_events(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(
        gateway, service, "test.collection", (Q1, "f=bar&q=foo"), ("f=bar&q=foo&fake=1", "f=bar&q=foo")
    )
    await (await _query_request(service, "f=bar&q=foo")).ok(_events([("add", ADD_BAR)]))
    evs = await c.get_events(2)
    assert sorted(ev.name for ev in evs) == sorted(
        [f"test.collection?{Q1}.add", "test.collection?f=bar&q=foo&fake=1.add"]
    ), evs
    for ev in evs:
        assert ev.data == ADD_BAR, ev
    await no_nats(c, service)


# Test that the query response updates the cached query collection.
async def test_qev_17_collection_query_event_response_updates_the_cache(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).ok(_events([("add", ADD_BAR), ("remove", {"idx": 4})]))
    await c.get_events(2)
    c2 = await connect(gateway)
    pending = await c2.send(f"subscribe.test.collection?{Q1}")
    await (await service.expect_request("access.test.collection")).ok({"get": True})
    assert_result(
        await pending.response(), {"collections": {f"test.collection?{Q1}": ["foo", "bar", 42, True]}}
    )


# Test that each collection query request's add events go to the matching query subscription.
async def test_qev_18_collection_query_change_event_on_multiple_queries(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1), (Q2, Q2))
    reqs = await _query_requests(service, Q1, Q2)
    await reqs[Q1].ok(_events([("add", ADD_BAR)]))
    await reqs[Q2].ok(_events([("add", {"idx": 1, "value": "baz"})]))
    evs = {ev.name: ev.data for ev in await c.get_events(2)}
    assert evs == {
        f"test.collection?{Q1}.add": ADD_BAR,
        f"test.collection?{Q2}.add": {"idx": 1, "value": "baz"},
    }, evs


# Test that other events on the resource are held until the query response is handled.
async def test_qev_19_query_event_queues_other_events_until_handled(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe(c, service, "test.model")
    await subscribe_q(c, service, "test.model", Q1, Q1)
    await _query_event(service, "test.model")
    await service.event("test.model", "change", MODEL_CHANGE)
    req = await _query_request(service, Q1)
    await req.ok(_events([("change", {"values": {"string": "baz", "int": -13}})]))
    await c.expect_event(f"test.model?{Q1}.change", {"values": {"string": "baz", "int": -13}})
    await c.expect_event("test.model.change", MODEL_CHANGE)


# Test that other events are held until all query responses are handled (no deadlock).
async def test_qev_20_query_event_with_multiple_query_requests_queues_other_events_until_handled(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    await subscribe(c, service, "test.model")
    await subscribe_q(c, service, "test.model", Q1, Q1)
    await subscribe_q(c, service, "test.model", Q2, Q2)
    await _query_event(service, "test.model")
    await service.event("test.model", "change", MODEL_CHANGE)
    reqs = await _query_requests(service, Q1, Q2)
    await reqs[Q1].ok(_events([("change", {"values": {"string": "barbar"}})]))
    await reqs[Q2].ok(_events([("change", {"values": {"string": "barbaz"}})]))
    evs = await c.get_events(3)
    assert {ev.name: ev.data for ev in evs[:2]} == {
        f"test.model?{Q1}.change": {"values": {"string": "barbar"}},
        f"test.model?{Q2}.change": {"values": {"string": "barbaz"}},
    }, evs
    assert (evs[2].name, evs[2].data) == ("test.model.change", MODEL_CHANGE), evs


# Test that a query event arriving before the get response sends no query request.
async def test_qev_21_query_event_discarded_when_preceding_get_response(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await connect(gateway)
    pending = await c.send("subscribe.test.model?foo=bar")
    reqs = await service.requests(2)
    await _query_event(service, "test.model")
    await reqs.get("get.test.model").ok({**get_result("test.model"), "query": "foo=baz"})
    await reqs.get("access.test.model").ok({"get": True})
    assert_result(await pending.response(), {"models": {"test.model?foo=bar": MODELS["test.model"]}})
    await no_event(c, service, window=QUIET)


# Test that a model in the query response is diffed into one change event.
async def test_qev_22_query_event_model_response_causes_change_event(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).ok({"model": {"string": "bar", "int": -12, "bool": True}})
    await c.expect_event(
        f"test.model?{Q1}.change", {"values": {"string": "bar", "int": -12, "null": {"action": "delete"}}}
    )


# Test that a collection in the query response is diffed into remove/add events.
async def test_qev_23_query_event_collection_response_causes_add_remove_events(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).ok({"collection": ["foo", "bar", 42, True]})
    await c.expect_event(f"test.collection?{Q1}.remove", {"idx": 3})
    await c.expect_event(f"test.collection?{Q1}.add", ADD_BAR)


# Test that a collection response to a model query logs an error.
async def test_qev_24_query_event_collection_response_on_model_causes_error_log(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).ok({"collection": ["foo", "bar", 42, True]})
    await no_event(c, service, window=QUIET)
    await errors.expect(1)


# Test that a model response to a collection query logs an error.
async def test_qev_25_query_event_model_response_on_collection_causes_error_log(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).ok({"model": {"string": "bar", "int": -12, "bool": True}})
    await no_event(c, service, window=QUIET)
    await errors.expect(1)


QEV_26_ROWS: list[Any] = [
    {"events": "foo"},
    {"model": []},
    {"collection": []},
    {"model": {}, "events": []},
    {"model": {"string": "bar"}, "events": []},
    {"model": {}, "events": [{"event": "change", "data": MODEL_CHANGE}]},
    {"model": {"string": "bar"}, "events": [{"event": "change", "data": MODEL_CHANGE}]},
]


# Test that an invalid query response on a model logs an error and sends no event.
@pytest.mark.parametrize("result", QEV_26_ROWS, ids=[f"QEV-26.{i:02d}" for i in range(1, 8)])
async def test_qev_26_query_event_invalid_response_on_model_resource_causes_error_log(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog, result: Any
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).ok(result)
    await no_event(c, service, window=QUIET)
    await errors.expect(1)


QEV_27_ROWS: list[Any] = [
    {"events": "foo"},
    {"collection": {}},
    {"model": {}},
    {"collection": [], "events": []},
    {"collection": ["foo", "bar"], "events": []},
    {"collection": [], "events": [{"event": "add", "data": ADD_BAR}]},
    {"collection": ["foo", "bar"], "events": [{"event": "add", "data": ADD_BAR}]},
]


# Test that an invalid query response on a collection logs an error and sends no event.
@pytest.mark.parametrize("result", QEV_27_ROWS, ids=[f"QEV-27.{i:02d}" for i in range(1, 8)])
async def test_qev_27_query_event_invalid_response_on_collection_resource_causes_error_log(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog, result: Any
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).ok(result)
    await no_event(c, service, window=QUIET)
    await errors.expect(1)


async def _assert_deleted_then_no_query_request(c: WSClient, svc: FakeService, name: str) -> None:
    ev = await c.expect_event(f"{name}?{Q1}.delete")
    assert ev.data is None, f"delete event carries data {ev.data!r}"
    # resgate also sends the unsubscribe event (not asserted by this row, see chk 148).
    await _query_event(svc, name, "_EVENT_02_")
    await no_nats(c, svc)
    left = [e for e in c.pending_events() if e.name != f"{name}?{Q1}.unsubscribe"]
    assert not left, f"unexpected events {left!r}"


# Test that a notFound query response on a model deletes the query resource.
async def test_qev_28_query_event_not_found_response_on_model_generates_delete_event(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).error(E_NOTFOUND)
    await _assert_deleted_then_no_query_request(c, service, "test.model")


# Test that a notFound query response on a collection deletes the query resource.
async def test_qev_29_query_event_not_found_response_on_collection_generates_delete_event(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).error(E_NOTFOUND)
    await _assert_deleted_then_no_query_request(c, service, "test.collection")


async def _assert_internal_error_logged_and_still_queried(
    c: WSClient, svc: FakeService, errors: ErrorLog, name: str
) -> None:
    await (await _query_request(svc, Q1)).error(E_INTERNAL)
    await no_event(c, svc, window=QUIET)
    await errors.expect(1)
    await _query_event(svc, name, "_EVENT_02_")
    await (await _query_request(svc, Q1, "_EVENT_02_")).ok({"events": []})
    await no_event(c, svc, window=QUIET)


# Test that an internal error query response on a model is logged and the resource stays queryable.
async def test_qev_30_query_event_internal_error_response_on_model_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await _assert_internal_error_logged_and_still_queried(c, service, errors, "test.model")


# Test that an internal error query response on a collection is logged and the resource stays queryable.
async def test_qev_31_query_event_internal_error_response_on_collection_logs_error(
    gateway: GatewayHandle, service: FakeService, errors: ErrorLog
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await _assert_internal_error_logged_and_still_queried(c, service, errors, "test.collection")


async def _assert_delete_event_handling(c: WSClient, svc: FakeService, name: str) -> None:
    ev = await c.expect_event(f"{name}?{Q1}.delete")
    assert ev.data is None, f"delete event carries data {ev.data!r}"
    await c.expect_event(f"{name}?{Q1}.unsubscribe", {"reason": E_DELETED})
    await no_event(c, svc, window=QUIET)
    await _query_event(svc, name, "_EVENT_02_")
    await no_nats(c, svc)


# Test that a delete in the query response events deletes the model and drops the remaining events.
async def test_qev_32_query_event_delete_event_on_model_deletes_from_cache(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.model", (Q1, Q1))
    await (await _query_request(service, Q1)).ok(
        {"events": [{"event": "delete"}, {"event": "change", "data": MODEL_CHANGE}]}
    )
    await _assert_delete_event_handling(c, service, "test.model")


# Test that a delete in the query response events deletes the collection and drops the remaining events.
async def test_qev_33_query_event_delete_event_on_collection_deletes_from_cache(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c = await _setup(gateway, service, "test.collection", (Q1, Q1))
    await (await _query_request(service, Q1)).ok(
        {"events": [{"event": "delete"}, {"event": "add", "data": ADD_BAR}]}
    )
    await _assert_delete_event_handling(c, service, "test.collection")


# Test that two clients with different queries cause two query requests.
async def test_qev_34_query_event_multiple_clients_with_different_queries_sends_multiple_query_request(
    gateway: GatewayHandle, service: FakeService
) -> None:
    c1 = await connect(gateway)
    await subscribe_q(c1, service, "test.collection", Q1, Q1)
    c2 = await connect(gateway)
    await subscribe_q(c2, service, "test.collection", "q=zoo&f=baz", "q=zoo&f=baz")
    await _query_event(service, "test.collection")
    for req in (await _query_requests(service, Q1, "q=zoo&f=baz")).values():
        await req.ok({"events": []})
    await no_event(c1, service, window=QUIET)
    await no_event(c2, service, window=QUIET)
