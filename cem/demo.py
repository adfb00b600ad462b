"""Seeded demo traffic: a realistic customer population, months of its history, a live stream.

Pure and reproducible: every random choice comes from the `random.Random` passed in and every
time from the `now` given, so one seed always yields the same events. Events are dicts in the
producer format that `schemas.validate.accept` takes (EventIn JSON), carrying only the identifiers
each channel really knows: the phone system a number, the web SDK a cookie, the till a loyalty card.
"""

from __future__ import annotations

import heapq
import math
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from random import Random
from typing import Any

Event = dict[str, Any]
SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- reference data --------------------------------------------------------------------------
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_ES_FIRST = _words(
    "María José Lucía Javier Carmen Alejandro Sofía Pablo Marta David Laura Daniel Ana Sergio "
    "Elena Carlos Paula Manuel Isabel Antonio Nuria Álvaro Irene Raúl Cristina Jorge Beatriz "
    "Adrián Rocío Iván Begoña Íñigo Montserrat Jordi Ainhoa Xabier"
)
_ES_LAST = _words(
    "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez "
    "Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres "
    "Domínguez Vázquez Ramos Gil Serrano Blanco Molina Castro Ortega Iglesias Núñez Peña"
)
_EN_FIRST = _words(
    "Emma Oliver Olivia James Sophie Harry Amelia Jack Emily Thomas Grace William Chloe "
    "George Lucy Michael Hannah Ethan Megan Liam Charlotte Noah Ava Samuel"
)
_EN_LAST = _words(
    "Smith Johnson Brown Taylor Wilson Davies Evans Walker Wright Robinson Thompson Hughes "
    "Clarke Miller Davis Anderson Campbell Murphy O'Brien Kelly Scott Baker"
)
# country: (share, currency, share speaking Spanish, email domains)
_COUNTRIES: dict[str, tuple[float, str, float, tuple[str, ...]]] = {
    "ES": (0.68, "EUR", 0.9, _words("gmail.com gmail.com hotmail.com hotmail.es yahoo.es "
                                    "outlook.es telefonica.net icloud.com")),
    "MX": (0.08, "USD", 1.0, _words("gmail.com hotmail.com outlook.com prodigy.net.mx")),
    "GB": (0.08, "EUR", 0.05, _words("gmail.com outlook.com yahoo.co.uk btinternet.com")),
    "US": (0.07, "USD", 0.2, _words("gmail.com yahoo.com outlook.com icloud.com")),
    "PT": (0.05, "EUR", 0.3, _words("gmail.com sapo.pt hotmail.com")),
    "FR": (0.04, "EUR", 0.3, _words("gmail.com orange.fr free.fr")),
}  # fmt: skip
# store_id: (currency, country)
_STORES: dict[str, tuple[str, str]] = {
    "mad-gran-via": ("EUR", "ES"), "mad-castellana": ("EUR", "ES"), "bcn-diagonal": ("EUR", "ES"),
    "bcn-passeig-gracia": ("EUR", "ES"), "vlc-colon": ("EUR", "ES"), "sev-sierpes": ("EUR", "ES"),
    "bio-moyua": ("EUR", "ES"), "mlg-larios": ("EUR", "ES"), "lis-chiado": ("EUR", "PT"),
    "mia-brickell": ("USD", "US"),
}  # fmt: skip
# persona: (share, journey-kind weights in the order of _KINDS)
_KINDS = ("web", "app", "call", "chat", "sms", "social", "store", "email")
_PERSONAS: dict[str, tuple[float, tuple[int, ...]]] = {
    "digital": (0.35, (36, 30, 5, 9, 3, 8, 5, 4)),
    "phone_first": (0.25, (20, 4, 38, 4, 10, 1, 16, 7)),
    "store_first": (0.2, (18, 6, 14, 3, 4, 3, 48, 4)),
    "omnichannel": (0.2, (24, 18, 14, 8, 6, 6, 18, 6)),
}
# segment: (share, journeys per day, typical item price, web conversion, marketing-email open rate)
_SEGMENTS: dict[str, tuple[float, float, float, float, float]] = {
    "vip": (0.05, 0.22, 70.0, 0.3, 0.55),
    "loyal": (0.2, 0.12, 48.0, 0.18, 0.45),
    "regular": (0.45, 0.06, 36.0, 0.1, 0.3),
    "occasional": (0.3, 0.025, 30.0, 0.05, 0.18),
}
_TOPICS = _words(
    "delivery_status billing return_request technical_issue account_access product_info "
    "cancellation"
)
_TOPIC_CUM = tuple(accumulate((30, 18, 14, 12, 10, 10, 6)))
_QUEUE_OF = dict(
    zip(_TOPICS, _words("orders billing orders technical technical sales retention"), strict=True)
)
_QUEUES = ("orders", "billing", "technical", "sales", "retention")
# Where satisfaction starts before the agent and the outcome move it (0 = furious, 1 = delighted).
TOUCHPOINT_BASELINE: dict[str, float] = {
    "checkout": 0.86, "store_visit": 0.82, "mobile_app": 0.78, "website": 0.76,
    "chat_support": 0.75, "onboarding_email": 0.72, "sms_support": 0.7, "returns": 0.68,
    "email_support": 0.66, "support_line": 0.66, "social_care": 0.6, "delivery": 0.5,
}  # fmt: skip
# touchpoint: (survey kinds, cumulative weights)
_SURVEY_KINDS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "support_line": (("csat", "nps", "ces"), (70, 90, 100)),
    "chat_support": (("csat", "ces"), (80, 100)),
    "checkout": (("csat", "nps"), (60, 100)),
    "store_visit": (("csat", "nps"), (70, 100)),
    "onboarding_email": (("ces",), (100,)),
    "returns": (("ces", "csat"), (60, 100)),
}
# Journeys per UTC hour (Spain is UTC+1/+2): quiet at night, busy late morning and evening.
_HOUR_CUM = tuple(accumulate(
    (1, 1, 1, 1, 1, 1, 3, 6, 9, 11, 12, 12, 11, 10, 10, 11, 12, 12, 12, 11, 9, 6, 3, 2)
))  # fmt: skip
# Which system emits each channel's events.
_SOURCES = {
    "web": "web_sdk", "mobile_app": "app_sdk", "email": "esp", "phone": "cti",
    "chat": "chat_widget", "sms": "sms_gateway", "social": "social_inbox", "store": "pos",
    "survey": "survey_tool", "other": "carrier",
}  # fmt: skip
_CARRIERS = ("SEUR", "Correos Express", "MRW", "UPS", "DHL")
_RETURN_REASONS = _words("wrong_size damaged not_as_described changed_mind late_delivery")
_ACTIONS = _words("search add_to_cart wishlist_add filter_applied size_guide_opened track_order")
_REFERRERS = ("https://www.google.com/", "https://www.instagram.com/", "https://t.co/", None)
_PAGES = (  # path, Spanish title, English title
    ("/", "Inicio", "Home"),
    ("/productos/zapatillas-running", "Zapatillas running", "Running shoes"),
    ("/productos/chaquetas", "Chaquetas", "Jackets"),
    ("/rebajas", "Rebajas", "Sale"),
    ("/buscar?q=abrigo", "Buscar", "Search"),
    ("/carrito", "Carrito", "Basket"),
    ("/ayuda/envios", "Ayuda: envíos", "Help: delivery"),
    ("/mi-cuenta/pedidos", "Mis pedidos", "My orders"),
)

