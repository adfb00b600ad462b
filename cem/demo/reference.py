"""Reference tables: names, countries, stores, personas, segments, topics, touchpoints, pages."""

from __future__ import annotations

import math

from cem.demo.draws import by_share, cumulative


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


ES_FIRST = _words(
    "María José Lucía Javier Carmen Alejandro Sofía Pablo Marta David Laura Daniel Ana Sergio "
    "Elena Carlos Paula Manuel Isabel Antonio Nuria Álvaro Irene Raúl Cristina Jorge Beatriz "
    "Adrián Rocío Iván Begoña Íñigo Montserrat Jordi Ainhoa Xabier"
)
ES_LAST = _words(
    "García Fernández González Rodríguez López Martínez Sánchez Pérez Gómez Martín Jiménez "
    "Ruiz Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres "
    "Domínguez Vázquez Ramos Gil Serrano Blanco Molina Castro Ortega Iglesias Núñez Peña"
)
EN_FIRST = _words(
    "Emma Oliver Olivia James Sophie Harry Amelia Jack Emily Thomas Grace William Chloe "
    "George Lucy Michael Hannah Ethan Megan Liam Charlotte Noah Ava Samuel"
)
EN_LAST = _words(
    "Smith Johnson Brown Taylor Wilson Davies Evans Walker Wright Robinson Thompson Hughes "
    "Clarke Miller Davis Anderson Campbell Murphy O'Brien Kelly Scott Baker"
)
# country: (share, currency, share speaking Spanish, email domains)
COUNTRIES: dict[str, tuple[float, str, float, tuple[str, ...]]] = {
    "ES": (0.68, "EUR", 0.9, _words("gmail.com gmail.com hotmail.com hotmail.es yahoo.es "
                                    "outlook.es telefonica.net icloud.com")),
    "MX": (0.08, "USD", 1.0, _words("gmail.com hotmail.com outlook.com prodigy.net.mx")),
    "GB": (0.08, "EUR", 0.05, _words("gmail.com outlook.com yahoo.co.uk btinternet.com")),
    "US": (0.07, "USD", 0.2, _words("gmail.com yahoo.com outlook.com icloud.com")),
    "PT": (0.05, "EUR", 0.3, _words("gmail.com sapo.pt hotmail.com")),
    "FR": (0.04, "EUR", 0.3, _words("gmail.com orange.fr free.fr")),
}  # fmt: skip
# store_id: (currency, country)
STORES: dict[str, tuple[str, str]] = {
    "mad-gran-via": ("EUR", "ES"), "mad-castellana": ("EUR", "ES"), "bcn-diagonal": ("EUR", "ES"),
    "bcn-passeig-gracia": ("EUR", "ES"), "vlc-colon": ("EUR", "ES"), "sev-sierpes": ("EUR", "ES"),
    "bio-moyua": ("EUR", "ES"), "mlg-larios": ("EUR", "ES"), "lis-chiado": ("EUR", "PT"),
    "mia-brickell": ("USD", "US"),
}  # fmt: skip
# persona: (share, journey-kind weights in the order of KINDS)
KINDS = ("web", "app", "call", "chat", "sms", "social", "store", "email")
PERSONAS: dict[str, tuple[float, tuple[int, ...]]] = {
    "digital": (0.35, (36, 30, 5, 9, 3, 8, 5, 4)),
    "phone_first": (0.25, (20, 4, 38, 4, 10, 1, 16, 7)),
    "store_first": (0.2, (18, 6, 14, 3, 4, 3, 48, 4)),
    "omnichannel": (0.2, (24, 18, 14, 8, 6, 6, 18, 6)),
}
# segment: (share, journeys per day, typical item price, web conversion, marketing-email open rate)
SEGMENTS: dict[str, tuple[float, float, float, float, float]] = {
    "vip": (0.05, 0.22, 70.0, 0.3, 0.55),
    "loyal": (0.2, 0.12, 48.0, 0.18, 0.45),
    "regular": (0.45, 0.06, 36.0, 0.1, 0.3),
    "occasional": (0.3, 0.025, 30.0, 0.05, 0.18),
}
COUNTRY_DRAW = by_share(COUNTRIES)
PERSONA_DRAW = by_share(PERSONAS)
SEGMENT_DRAW = by_share(SEGMENTS)
PRICE_LOG = {s: math.log(v[2]) for s, v in SEGMENTS.items()}

TOPICS = _words(
    "delivery_status billing return_request technical_issue account_access product_info "
    "cancellation"
)
TOPIC_CUM = cumulative((30, 18, 14, 12, 10, 10, 6))
QUEUE_OF = dict(
    zip(TOPICS, _words("orders billing orders technical technical sales retention"), strict=True)
)
QUEUES = ("orders", "billing", "technical", "sales", "retention")
# Where satisfaction starts before the agent and the outcome move it (0 = furious, 1 = delighted).
TOUCHPOINT_BASELINE: dict[str, float] = {
    "checkout": 0.86, "store_visit": 0.82, "mobile_app": 0.78, "website": 0.76,
    "chat_support": 0.75, "onboarding_email": 0.72, "sms_support": 0.7, "returns": 0.68,
    "email_support": 0.66, "support_line": 0.66, "social_care": 0.6, "delivery": 0.5,
}  # fmt: skip
# touchpoint: (survey kinds, cumulative weights)
SURVEY_KINDS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "support_line": (("csat", "nps", "ces"), (70, 90, 100)),
    "chat_support": (("csat", "ces"), (80, 100)),
    "checkout": (("csat", "nps"), (60, 100)),
    "store_visit": (("csat", "nps"), (70, 100)),
    "onboarding_email": (("ces",), (100,)),
    "returns": (("ces", "csat"), (60, 100)),
}
# Journeys per UTC hour (Spain is UTC+1/+2): quiet at night, busy late morning and evening.
HOUR_CUM = cumulative(
    (1, 1, 1, 1, 1, 1, 3, 6, 9, 11, 12, 12, 11, 10, 10, 11, 12, 12, 12, 11, 9, 6, 3, 2)
)
# Which system emits each channel's events.
SOURCES = {
    "web": "web_sdk", "mobile_app": "app_sdk", "email": "esp", "phone": "cti",
    "chat": "chat_widget", "sms": "sms_gateway", "social": "social_inbox", "store": "pos",
    "survey": "survey_tool", "other": "carrier",
}  # fmt: skip
CARRIERS = ("SEUR", "Correos Express", "MRW", "UPS", "DHL")
RETURN_REASONS = _words("wrong_size damaged not_as_described changed_mind late_delivery")
ACTIONS = _words("search add_to_cart wishlist_add filter_applied size_guide_opened track_order")
REFERRERS = ("https://www.google.com/", "https://www.instagram.com/", "https://t.co/", None)
SHOP_ES, SHOP_EN = "https://www.tiendademo.es", "https://www.tiendademo.com/en"
PAGES = (  # path, Spanish title, English title
    ("/", "Inicio", "Home"),
    ("/productos/zapatillas-running", "Zapatillas running", "Running shoes"),
    ("/productos/chaquetas", "Chaquetas", "Jackets"),
    ("/rebajas", "Rebajas", "Sale"),
    ("/buscar?q=abrigo", "Buscar", "Search"),
    ("/carrito", "Carrito", "Basket"),
    ("/ayuda/envios", "Ayuda: envíos", "Help: delivery"),
    ("/mi-cuenta/pedidos", "Mis pedidos", "My orders"),
)
