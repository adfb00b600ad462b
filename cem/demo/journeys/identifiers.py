"""What each channel knows about the customer: the identifiers its events carry."""

from __future__ import annotations

from random import Random

from cem.demo.journeys.sim import Ids
from cem.demo.people import Customer


def phone_ids(rng: Random, c: Customer) -> Ids:
    ids: Ids = {"phone": c.phone}
    if c.crm_id and rng.random() < 0.6:  # the IVR matched the caller to a CRM record
        ids["external_ids"] = {"crm": c.crm_id}
    return ids


def web_ids(rng: Random, c: Customer, logged_in: bool) -> Ids:
    ids: Ids = {"anonymous_id": rng.choice(c.web_ids)}
    if logged_in and c.customer_id:
        ids["customer_id"] = c.customer_id
        if c.email and rng.random() < 0.5:
            ids["email"] = c.email
    return ids


def app_ids(c: Customer, logged_in: bool) -> Ids:
    ids: Ids = {"anonymous_id": c.app_id}
    if logged_in and c.customer_id:
        ids["customer_id"] = c.customer_id
    return ids


def chat_ids(rng: Random, c: Customer) -> Ids:
    ids = web_ids(rng, c, rng.random() < 0.25)
    if c.email and "email" not in ids and rng.random() < 0.6:
        # Typed into the pre-chat form, as people type: sometimes capitalised.
        typed = c.email if rng.random() > 0.1 else c.email[0].upper() + c.email[1:]
        ids["email"] = typed
    return ids


def email_ids(rng: Random, c: Customer) -> Ids:
    ids: Ids = {"email": c.email}
    if c.crm_id and rng.random() < 0.5:
        ids["external_ids"] = {"crm": c.crm_id}
    return ids


def store_ids(c: Customer) -> Ids:
    if c.loyalty_id:
        return {"external_ids": {"loyalty": c.loyalty_id}}
    return {"email": c.email} if c.email else {"phone": c.phone}  # asked for the e-receipt


def crm_ids(c: Customer) -> Ids:
    ids: Ids = {"email": c.email} if c.email else {"phone": c.phone}
    if c.crm_id:
        ids["external_ids"] = {"crm": c.crm_id}
    return ids


def order_ids(c: Customer, ids: Ids) -> Ids:
    ids = dict(ids)
    if c.email:
        ids["email"] = c.email  # checkout and returns always ask for an email
    elif c.phone:
        ids["phone"] = c.phone
    return ids


def shipping_label_ids(c: Customer) -> Ids:
    """The carrier knows what the shipping label says."""
    label = {"customer_id": c.customer_id, "email": c.email, "phone": c.phone}
    return {k: v for k, v in label.items() if v}