# Every text a demo customer, bot or agent writes, in Spanish and English. A key may repeat: each
# entry is one alternative. `comment.<touchpoint>.<band>` adds touchpoint-specific survey comments.
_CATALOGUE = """
opener.delivery_status
  es: Hola, mi pedido todavía no ha llegado y el seguimiento no se mueve.
  en: Hi, my order still hasn't arrived and the tracking isn't moving.
opener.delivery_status
  es: ¿Me podéis decir cuándo llega mi paquete?
  en: Can you tell me when my parcel will arrive?
opener.billing
  es: Me habéis cobrado dos veces el mismo pedido.
  en: I've been charged twice for the same order.
opener.billing
  es: No encuentro la factura de mi última compra.
  en: I can't find the invoice for my last purchase.
opener.return_request
  es: Quiero devolver unas zapatillas, me quedan pequeñas.
  en: I'd like to return some trainers, they're too small.
opener.return_request
  es: ¿Cómo hago una devolución?
  en: How do I return an item?
opener.technical_issue
  es: La app se cierra cuando intento pagar.
  en: The app crashes when I try to pay.
opener.technical_issue
  es: La web me da un error al finalizar la compra.
  en: The website shows an error at checkout.
opener.account_access
  es: No puedo entrar en mi cuenta, no me llega el correo para cambiar la contraseña.
  en: I can't log in, the password reset email never arrives.
opener.product_info
  es: ¿Tenéis esta chaqueta en talla M?
  en: Do you have this jacket in size M?
opener.product_info
  es: ¿El abrigo es impermeable?
  en: Is the coat waterproof?
opener.cancellation
  es: Quiero darme de baja del programa de fidelización.
  en: I want to cancel my loyalty membership.
opener.cancellation
  es: Quiero cancelar mi pedido.
  en: I want to cancel my order.
bot.greeting
  es: Hola, soy Lía, la asistente virtual. ¿En qué puedo ayudarte?
  en: Hi, I'm Lia, the virtual assistant. How can I help?
bot.self_serve
  es: Puedes consultarlo en Mi cuenta > Pedidos. ¿Te ha servido?
  en: You can check it in My account > Orders. Did that help?
bot.handoff
  es: Te paso con una persona del equipo, un momento por favor.
  en: Let me connect you with someone from the team, one moment please.
customer.thanks
  es: ¡Perfecto, muchas gracias!
  en: Perfect, thank you so much!
customer.thanks
  es: Vale, gracias.
  en: OK, thanks.
customer.chase
  es: Sigue sin funcionar.
  en: It still doesn't work.
customer.chase
  es: ¿Cuánto más tengo que esperar?
  en: How much longer do I have to wait?
customer.chase
  es: El número de pedido es el que os he dado.
  en: The order number is the one I gave you.
agent.hello
  es: Hola, soy {}. Ahora mismo lo reviso.
  en: Hi, I'm {}. Let me check that for you.
agent.reply
  es: Siento mucho las molestias, ya lo he escalado.
  en: I'm very sorry for the trouble, I've escalated it.
agent.reply
  es: Te acabo de enviar un correo con los pasos.
  en: I've just emailed you the steps.
agent.solved
  es: Ya está solucionado. ¿Puedo ayudarte en algo más?
  en: That's sorted now. Anything else I can help with?
agent.escalated
  es: Lo paso al equipo especialista y te escribimos en cuanto sepamos algo.
  en: I'm passing this to the specialist team; we'll write as soon as we know more.
social.post
  es: @tiendademo tres semanas esperando un reembolso. Vergonzoso.
  en: @demoshop three weeks waiting for a refund. Shameful.
social.post
  es: Me encanta mi pedido, ¡llegó en un día! 😍
  en: Love my order, it arrived in one day! 😍
social.post
  es: ¿Alguien más tiene problemas con la app hoy?
  en: Anyone else having trouble with the app today?
social.reply
  es: Hola, lo sentimos. Escríbenos por privado con tu número de pedido y lo miramos.
  en: Hi, sorry to hear that. DM us your order number and we'll look into it.
sms.auto_reply
  es: Hemos recibido tu mensaje, te respondemos en breve.
  en: We've got your message and will reply shortly.
sms.notice
  es: Tu pedido {} llega hoy entre las 10:00 y las 14:00. Responde si necesitas cambiarlo.
  en: Your order {} arrives today between 10:00 and 14:00. Reply to change the delivery.
sms.ask
  es: ¿Lo pueden dejar en conserjería?
  en: Can you leave it with the concierge?
sms.answer
  es: Claro, lo dejamos en conserjería.
  en: Of course, we'll leave it with the concierge.
email.support_reply
  es: Gracias, pero sigo sin recibir el reembolso.
  en: Thanks, but I still haven't received the refund.
email.support_reply
  es: Perfecto, problema resuelto.
  en: Great, problem solved.
email.campaign_reply
  es: Por favor, dejad de enviarme correos.
  en: Please stop emailing me.
email.campaign_reply
  es: ¿La oferta vale también en tienda?
  en: Is the offer valid in store too?
subject.newsletter
  es: Novedades de la semana
  en: This week's new arrivals
subject.promo
  es: Rebajas: hasta un 40 % de descuento
  en: Sale: up to 40% off
subject.onboarding-welcome
  es: Te damos la bienvenida a Tienda Demo
  en: Welcome to Demo Shop
subject.onboarding-tips
  es: 3 trucos para sacar partido a tu cuenta
  en: 3 tips to get the most from your account
case.resolution
  es: Reembolso emitido.
  en: Refund issued.
case.resolution
  es: Producto de sustitución enviado.
  en: Replacement sent.
case.resolution
  es: Incidencia técnica corregida.
  en: Technical issue fixed.
case.resolution
  es: Información facilitada al cliente.
  en: Information given to the customer.
comment.neg
  es: Esperé muchísimo y al final no me lo solucionaron.
  en: I waited ages and it still wasn't fixed.
comment.neg
  es: Me pasaron de un agente a otro y tuve que repetirlo todo.
  en: I was passed from one agent to another and had to repeat everything.
comment.neg
  es: Muy mala experiencia, me estoy planteando irme a la competencia.
  en: Terrible experience, I'm thinking of switching to a competitor.
comment.neg
  es: Nadie me da una respuesta clara.
  en: Nobody gives me a straight answer.
comment.mid
  es: Bien, aunque tardaron un poco.
  en: Fine, although it took a while.
comment.mid
  es: Correcto, sin más.
  en: OK, nothing special.
comment.mid
  es: Me ayudaron, pero el proceso es lento.
  en: They helped, but the process is slow.
comment.pos
  es: Muy amable y rápida, ¡gracias!
  en: Very kind and quick, thank you!
comment.pos
  es: Todo perfecto, lo recomiendo.
  en: Everything was perfect, I'd recommend it.
comment.pos
  es: Me resolvieron el problema a la primera.
  en: They solved my problem first time.
comment.delivery.neg
  es: El paquete llegó tarde y la caja estaba rota.
  en: The parcel arrived late and the box was damaged.
comment.delivery.neg
  es: El repartidor ni siquiera llamó al timbre.
  en: The courier didn't even ring the bell.
comment.delivery.pos
  es: Llegó antes de lo previsto.
  en: It arrived earlier than expected.
comment.checkout.pos
  es: El pago fue rapidísimo.
  en: Paying was really quick.
comment.checkout.neg
  es: El código de descuento no funcionaba.
  en: The discount code didn't work.
comment.store_visit.pos
  es: El dependiente me atendió genial.
  en: The shop assistant was great.
comment.store_visit.neg
  es: Mucha cola en caja.
  en: Long queue at the till.
comment.support_line.neg
  es: Cuarenta minutos de espera al teléfono.
  en: Forty minutes waiting on the phone.
comment.returns.neg
  es: Todavía no me han devuelto el dinero.
  en: I still haven't got my money back.
"""


