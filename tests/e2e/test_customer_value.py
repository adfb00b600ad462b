"""Customer value and churn risk in the profile over real HTTP, on every deployment kind: orders in
two currencies, a return, a falling NPS and an abandoned, transferred call, as an agent reads them."""

from __future__ import annotations

from typing import Any

from tests.e2e.deployments import Api, Deployment, new_tag, survey
from tests.e2e.test_acceptance import PROCESSED_WITHIN_S, hours_ago, keys
from tests.events import event


def test_the_profile_shows_value_and_why_the_customer_is_at_risk(
    deployment: Deployment, api: Api
) -> None:
    ingest, agent, _ = keys(deployment)
    tag = new_tag()
    customer: dict[str, Any] = {"email": f"val.{tag}@shop.es"}

    def order(hours: float, amount: str, currency: str, product: str) -> dict[str, Any]:
        payload = {"order_id": f"o-{tag}-{hours}", "amount": amount, "currency": currency,
                   "attributes": {"product": product}}  # fmt: skip
        return event("order.placed", "web", customer, hours_ago(hours), payload,
                     touchpoint=f"shop-{tag}")  # fmt: skip

    returned = {"order_id": f"o-{tag}-30", "amount": "10.00", "currency": "EUR"}
    call = {"queue_wait_s": 600, "abandoned": True}
    sent = [
        order(30, "40.00", "EUR", "shoes"),
        order(20, "15.50", "EUR", "shoes"),
        order(10, "12.00", "USD", "socks"),
        event("order.returned", "web", customer, hours_ago(9), returned, touchpoint=f"shop-{tag}"),
        survey(customer, "nps", 9, hours_ago(8), f"shop-{tag}"),
        event("call.transferred", "phone", customer, hours_ago(5), {}, touchpoint=f"line-{tag}",
              correlation_id=f"call-{tag}"),
        event("call.ended", "phone", customer, hours_ago(5), call, touchpoint=f"line-{tag}",
              correlation_id=f"call-{tag}"),
        survey(customer, "nps", 2, hours_ago(4), f"line-{tag}", f"call-{tag}"),
    ]  # fmt: skip
    api.post_ok(ingest, sent)
    deployment.wait_processed(PROCESSED_WITHIN_S)

    customer_id = api.customer_of(agent, email=customer["email"])  # ids are opaque
    response = api.profile(agent, customer_id)
    assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert value["definition"] == "value@1"
    assert (value["frequency"], value["recency_days"], value["tenure_days"]) == (3, 0, 1)
    by_currency = {s["currency"]: s["net_amount"] for s in value["monetary"]}
    assert by_currency == {"EUR": "45.50", "USD": "12.00"}
    assert value["products"] == [
        {"product": "shoes", "orders": 2},
        {"product": "socks", "orders": 1},
    ]
    assert value["preferred_channel"] == "web"
    assert value["nps_trend"] == {"latest": 2, "previous": 9, "change": -7}
    risk = value["churn_risk"]
    points = {f["factor"]: f["points"] for f in risk["factors"]}
    # nps_detractor 15 + nps_falling 10 + long_wait 5 + abandoned_call 10 + transfers 5 = 45
    assert points == {"nps_detractor": 15, "nps_falling": 10, "long_wait": 5,
                      "abandoned_call": 10, "transfers": 5}  # fmt: skip
    assert (risk["definition"], risk["score"], risk["band"]) == ("churn_risk@1", 45, "medium")