def _parse_catalogue(text: str) -> dict[str, tuple[tuple[str, str], ...]]:
    entries: dict[str, list[tuple[str, str]]] = {}
    lines = [line.strip() for line in text.strip().splitlines()]
    for key, es, en in zip(lines[::3], lines[1::3], lines[2::3], strict=True):
        if not (es.startswith("es: ") and en.startswith("en: ")):
            raise ValueError(f"catalogue entry {key!r} needs an 'es:' and an 'en:' line")
        entries.setdefault(key, []).append((es[4:], en[4:]))
    return {key: tuple(pairs) for key, pairs in entries.items()}


_TEXTS = _parse_catalogue(_CATALOGUE)


# --- the population ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Customer:
    """One demo customer and every identifier some channel may know them by."""

    index: int
    name: str
    language: str  # "es" or "en": the language of their messages and comments
    country: str
    email: str | None
    phone: str | None  # E.164
    customer_id: str | None  # online account; None for customers who never made one
    web_ids: tuple[str, ...]  # anonymous cookie ids, one per browser
    app_id: str | None  # anonymous id of the app install
    crm_id: str | None
    loyalty_id: str | None
    social: tuple[str, str] | None  # (network, handle)
    persona: str
    segment: str  # value segment: vip, loyal, regular, occasional
    currency: str
    home_store: str
    marketing_opt_in: bool
    joined_days_ago: float
    journey_cum: tuple[float, ...] = field(repr=False)  # over _KINDS: the channel mix

    @property
    def external_ids(self) -> dict[str, str]:
        ids = {"crm": self.crm_id, "loyalty": self.loyalty_id}
        if self.social:
            ids[self.social[0]] = self.social[1]
        return {k: v for k, v in ids.items() if v}

    @property
    def channel_mix(self) -> dict[str, float]:
        """The share of this customer's journeys that start on each kind of contact."""
        total = self.journey_cum[-1]
        shares = [b - a for a, b in zip((0.0, *self.journey_cum), self.journey_cum, strict=False)]
        return {k: s / total for k, s in zip(_KINDS, shares, strict=True)}


@dataclass(frozen=True, slots=True)
class Agent:
    """A contact-centre agent. `skill` moves resolution and satisfaction (±0.2 around 0)."""

    login: str
    name: str
    queues: tuple[str, ...]
    skill: float


@dataclass(frozen=True)
class Population:
    """The demo's customers, the contact-centre agents who serve them and the stores."""

    customers: tuple[Customer, ...]
    agents: tuple[Agent, ...]
    stores: tuple[str, ...]
    activity_cum: tuple[float, ...] = field(repr=False)
    agents_by_queue: Mapping[str, tuple[Agent, ...]] = field(repr=False)

    @classmethod
    def generate(cls, rng: Random, customers: int) -> Population:
        if customers < 1:
            raise ValueError("a population needs at least one customer")
        made = _Maker(rng)
        people = tuple(made.customer(i) for i in range(customers))
        agents = made.agents(max(8, min(80, customers // 100)))
        by_queue = {q: tuple(a for a in agents if q in a.queues) for q in _QUEUES}
        activity = accumulate(_SEGMENTS[c.segment][1] for c in people)
        return cls(people, agents, tuple(_STORES), tuple(activity), by_queue)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _cum(weights: Sequence[float]) -> tuple[float, ...]:
    return tuple(accumulate(weights))


class _Maker:
    """Draws customers and agents, keeping every identifier unique."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.used: set[str] = set()
        self.countries = tuple(_COUNTRIES)
        self.country_cum = _cum([v[0] for v in _COUNTRIES.values()])
        self.personas = tuple(_PERSONAS)
        self.persona_cum = _cum([v[0] for v in _PERSONAS.values()])
        self.segments = tuple(_SEGMENTS)
        self.segment_cum = _cum([v[0] for v in _SEGMENTS.values()])

    def unique(self, make: Callable[[], str]) -> str:
        value = make()
        while value in self.used:
            value = make()
        self.used.add(value)
        return value

    def hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def digits(self, n: int) -> str:
        return str(self.rng.randrange(10**n)).zfill(n)

    def customer(self, index: int) -> Customer:
        r = self.rng
        country = r.choices(self.countries, cum_weights=self.country_cum)[0]
        _, currency, spanish, domains = _COUNTRIES[country]
        language = "es" if r.random() < spanish else "en"
        first, last = self.name(language)
        persona = r.choices(self.personas, cum_weights=self.persona_cum)[0]
        has_phone, has_email = r.random() < 0.92, r.random() < 0.9
        if not (has_phone or has_email):
            has_email = True  # a customer nobody can reach is not a customer of any channel
        loyal = r.random() < (0.9 if persona == "store_first" else 0.4)
        social = None
        if r.random() < 0.3:
            network = r.choice(("instagram", "x"))
            social = (
                network,
                self.unique(lambda: f"@{_ascii(first)}_{_ascii(last)}{r.randrange(100)}"),
            )
        weights = list(_PERSONAS[persona][1])
        app_id = self.unique(lambda: f"app-{self.hex(64)}") if r.random() < 0.45 else None
        for kind, available in (
            ("call", has_phone),
            ("sms", has_phone),
            ("social", social),
            ("app", app_id),
            ("email", has_email),
        ):
            if not available:
                weights[_KINDS.index(kind)] = 0
        local_stores = [s for s, v in _STORES.items() if v[1] == country] or ["mad-gran-via"]
        return Customer(
            index=index,
            name=f"{first} {last}",
            language=language,
            country=country,
            email=self.unique(lambda: self.email(first, last, domains)) if has_email else None,
            phone=self.unique(lambda: self.phone(country)) if has_phone else None,
            customer_id=self.unique(lambda: f"cus_{self.hex(48)}") if r.random() < 0.7 else None,
            web_ids=tuple(
                self.unique(lambda: f"web-{self.hex(80)}") for _ in range(r.randint(1, 3))
            ),
            app_id=app_id,
            crm_id=self.unique(lambda: f"CRM-{self.digits(7)}") if r.random() < 0.85 else None,
            loyalty_id=self.unique(lambda: f"LOY{self.digits(10)}") if loyal else None,
            social=social,
            persona=persona,
            segment=r.choices(self.segments, cum_weights=self.segment_cum)[0],
            currency=currency,
            home_store=r.choice(local_stores),
            marketing_opt_in=has_email and r.random() < 0.35,
            joined_days_ago=r.uniform(0, 3 * 365) if r.random() < 0.7 else r.uniform(0, 240),
            journey_cum=_cum(weights),
        )

    def name(self, language: str) -> tuple[str, str]:
        r = self.rng
        if language == "es":
            # Spanish speakers usually carry two surnames; forms often get both.
            last = r.choice(_ES_LAST) + (f" {r.choice(_ES_LAST)}" if r.random() < 0.6 else "")
            return r.choice(_ES_FIRST), last
        return r.choice(_EN_FIRST), r.choice(_EN_LAST)

    def login(self, name: str) -> str:
        base = ".".join(_ascii(part) for part in name.split())
        return self.unique(lambda: f"{base}{self.rng.randrange(10, 100)}")

    def email(self, first: str, last: str, domains: tuple[str, ...]) -> str:
        r, f, surname = self.rng, _ascii(first), _ascii(last.split()[0])
        local = r.choice((f"{f}.{surname}", f"{f}{surname}", f"{f[0]}{surname}", f"{f}_{surname}"))
        if r.random() < 0.5:
            local += str(r.randrange(1, 100))
        return f"{local}@{r.choice(domains)}"

    def phone(self, country: str) -> str:
        r, d = self.rng, self.digits
        if country == "ES":
            return f"+34{r.choice('67')}{d(8)}"
        if country == "GB":
            return f"+447{d(9)}"
        if country == "US":
            return f"+1{r.randint(2, 9)}{d(2)}{r.randint(2, 9)}{d(6)}"
        if country == "MX":
            return f"+52{r.choice(('55', '33', '81'))}{d(8)}"
        if country == "PT":
            return f"+3519{r.choice('1236')}{d(7)}"
        return f"+33{r.choice('67')}{d(8)}"

    def agents(self, count: int) -> tuple[Agent, ...]:
        r, agents = self.rng, []
        for i in range(count):
            first, last = self.name("es" if r.random() < 0.8 else "en")
            queues: tuple[str, ...] = (_QUEUES[i % len(_QUEUES)],)
            if r.random() < 0.5:
                queues += (r.choice([q for q in _QUEUES if q != queues[0]]),)
            # A few agents are clearly weaker than the rest: the dashboard should show it.
            skill = max(-0.2, min(0.15, r.gauss(0, 0.06) + (-0.14 if i % 7 == 3 else 0)))
            name = f"{first} {last.split()[0]}"
            agents.append(Agent(self.login(name), name, queues, round(skill, 3)))
        return tuple(agents)


# --- time ----------------------------------------------------------------------------------------
def _to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class _Iso:
    """Epoch milliseconds to RFC 3339 with Z. Caches the date, which consecutive events share."""

    def __init__(self) -> None:
        self.day, self.date = -1, ""

    def __call__(self, ms: int) -> str:
        day, ms = divmod(ms, DAY)
        if day != self.day:
            self.day, self.date = day, f"{_EPOCH + timedelta(days=day):%Y-%m-%d}"
        second, milli = divmod(ms, 1000)
        minute, second = divmod(second, 60)
        hour, minute = divmod(minute, 60)
        return f"{self.date}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"


@dataclass(frozen=True)
class _Timing:
    """How far apart the steps of a journey are. Live traffic compresses days into minutes."""

    survey_send: tuple[int, int]
    survey_answer: tuple[int, int]
    case_resolve: tuple[int, int]
    reply: tuple[int, int]  # the company answering a social post, an email, an SMS
    long_horizon: bool  # deliveries, returns, repeat contacts days later
    suppress_days: int  # at most one survey per customer per this many days (0: no limit)
    survey_rate: float  # share of eligible interactions that get a survey


_HISTORY = _Timing(
    survey_send=(2 * MINUTE, 3 * HOUR), survey_answer=(5 * MINUTE, 2 * DAY),
    case_resolve=(2 * HOUR, 4 * DAY), reply=(20 * MINUTE, 8 * HOUR),
    long_horizon=True, suppress_days=7, survey_rate=0.7,
)  # fmt: skip
_LIVE = _Timing(
    survey_send=(5 * SECOND, MINUTE), survey_answer=(10 * SECOND, 3 * MINUTE),
    case_resolve=(MINUTE, 10 * MINUTE), reply=(30 * SECOND, 5 * MINUTE),
    long_horizon=False, suppress_days=0, survey_rate=0.5,
)  # fmt: skip


def _clamp(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else x


def _score(kind: str, satisfaction: float) -> int:
    """A latent satisfaction in [0, 1] expressed on the survey's scale (METRICS.md v1)."""
    if kind == "nps":
        return int(satisfaction * 10.999)
    return 1 + int(satisfaction * (4.999 if kind == "csat" else 6.999))


def _digits(rng: Random, n: int) -> str:
    return str(rng.randrange(10**n)).zfill(n)


_PRICE_LOG = {s: math.log(v[2]) for s, v in _SEGMENTS.items()}
Item = tuple[int, int, Event]
# Version 4 and the RFC 4122 variant, set on 128 random bits.
_UUID_CLEAR, _UUID_V4 = ~((0xF000 << 64) | (0xC000 << 48)), (0x4000 << 64) | (0x8000 << 48)
Ids = dict[str, Any]


class _Thread:
    """One interaction — a call, a conversation, an order: the channel, touchpoint, customer
    identifiers and correlation id that all its events share."""

    __slots__ = ("sim", "channel", "touchpoint", "ids", "corr")

    def __init__(
        self, sim: _Sim, channel: str, touchpoint: str, ids: Ids, corr: str | None
    ) -> None:
        self.sim, self.channel, self.touchpoint, self.ids, self.corr = (
            sim, channel, touchpoint, ids, corr)  # fmt: skip

    def __call__(self, ts: int, type_: str, payload: dict[str, Any]) -> None:
        self.sim.emit(ts, self.channel, type_, self.touchpoint, self.ids, payload, self.corr)

    def message(self, ts: int, sender: str, text: str, **extra: Any) -> None:
        kind = "message.received" if sender == "customer" else "message.sent"
        self(ts, kind, {"sender": sender, "text": text, **extra})


class _Sim:
    """Builds journeys as (time in ms, sequence, event) items; the caller orders and stamps them."""

    def __init__(self, population: Population, rng: Random, timing: _Timing) -> None:
        self.pop, self.rng, self.timing = population, rng, timing
        self.out: list[Item] = []
        self.seq = 0
        self.last_survey: dict[int, int] = {}
        self.bounced: set[int] = set()
        self.force_bad = False  # live mode: this journey goes badly and the customer says so
        self.kinds: dict[str, Callable[[Customer, int], None]] = {
            "web": self.web, "app": self.app, "call": self.call, "chat": self.chat,
            "sms": self.sms, "social": self.social, "store": self.store,
            "email": self.email_support,
        }  # fmt: skip

    def drain(self) -> list[Item]:
        out, self.out = self.out, []
        return out

    def journey(self, c: Customer, t: int) -> None:
        self.kinds[self.rng.choices(_KINDS, cum_weights=c.journey_cum)[0]](c, t)

    # --- plumbing --------------------------------------------------------------------------
    def uuid(self) -> str:
        h = "%032x" % (self.rng.getrandbits(128) & _UUID_CLEAR | _UUID_V4)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def hex(self, bits: int = 48) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def emit(self, ts: int, channel: str, type_: str, touchpoint: str, customer: Ids,
             payload: dict[str, Any], correlation_id: str | None) -> None:  # fmt: skip
        ids = dict(customer)
        if "external_ids" in ids:
            ids["external_ids"] = dict(ids["external_ids"])
        event: Event = {
            "event_id": self.uuid(), "source_id": _SOURCES[channel], "channel": channel,
            "type": type_, "touchpoint": touchpoint, "customer": ids, "payload": payload,
        }  # fmt: skip
        if correlation_id:
            event["correlation_id"] = correlation_id
        self.seq += 1
        self.out.append((ts, self.seq, event))

    def thread(self, channel: str, tp: str, ids: Ids, prefix: str | None = None) -> _Thread:
        return _Thread(self, channel, tp, ids, f"{prefix}-{self.hex()}" if prefix else None)

    def topic(self) -> str:
        return self.rng.choices(_TOPICS, cum_weights=_TOPIC_CUM)[0]

    def agent(self, queue: str, other_than: Agent | None = None) -> Agent:
        team = self.pop.agents_by_queue[queue]
        chosen = self.rng.choice(team)
        if chosen is other_than and len(team) > 1:
            chosen = self.rng.choice([a for a in team if a is not other_than])
        return chosen

    def say(self, c: Customer, key: str) -> str:
        """One of the catalogue's texts for `key`, in the customer's language."""
        es, en = self.rng.choice(_TEXTS[key])
        return es if c.language == "es" else en

    def between(self, low: int, high: int) -> int:
        """A uniform integer in [low, high]; cheaper than randint, which matters at 1M events."""
        return low + int(self.rng.random() * (high - low + 1))

    # --- what each channel knows about the customer ---------------------------------------------
    def ids_phone(self, c: Customer) -> Ids:
        ids: Ids = {"phone": c.phone}
        if c.crm_id and self.rng.random() < 0.6:  # the IVR matched the caller to a CRM record
            ids["external_ids"] = {"crm": c.crm_id}
        return ids

    def ids_web(self, c: Customer, logged_in: bool) -> Ids:
        ids: Ids = {"anonymous_id": self.rng.choice(c.web_ids)}
        if logged_in and c.customer_id:
            ids["customer_id"] = c.customer_id
            if c.email and self.rng.random() < 0.5:
                ids["email"] = c.email
        return ids

    def ids_app(self, c: Customer, logged_in: bool) -> Ids:
        ids: Ids = {"anonymous_id": c.app_id}
        if logged_in and c.customer_id:
            ids["customer_id"] = c.customer_id
        return ids

    def ids_chat(self, c: Customer) -> Ids:
        ids = self.ids_web(c, self.rng.random() < 0.25)
        if c.email and "email" not in ids and self.rng.random() < 0.6:
            # Typed into the pre-chat form, as people type: sometimes capitalised.
            typed = c.email if self.rng.random() > 0.1 else c.email[0].upper() + c.email[1:]
            ids["email"] = typed
        return ids

    def ids_email(self, c: Customer) -> Ids:
        ids: Ids = {"email": c.email}
        if c.crm_id and self.rng.random() < 0.5:
            ids["external_ids"] = {"crm": c.crm_id}
        return ids

    def ids_store(self, c: Customer) -> Ids:
        if c.loyalty_id:
            return {"external_ids": {"loyalty": c.loyalty_id}}
        return {"email": c.email} if c.email else {"phone": c.phone}  # asked for the e-receipt

    def ids_crm(self, c: Customer) -> Ids:
        ids: Ids = {"email": c.email} if c.email else {"phone": c.phone}
        if c.crm_id:
            ids["external_ids"] = {"crm": c.crm_id}
        return ids

    def ids_order(self, c: Customer, ids: Ids) -> Ids:
        ids = dict(ids)
        if c.email:
            ids["email"] = c.email  # checkout and returns always ask for an email
        elif c.phone:
            ids["phone"] = c.phone
        return ids

    # --- surveys --------------------------------------------------------------------------------
    def survey(self, c: Customer, t: int, on: _Thread, mood: float, via: str) -> None:
        """Sent after an interaction, with its touchpoint and correlation id; a fraction answers.

        `mood` moves the touchpoint's baseline satisfaction: the agent's skill, the outcome.
        """
        r, timing = self.rng, self.timing
        if not self.force_bad:
            last = self.last_survey.get(c.index)
            recent = last is not None and t - last < timing.suppress_days * DAY
            if r.random() >= timing.survey_rate or recent:
                return  # do not harass the customer
        self.last_survey[c.index] = t
        if via == "inline":  # shown where the interaction happened, e.g. the chat widget
            ids, sent_via = on.ids, on.channel
        else:
            sent_via = "sms" if (via == "sms" and c.phone) or not c.email else "email"
            ids = {"phone": c.phone} if sent_via == "sms" else {"email": c.email}
        survey = _Thread(self, "survey", on.touchpoint, ids, on.corr)
        kinds, cum = _SURVEY_KINDS.get(on.touchpoint, (("csat",), (1,)))
        kind, survey_id = r.choices(kinds, cum_weights=cum)[0], f"srv-{self.hex()}"
        sent = t + self.between(*timing.survey_send)
        attributes = {"sent_via": sent_via}
        survey(
            sent, "survey.sent", {"survey_id": survey_id, "kind": kind, "attributes": attributes}
        )
        if self.force_bad:
            satisfaction = r.uniform(0, 0.1)
        else:
            base = TOUCHPOINT_BASELINE.get(on.touchpoint, 0.6)
            satisfaction = _clamp(base + mood + r.gauss(0, 0.17))
            if r.random() >= 0.22 + 0.1 * (satisfaction < 0.35):  # the unhappy answer more often
                return
        answer = {"survey_id": survey_id, "kind": kind, "score": _score(kind, satisfaction)}
        if self.force_bad or r.random() < 0.45:
            answer["comment"] = self.comment(c, on.touchpoint, satisfaction)
        survey(sent + self.between(*timing.survey_answer), "survey.answered", answer)

    def comment(self, c: Customer, tp: str, satisfaction: float) -> str:
        band = "neg" if satisfaction < 0.4 else "mid" if satisfaction < 0.65 else "pos"
        specific = f"comment.{tp}.{band}"
        use_specific = specific in _TEXTS and self.rng.random() < 0.5
        return self.say(c, specific if use_specific else f"comment.{band}")

    # --- calls ----------------------------------------------------------------------------------
    def call(self, c: Customer, t: int, topic: str | None = None, depth: int = 0) -> None:
        r = self.rng
        if not self.force_bad and depth == 0 and r.random() < 0.06:
            return self.outbound_call(c, t)
        topic = topic or self.topic()
        queue, call = (
            _QUEUE_OF[topic],
            self.thread("phone", "support_line", self.ids_phone(c), "call"),
        )
        wait = r.uniform(900, 1800) if self.force_bad else min(1800.0, r.lognormvariate(3.4, 1.0))
        wait = round(wait, 1)  # median about 30 s, with a long tail
        call(t, "call.offered", {"queue": queue})
        t += int(wait * 1000)
        if not self.force_bad and r.random() < min(0.5, 0.03 + wait / 900):
            gave_up = {"queue": queue, "queue_wait_s": wait, "abandoned": True, "topic": topic}
            call(t, "call.ended", gave_up)
            return self.repeat(c, t, topic, depth, 0.6)
        agent = self.agent(queue)
        call(t, "call.answered", {"queue": queue, "agent": agent.login, "queue_wait_s": wait})
        talk, hold = round(min(5400.0, r.lognormvariate(5.5, 0.6)), 1), 0.0
        if self.force_bad or r.random() < 0.25:
            hold = round(r.uniform(15, 300), 1)
            call(t + int(talk * 400), "call.held", {"agent": agent.login, "hold_s": hold})
        transferred = self.force_bad or r.random() < 0.08
        if transferred:
            to_queue = queue if r.random() < 0.5 else r.choice(_QUEUES)
            to = self.agent(to_queue, other_than=agent)
            moved = {"from_agent": agent.login, "to_agent": to.login, "to_queue": to_queue}
            call(t + int(talk * 600 + hold * 1000), "call.transferred", moved)
            agent = to
        resolved = not self.force_bad and r.random() < 0.62 + 2 * agent.skill - 0.15 * transferred
        t += int((talk + hold) * 1000)
        ended = {
            "agent": agent.login, "queue": queue, "queue_wait_s": wait, "talk_s": talk,
            "hold_s": hold, "wrap_s": round(r.uniform(15, 120), 1), "resolved": resolved,
            "topic": topic,
        }  # fmt: skip
        if r.random() < 0.15:
            ended["transcript"] = self.transcript(c, topic, agent)
        call(t, "call.ended", ended)
        mood = agent.skill + (0.06 if resolved else -0.12) - 0.1 * (wait > 180) - 0.05 * transferred
        self.survey(c, t, call, mood, via="sms")
        if not resolved:
            self.follow_up(c, t, call, topic, agent, depth)

    def outbound_call(self, c: Customer, t: int) -> None:
        """A retention call the company makes: no queue, no survey."""
        r, agent = self.rng, self.agent("retention")
        call = self.thread("phone", "sales_line", self.ids_phone(c), "call")
        ended: dict[str, Any] = {
            "agent": agent.login,
            "queue": "retention",
            "direction": "outbound",
        }
        if r.random() < 0.35:
            ended["attributes"] = {"outcome": "no_answer"}
            return call(t + self.between(20 * SECOND, 40 * SECOND), "call.ended", ended)
        t += self.between(5 * SECOND, 25 * SECOND)
        call(t, "call.answered", {"agent": agent.login, "queue": "retention"})
        talk = round(r.lognormvariate(5.0, 0.5), 1)
        ended.update(talk_s=talk, wrap_s=round(r.uniform(10, 60), 1), topic="retention_offer")
        call(t + int(talk * 1000), "call.ended", ended)

    def transcript(self, c: Customer, topic: str, agent: Agent) -> str:
        lines = (self.say(c, f"opener.{topic}"), self.say(c, "agent.hello").format(agent.name),
                 self.say(c, "customer.chase"), self.say(c, "agent.reply"))  # fmt: skip
        who = ("Cliente", "Agente") if c.language == "es" else ("Customer", "Agent")
        return "\n".join(f"{who[i % 2]}: {line}" for i, line in enumerate(lines))

    def follow_up(
        self, c: Customer, t: int, on: _Thread, topic: str, agent: Agent, depth: int
    ) -> None:
        if self.rng.random() < 0.4:
            opened = t + self.between(MINUTE, 10 * MINUTE)
            self.case(c, opened, on.channel, on.touchpoint, topic, agent)
        self.repeat(c, t, topic, depth, 0.5)

    def repeat(self, c: Customer, t: int, topic: str, depth: int, chance: float) -> None:
        """An unresolved customer comes back about the same thing, on any channel (FCR)."""
        r = self.rng
        if depth >= 2 or not self.timing.long_horizon or r.random() >= chance:
            return
        later = t + self.between(2 * HOUR, 5 * DAY)
        if c.phone and r.random() < 0.6:
            self.call(c, later, topic, depth + 1)
        else:
            self.chat(c, later, topic, depth + 1)

    # --- messaging ----------------------------------------------------------------------------
    def chat(self, c: Customer, t: int, topic: str | None = None, depth: int = 0) -> None:
        r, topic = self.rng, topic or self.topic()
        queue, chat = (
            _QUEUE_OF[topic],
            self.thread("chat", "chat_support", self.ids_chat(c), "chat"),
        )
        chat.message(t, "customer", self.say(c, f"opener.{topic}"), queue=queue,
                     attributes={"topic": topic})  # fmt: skip
        t += self.between(1500, 4000)
        chat.message(t, "bot", self.say(c, "bot.greeting"))
        if topic in ("delivery_status", "product_info") and not self.force_bad and r.random() < 0.3:
            t += self.between(3 * SECOND, 8 * SECOND)
            chat.message(t, "bot", self.say(c, "bot.self_serve"))
            t += self.between(10 * SECOND, 40 * SECOND)
            chat.message(t, "customer", self.say(c, "customer.thanks"))
            return self.survey(c, t, chat, 0.02, via="inline")
        t += self.between(10 * SECOND, 40 * SECOND)
        chat.message(t, "customer", self.say(c, "customer.chase"))
        t += self.between(1500, 3000)
        chat.message(t, "bot", self.say(c, "bot.handoff"))
        agent = self.agent(queue)
        # FRT: bot replies do not stop the clock, the first human reply does.
        first_response = r.uniform(900, 1800) if self.force_bad else r.lognormvariate(4.3, 0.8)
        t += int(first_response * 1000)
        hello = self.say(c, "agent.hello").format(agent.name.split()[0])
        chat.message(t, "agent", hello, agent=agent.login, queue=queue)
        for _ in range(self.between(1, 3)):
            t += self.between(20 * SECOND, 2 * MINUTE)
            chat.message(t, "customer", self.say(c, "customer.chase"))
            t += self.between(15 * SECOND, 90 * SECOND)
            chat.message(t, "agent", self.say(c, "agent.reply"), agent=agent.login, queue=queue)
        resolved = not self.force_bad and r.random() < 0.68 + 2 * agent.skill
        t += self.between(10 * SECOND, MINUTE)
        closing = self.say(c, "agent.solved" if resolved else "agent.escalated")
        outcome = {"resolved": resolved, "topic": topic}
        chat.message(t, "agent", closing, agent=agent.login, queue=queue, attributes=outcome)
        mood = agent.skill + (0.06 if resolved else -0.12) - 0.1 * (first_response > 300)
        self.survey(c, t, chat, mood, via="inline")
        if not resolved:
            self.follow_up(c, t, chat, topic, agent, depth)

    def sms(self, c: Customer, t: int) -> None:
        topic, sms = self.topic(), self.thread("sms", "sms_support", {"phone": c.phone}, "sms")
        sms.message(t, "customer", self.say(c, f"opener.{topic}"), attributes={"topic": topic})
        sms.message(t + self.between(2, 10) * SECOND, "bot", self.say(c, "sms.auto_reply"))
        agent = self.agent(_QUEUE_OF[topic])
        t += self.between(*self.timing.reply) // 4
        sms.message(t, "agent", self.say(c, "agent.reply"), agent=agent.login)
        if self.rng.random() < 0.5:
            t += self.between(MINUTE, 20 * MINUTE)
            sms.message(t, "customer", self.say(c, "customer.thanks"))
        self.survey(c, t, sms, agent.skill, via="sms")

    def social(self, c: Customer, t: int) -> None:
        assert c.social is not None, "social journeys are only drawn for customers with a handle"
        network, handle = c.social
        post = self.thread("social", "social_care", {"external_ids": {network: handle}}, "soc")
        post.message(t, "customer", self.say(c, "social.post"), attributes={"network": network})
        if self.rng.random() < 0.8:
            t += self.between(*self.timing.reply)
            post.message(t, "agent", self.say(c, "social.reply"), agent=self.agent("orders").login)
            if self.rng.random() < 0.4:
                t += self.between(5 * MINUTE, HOUR)
                post.message(t, "customer", self.say(c, "customer.chase"))

    # --- email support and cases ------------------------------------------------------------
    def email_support(self, c: Customer, t: int) -> None:
        topic = self.topic()
        agent, subject = self.agent(_QUEUE_OF[topic]), self.say(c, f"opener.{topic}")
        replied_at = t + self.between(*self.timing.reply)
        case_id = self.case(
            c, t, "email", "email_support", topic, agent, replied_at + HOUR, subject
        )
        mail = _Thread(self, "email", "email_support", self.ids_email(c), case_id)
        reply = {"message_id": f"msg-{self.hex(64)}", "subject": f"Re: {subject}",
                 "attributes": {"agent": agent.login}}  # fmt: skip
        mail(replied_at, "email.sent", reply)
        if self.rng.random() < 0.35:
            answer = {**reply, "text": self.say(c, "email.support_reply")}
            mail(replied_at + self.between(10 * MINUTE, HOUR), "email.replied", answer)

    def case(self, c: Customer, t: int, channel: str, tp: str, topic: str, agent: Agent,
             not_before: int = 0, subject: str | None = None) -> str:  # fmt: skip
        """Opened, usually resolved, sometimes reopened; the customer is surveyed on the outcome."""
        r, case_id = self.rng, f"CS-{_digits(self.rng, 7)}"
        case = _Thread(self, channel, tp, self.ids_crm(c), case_id)
        base = {"case_id": case_id, "topic": topic, "agent": agent.login, "queue": _QUEUE_OF[topic]}
        priority = r.choices(("low", "normal", "high", "urgent"), cum_weights=(15, 75, 93, 100))[0]
        subject = subject or self.say(c, f"opener.{topic}")
        case(t, "case.opened", {**base, "subject": subject, "priority": priority})
        if not self.force_bad and r.random() < 0.08:
            return case_id  # still open
        done = max(t, not_before) + self.between(*self.timing.case_resolve)
        resolution = {**base, "resolution": self.say(c, "case.resolution")}
        case(done, "case.resolved", resolution)
        mood = agent.skill
        if self.force_bad or r.random() < 0.1:
            reopened_at = done + self.between(*self.timing.case_resolve)
            case(reopened_at, "case.reopened", dict(base))
            done = reopened_at + self.between(*self.timing.case_resolve)
            case(done, "case.resolved", dict(resolution))
            mood -= 0.2
        self.survey(c, done, case, mood, via="email")
        return case_id

    # --- shopping -----------------------------------------------------------------------------
    def web(self, c: Customer, t: int) -> None:
        self.session(c, t, app=False)

    def app(self, c: Customer, t: int) -> None:
        self.session(c, t, app=True)

    def session(self, c: Customer, t: int, app: bool, referrer: str | None = None) -> None:
        r = self.rng
        logged_in = c.customer_id is not None and r.random() < (0.85 if app else 0.4)
        if app:
            visit = self.thread("mobile_app", "mobile_app", self.ids_app(c, logged_in))
        else:
            visit = self.thread("web", "website", self.ids_web(c, logged_in))
            referrer = referrer or r.choice(_REFERRERS)
        host = (
            "https://www.tiendademo.es" if c.language == "es" else "https://www.tiendademo.com/en"
        )
        for i in range(1 + min(14, int(r.expovariate(1 / 3)))):
            path, title_es, title_en = r.choice(_PAGES)
            url = f"app://{path.strip('/') or 'home'}" if app else host + path
            page = {"url": url, "title": title_es if c.language == "es" else title_en}
            if i == 0 and referrer:
                page["referrer"] = referrer
            visit(t, "page.viewed", page)
            if r.random() < 0.3:
                t += self.between(2 * SECOND, 20 * SECOND)
                visit(t, "action.performed", {"name": r.choice(_ACTIONS)})
            t += self.between(8 * SECOND, 90 * SECOND)
        if r.random() < _SEGMENTS[c.segment][3]:
            self.checkout(c, t, visit)

    def basket(self, c: Customer) -> tuple[float, int]:
        r, median = self.rng, _PRICE_LOG[c.segment]
        items = 1 + min(7, int(r.expovariate(1.2)))
        return round(sum(r.lognormvariate(median, 0.6) for _ in range(items)), 2), items

    def checkout(self, c: Customer, t: int, visit: _Thread) -> None:
        order_id = f"ORD-{_digits(self.rng, 8)}"
        buy = _Thread(self, visit.channel, "checkout", self.ids_order(c, visit.ids), order_id)
        buy(t, "action.performed", {"name": "checkout_started"})
        amount, items = self.basket(c)
        t += self.between(40 * SECOND, 6 * MINUTE)
        order = {"order_id": order_id, "amount": amount, "currency": c.currency, "items": items}
        buy(t, "order.placed", order)
        self.survey(c, t, buy, 0.04 * (c.segment in ("vip", "loyal")), via="email")
        if self.timing.long_horizon:
            self.delivery(c, t, order)

    def delivery(self, c: Customer, ordered_at: int, order: dict[str, Any]) -> None:
        r, order_id = self.rng, order["order_id"]
        # The carrier knows what the shipping label says.
        label = {"customer_id": c.customer_id, "email": c.email, "phone": c.phone}
        parcel = _Thread(self, "other", "delivery", {k: v for k, v in label.items() if v},
                         f"dlv-{order_id}")  # fmt: skip
        late_days = 0 if r.random() > 0.2 else self.between(1, 6)
        promised = ordered_at // DAY + (1 if c.segment == "vip" else self.between(2, 3))
        t = (promised + late_days) * DAY + self.between(7 * HOUR, 18 * HOUR)
        if late_days >= 3 and r.random() < 0.5:  # customers chase late parcels
            asked = (promised + 1) * DAY + self.between(8 * HOUR, 12 * HOUR)
            (self.call if c.phone and r.random() < 0.6 else self.chat)(
                c, asked, "delivery_status", 1
            )
        if c.phone and r.random() < 0.5:
            self.delivery_sms(c, (promised + late_days) * DAY + 6 * HOUR, order_id, parcel.corr)
        damaged = r.random() < 0.04
        delivered = {"order_id": order_id, "carrier": r.choice(_CARRIERS), "late_days": late_days,
                     "damaged": damaged}  # fmt: skip
        parcel(t, "custom.shipment.delivered", delivered)
        if damaged:
            opened = t + self.between(HOUR, 6 * HOUR)
            channel = "email" if c.email else "phone"
            self.case(c, opened, channel, "delivery", "delivery_status", self.agent("orders"))
        mood = 0.04 - 0.06 * late_days - 0.25 * damaged + 0.04 * (late_days == 0)
        self.survey(c, t, parcel, mood, via="email")
        if r.random() < 0.06 + 0.12 * (damaged or late_days > 2):
            self.returns(c, t + self.between(DAY, 20 * DAY), order, None)

    def delivery_sms(self, c: Customer, t: int, order_id: str, corr: str | None) -> None:
        sms = _Thread(self, "sms", "delivery", {"phone": c.phone}, corr)
        sms.message(t, "bot", self.say(c, "sms.notice").format(order_id))
        if self.rng.random() < 0.12:
            t += self.between(2 * MINUTE, 30 * MINUTE)
            sms.message(t, "customer", self.say(c, "sms.ask"))
            t += self.between(MINUTE, 20 * MINUTE)
            sms.message(t, "agent", self.say(c, "sms.answer"), agent=self.agent("orders").login)

    def returns(self, c: Customer, t: int, order: dict[str, Any], store_id: str | None) -> None:
        r, corr = self.rng, f"ret-{order['order_id']}"
        if store_id:
            back = _Thread(self, "store", "returns", self.ids_store(c), corr)
        else:
            back = _Thread(self, "web", "returns", self.ids_order(c, self.ids_web(c, True)), corr)
        items = self.between(1, order["items"])
        refund = round(order["amount"] * items / order["items"], 2)
        reason = r.choice(_RETURN_REASONS)
        returned = {**order, "amount": refund, "items": items, "reason": reason}
        if store_id:
            returned["attributes"] = {"store_id": store_id}
        back(t, "order.returned", returned)
        self.survey(c, t, back, -0.06 * (reason in ("damaged", "late_delivery")), via="email")

    def store(self, c: Customer, t: int) -> None:
        r = self.rng
        store_id = c.home_store if r.random() < 0.8 else r.choice(self.pop.stores)
        visit = self.thread("store", "store_visit", self.ids_store(c), "visit")
        visit(t, "store.visited", {"store_id": store_id})
        if r.random() >= 0.6:
            return
        t += self.between(5 * MINUTE, 40 * MINUTE)
        amount, items = self.basket(c)
        ticket = {"store_id": store_id, "order_id": f"TKT-{_digits(r, 9)}", "amount": amount,
                  "currency": _STORES[store_id][0], "items": items}  # fmt: skip
        visit(t, "store.purchased", ticket)
        self.survey(c, t, visit, 0.05 * (c.segment == "vip"), via="email")
        if self.timing.long_horizon and r.random() < 0.05:
            order = {k: ticket[k] for k in ("order_id", "amount", "currency", "items")}
            self.returns(c, t + self.between(DAY, 14 * DAY), order, store_id)

    # --- email marketing ------------------------------------------------------------------------
    def campaign_email(self, c: Customer, t: int, campaign: str, subject: str, tp: str, url: str,
                       corr: str | None = None) -> None:  # fmt: skip
        r = self.rng
        if not c.email or c.index in self.bounced:
            return
        mail = _Thread(self, "email", tp, self.ids_email(c), corr)
        base = {"message_id": f"msg-{self.hex(64)}", "campaign": campaign,
                "subject": self.say(c, f"subject.{subject}")}  # fmt: skip
        mail(t, "email.sent", base)
        t += self.between(SECOND, MINUTE)
        if r.random() < 0.02:
            hard = r.random() < 0.6
            reason = "user_unknown" if hard else "mailbox_full"
            mail(t, "email.bounced", {**base, "reason": reason, "hard": hard})
            if hard:
                self.bounced.add(c.index)  # an address that hard-bounced is not mailed again
            return
        mail(t, "email.delivered", dict(base))
        if r.random() >= _SEGMENTS[c.segment][4]:
            return
        t += min(3 * DAY, int(r.lognormvariate(math.log(2 * HOUR), 1.2)))
        mail(t, "email.opened", dict(base))
        if r.random() < 0.25:
            t += self.between(5 * SECOND, 5 * MINUTE)
            mail(t, "email.clicked", {**base, "url": url})
            if self.timing.long_horizon and r.random() < 0.6:
                self.session(c, t + 3 * SECOND, app=False, referrer=url)
        elif r.random() < 0.02:
            reply = {**base, "text": self.say(c, "email.campaign_reply")}
            mail(t + self.between(MINUTE, HOUR), "email.replied", reply)

    def onboarding(self, c: Customer, t: int) -> None:
        corr, tp = f"onb-{self.hex()}", "onboarding_email"
        if c.customer_id:
            ids: Ids = {"anonymous_id": c.web_ids[0], "customer_id": c.customer_id}
            if c.email:
                ids["email"] = c.email
            _Thread(self, "web", "website", ids, None)(t, "action.performed", {"name": "sign_up"})
        url = "https://www.tiendademo.es/mi-cuenta?utm_source=email&utm_campaign=onboarding"
        welcome_at = t + self.between(MINUTE, 5 * MINUTE)
        self.campaign_email(c, welcome_at, "onboarding", "onboarding-welcome", tp, url, corr)
        tips_at = t + 3 * DAY + self.between(0, 2 * HOUR)
        self.campaign_email(c, tips_at, "onboarding", "onboarding-tips", tp, url, corr)
        if c.email:
            self.survey(c, t + 7 * DAY, _Thread(self, "email", tp, {}, corr), 0.0, via="email")

    def campaigns(self, day: int, lo: int, hi: int, joined: list[int]) -> None:
        """A newsletter every other Tuesday and a promotion on the first Thursday of each month,
        each to the customers who opted in to marketing email."""
        date = _EPOCH + timedelta(milliseconds=day)
        if date.weekday() == 1 and (day // DAY // 7) % 2 == 0:
            campaign, subject, tp, path = (
                f"newsletter-{date:%Y-%m-%d}",
                "newsletter",
                "newsletter",
                "/",
            )
        elif date.weekday() == 3 and date.day <= 7:
            campaign, subject, tp, path = (
                f"promo-{date:%Y-%m}",
                "promo",
                "promo_campaign",
                "/rebajas",
            )
        else:
            return
        url = f"https://www.tiendademo.es{path}?utm_source=email&utm_campaign={campaign}"
        for c in self.pop.customers:
            t = day + 8 * HOUR + self.between(0, 30 * MINUTE)
            if c.marketing_opt_in and lo <= t < hi and joined[c.index] <= t:
                self.campaign_email(c, t, campaign, subject, tp, url)

    def day(
        self, day: int, lo: int, hi: int, joined: list[int], joiners: Sequence[Customer]
    ) -> None:
        """Every journey that starts in [lo, hi), within the UTC day that starts at `day`."""
        r, pop = self.rng, self.pop
        weekend = (day // DAY + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        expected = pop.activity_cum[-1] * (0.8 if weekend else 1.0) * r.uniform(0.85, 1.15)
        n = int(expected + r.random())
        picks = r.choices(pop.customers, cum_weights=pop.activity_cum, k=n)
        hours = r.choices(range(24), cum_weights=_HOUR_CUM, k=n)
        for c, hour in zip(picks, hours, strict=True):
            t = day + hour * HOUR + self.between(0, HOUR - 1)
            if lo <= t < hi and t >= joined[c.index]:
                self.journey(c, t)
        for c in joiners:
            self.onboarding(c, joined[c.index])
        self.campaigns(day, lo, hi, joined)


# --- public generators -------------------------------------------------------------------------
def history(population: Population, rng: Random, now: datetime, days: int) -> Iterator[Event]:
    """Raw events of the `days` before `now`, in time order, across every event family.

    Journeys are generated a day at a time into a heap; an event is released once no journey
    still to be generated can start before it, so memory stays bounded by the journeys in
    flight. Steps that would happen after `now` (a survey not answered yet) are left out.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    end = _to_ms(now)
    start = end - days * DAY
    joined = [end - int(c.joined_days_ago * DAY) for c in population.customers]
    joiners: dict[int, list[Customer]] = {}
    for c in population.customers:
        if start <= joined[c.index] < end:
            joiners.setdefault(joined[c.index] // DAY, []).append(c)
    sim, iso, pending = _Sim(population, rng, _HISTORY), _Iso(), list[Item]()
    for day in range(start - start % DAY, end, DAY):
        sim.day(day, max(day, start), min(day + DAY, end), joined, joiners.get(day // DAY, ()))
        for item in sim.drain():
            heapq.heappush(pending, item)
        while pending and pending[0][0] < day + DAY:
            ts, _, event = heapq.heappop(pending)
            if ts <= end:
                event["occurred_at"] = iso(ts)
                yield event


def live(population: Population, rng: Random, now_fn: Callable[[], datetime]) -> Iterator[Event]:
    """An endless stream of journeys that end "now" (`now_fn()`), each in time order.

    About one journey in twenty goes badly on purpose — a long wait, a transfer, no resolution —
    and the customer answers the survey at the bottom of the scale with a comment, which should
    raise an at-risk alert within seconds.
    """
    sim, iso = _Sim(population, rng, _LIVE), _Iso()
    while True:
        c = rng.choices(population.customers, cum_weights=population.activity_cum)[0]
        sim.force_bad = rng.random() < 0.05
        if sim.force_bad:
            (sim.call if c.phone else sim.chat)(c, 0)
        else:
            sim.journey(c, 0)
        items = sorted(sim.drain())
        if not items:
            continue
        shift = _to_ms(now_fn()) - items[-1][0]
        for ts, _, event in items:
            event["occurred_at"] = iso(ts + shift)
            yield event
