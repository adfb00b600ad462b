// The agent console: search as you type, the customer header, the live timeline, identity.
"use strict";

(() => {
  const { t, api, el, fixed, when, query, showError, errorText, alertText, channelName, kindName, identifierText, lang, ApiError } = CEM;
  const $ = (id) => document.getElementById(id);
  const PAGE = 50;
  // Channel badges are short labels in a colour per channel (app.css), in the page's language
  // (`badge_<channel>`): readable without any emoji font, which many desktops and headless
  // browsers lack. A channel without one is a dot.
  const badge = (channel) => {
    const key = `badge_${channel}`;
    const text = t(key);
    return text === key ? "•" : text;
  };
  const isManager = ["manager", "admin"].includes(document.body.dataset.role);
  let current = null; // { id, cursor, seen:Set, filters, stream, poller }

  // --- search -----------------------------------------------------------------------------
  let searchTimer = null;
  let searchSeq = 0;
  let tooShort = null; // the one character Enter was pressed on: the hint stays while it does
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 200);
  });
  $("search").addEventListener("keydown", (e) => {
    // Enter opens the one customer found for what the box holds now (with several, the agent
    // picks one; results of an earlier text, still on show while the next search runs, not).
    const found = $("results").querySelectorAll("button");
    const fresh = $("results").dataset.query === $("search").value.trim();
    if (e.key === "Enter" && !e.isComposing && fresh && found.length === 1) { e.preventDefault(); found[0].click(); }
    // A search needs two characters: said when asked for with one (it did nothing, a review).
    if (e.key === "Enter" && !e.isComposing && $("search").value.trim().length === 1) {
      tooShort = $("search").value.trim();
      $("search-status").textContent = t("search_too_short");
    }
    if (e.key === "ArrowDown") {
      const first = $("results").querySelector("button");
      if (first) { e.preventDefault(); first.focus(); }
    }
  });
  $("results").addEventListener("keydown", (e) => {
    const buttons = [...$("results").querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    if (e.key === "ArrowDown" && at < buttons.length - 1) { e.preventDefault(); buttons[at + 1].focus(); }
    if (e.key === "ArrowUp") { e.preventDefault(); (at > 0 ? buttons[at - 1] : $("search")).focus(); }
  });

  async function runSearch() {
    const q = $("search").value.trim();
    const seq = ++searchSeq;
    if (q.length < 2) {
      $("results").replaceChildren();
      $("search-status").textContent = q && q === tooShort ? t("search_too_short") : "";
      return;
    }
    $("search-status").textContent = t("searching");
    try {
      const found = await api(`/v1/customers/search?${query({ q })}`);
      if (seq !== searchSeq) return; // a newer keystroke won
      $("search-status").textContent = found.customers.length ? "" : t("no_results");
      $("results").replaceChildren(...found.customers.map(resultItem));
      $("results").dataset.query = q; // what they were found for (Enter opens only those)
    } catch (error) {
      if (seq !== searchSeq) return;
      $("results").replaceChildren(); // not the search before's, under this one's error
      showError($("search-status"), error);
    }
  }

  // A name is stored lower case without accents (services/projections/lookup.py): shown as a name.
  const capitalised = (name) => name.replace(/(^|[\s'-])(\p{L})/gu, (all, before, letter) => before + letter.toUpperCase());

  function resultItem(found) {
    // An id is opaque (`c_…`): people recognise a customer by what they searched for.
    const matched = found.matched.map((m) => `${kindName(m.kind)}: ${m.kind === "name" ? capitalised(m.value) : m.value}`).join(" · ");
    return el("li", {},
      el("button", { type: "button", class: "result", onclick: () => openCustomer(found.customer_id) },
        el("strong", {}, matched || found.customer_id),
        el("span", { class: "muted small" }, ` ${when(found.last_seen)} · ${found.customer_id}`)));
  }

  // --- customer -----------------------------------------------------------------------------
  function openCustomer(id) {
    if (window.location.hash !== `#customer=${encodeURIComponent(id)}`) {
      window.location.hash = `customer=${encodeURIComponent(id)}`;
      return; // hashchange opens it
    }
    load(id);
  }

  // Past the timeline to the identity panel, for a keyboard (the history may be long).
  $("to-identity").addEventListener("click", () => $("identity-title").focus());

  window.addEventListener("hashchange", fromHash);
  // `#customer=ID` opens a customer; `&event=ID` (from a dashboard answer) marks the rated event.
  function fromHash() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    if (params.get("customer")) load(params.get("customer"), params.get("event"));
  }

  async function load(id, marked = null) {
    stopLive();
    if (!current || current.id !== id) clearIdentityForms();
    // `query`: what the search box held when she was opened (what found her: her email, often).
    filtersValid(false);
    current = { id, marked, cursor: null, seen: new Set(), filters: readFilters(), done: false, query: $("search").value };
    const target = current;
    $("empty").hidden = true;
    $("customer").hidden = false;
    // Chosen from a long list of results: bring the customer into view (a phone's screen, too).
    if ($("customer").getBoundingClientRect().top > window.innerHeight / 2) {
      $("customer").scrollIntoView({ block: "start" });
    }
    $("customer-label").textContent = "";
    $("customer-id").textContent = id;
    $("shared-lines").hidden = true; // the customer before's line, until this one's identity reads
    $("timeline").replaceChildren();
    $("timeline-end").textContent = t("loading");
    setLive(false); // until this customer's stream opens
    try {
      const profile = await api(`/v1/customers/${encodeURIComponent(id)}`);
      // Another customer opened while this one's profile was on its way: that one is shown.
      if (target !== current) return;
      renderProfile(profile);
    } catch (error) {
      if (target === current) {
        // Nothing of the customer before is left on show under this id (a review: her facts,
        // risk and identity panel stayed as the unknown id's): the card goes, and why is said.
        $("customer").hidden = true;
        $("empty").hidden = false;
        if (error instanceof ApiError && error.status === 404) {
          $("empty").replaceChildren(el("span", { class: "error", role: "alert" }, t("no_such_customer").replace("{id}", () => id)));
        } else {
          showError($("empty"), error);
        }
      }
      return;
    }
    loadRisk(id);
    loadIdentity(id);
    await nextPage();
    // Another customer opened meanwhile has its own stream (this one would never be closed).
    if (target === current && !target.erased) startLive(target.streamCursor);
  }

  // Another customer opened starts with clean identity forms: what was typed, previewed or
  // answered for the one before (an erasure recorded, a merge preview) is not this one's.
  function clearIdentityForms() {
    if ($("identity-status")) $("identity-status").textContent = ""; // the curators' panel only
    for (const form of ["merge-result", "erase-result"]) if ($(form)) $(form).hidden = true;
    for (const input of ["merge-absorbed", "merge-reason", "erase-reason"]) if ($(input)) $(input).value = "";
  }

  // What a person recognises a customer by: the name its touchpoints give, else its strongest
  // identifier (the id says nothing).
  const LABEL_KINDS = ["email", "phone", "customer_id", "external", "anonymous_id"];
  function displayName(p) {
    if (p.name) return p.name;
    const rank = (i) => {
      const found = LABEL_KINDS.indexOf(i.split(":")[0]);
      return found < 0 ? LABEL_KINDS.length : found;
    };
    const [best] = [...p.identifiers].sort((a, b) => rank(a) - rank(b));
    if (!best) return p.customer_id;
    // An account elsewhere reads as its handle and where (`@ana · instagram`), not as the key.
    const external = /^external:([^:]+):(.*)$/.exec(best);
    return external ? `${external[2]} · ${external[1]}` : best.slice(best.indexOf(":") + 1);
  }

  function renderProfile(p) {
    $("customer-label").textContent = displayName(p);
    $("customer-id").textContent = p.customer_id;
    renderIdentifiers(p.identifiers);
    $("f-orders").textContent = `${p.orders.count}`;
    // In the page's way of writing numbers ("377,66 EUR" in Spanish), as the other figures are.
    $("f-amount").textContent = p.orders.by_currency.map((s) => `${amount(s.net_amount)} ${s.currency}`).join(" · ") || "—";
    const months = Math.max(1, (new Date(p.last_seen) - new Date(p.first_seen)) / (30.44 * 86400e3));
    $("f-frequency").textContent = `${fixed(p.orders.count / months, 2)} ${t("per_month")}`;
    $("f-channels").replaceChildren(...p.channels.map((c) =>
      el("span", { class: "chip" }, el("span", { class: `icon ch-${c.channel}` }, badge(c.channel)), ` ${channelName(c.channel)} (${c.events})`)));
    // Without a contact left (only the platform's own events: an erasure) no channel is named.
    $("f-last").textContent = [when(p.last_seen), p.last_channel && channelName(p.last_channel), p.last_touchpoint].filter(Boolean).join(" · ");
    $("f-cases").replaceChildren(...(p.open_cases.length
      ? p.open_cases.map((c) => el("span", { class: "chip warn" }, c.subject || c.case_id))
      : [t("none")]));
    const s = p.satisfaction;
    const score = (x) => (x ? `${x.score} (${x.scale})` : "—");
    $("f-scores").textContent = `${score(s.csat)} / ${score(s.nps)} / ${score(s.ces)}`;
    renderRepeat(p.repeat_contact);
    renderValue(p.value);
  }

  function calendarDaysSince(at) {
    const midnight = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
    return Math.max(0, Math.round((midnight(new Date()) - midnight(new Date(at))) / 86400e3));
  }

  // value@1 and churn_risk@1 (docs/metrics.md): the score with every factor that adds to it.
  function renderValue(v) {
    if (!v) return;
    // Calendar days on the reader's clock: an order last evening is "yesterday", not "today"
    // (`recency_days` counts whole 24-hour days; a browser review).
    const days = v.last_order_at ? calendarDaysSince(v.last_order_at) : null;
    const recency = days === null ? "—" : days === 0 ? t("today") : days === 1 ? t("yesterday") : t("days_ago", { n: days });
    $("f-recency").textContent = `${recency} · ${v.tenure_days} ${t("days")}`;
    $("f-preferred").textContent = channelName(v.preferred_channel);
    $("f-products").replaceChildren(...(v.products.length
      ? v.products.map((p) => el("span", { class: "chip" }, `${p.product} (${p.orders})`))
      : ["—"]));
    const n = v.nps_trend;
    const change = n.change === null ? "" : ` (${n.change > 0 ? "+" : ""}${n.change})`;
    $("f-nps-trend").textContent = n.latest === null ? "—" : `${n.previous ?? "—"} → ${n.latest}${change}`;
    const risk = v.churn_risk;
    const tone = { low: "ok", medium: "warn", high: "danger" }[risk.band];
    const badge = el("span", { class: `badge ${tone}`, id: "churn-score" }, `${risk.score}/100 · ${t(`band_${risk.band}`)}`);
    const factors = risk.factors.length
      ? risk.factors.map((f) => el("span", { class: "chip warn", title: factorReason(f) }, `${t(`factor_${f.factor}`)} +${f.points}`))
      : [el("span", { class: "muted" }, ` ${t("no_warning_signs")}`)];
    $("f-churn").replaceChildren(badge, " ", ...factors);
  }

  // Why a churn factor counts, in the page's language (the server's English for a new factor).
  function factorReason(f) {
    const name = named("factor_reason", f.factor);
    return name === f.factor ? f.reason : name;
  }

  // repeat_contact@1: the latest contact that came within 7 days of an earlier one.
  function renderRepeat(repeat) {
    const badge = $("repeat");
    badge.hidden = !repeat;
    if (!repeat) return;
    const { contact, earlier } = repeat;
    // When the repeat came, not only the contact before it: the latest may be days old.
    badge.textContent = `${t("repeat_contact")} ${t("repeat_contact_on")} ${when(contact.at)} (${channelName(contact.channel)}) · ${t("repeat_contact_earlier")} ${when(earlier.at)} (${channelName(earlier.channel)})`;
    badge.title = `${when(contact.at)} ${channelName(contact.channel)} · ${contact.touchpoint} ← ${when(earlier.at)} ${channelName(earlier.channel)} · ${earlier.touchpoint}`;
  }

  // A new repeat contact arrived live: the header reads the profile again for its badge.
  async function refreshProfile(target) {
    try {
      const profile = await api(`/v1/customers/${encodeURIComponent(target.id)}`);
      if (target === current && !target.erased) renderProfile(profile);
    } catch (error) {
      // The header keeps what it showed; the timeline still has the new entry.
    }
  }

  // A new touchpoint changes what the header says (the last contact, the latest score, the
  // channels) and may raise or resolve an alert: both are read again, once, when a burst of
  // entries has been quiet for a moment. The moment gives the satisfaction stage time to write
  // the alert an answer raises after the timeline has the answer; each read is an audited read
  // of the customer, so a burst costs two, not two per entry.
  const REFRESH_AFTER_MS = 1500;

  function refreshSoon(target) {
    clearTimeout(target.refreshing);
    target.refreshing = setTimeout(() => {
      if (target !== current || target.erased) return;
      refreshProfile(target);
      loadRisk(target.id);
    }, REFRESH_AFTER_MS);
  }

  // Whether the customer `id` is the one the page shows (an answer for another is dropped).
  const shown = (id) => Boolean(current && current.id === id && !current.erased);

  async function loadRisk(id) {
    const badge = $("risk");
    try {
      const found = await api(`/v1/alerts?${query({ customer_id: id })}`);
      if (!shown(id)) return; // another customer opened meanwhile, or this one erased
      const open = found.alerts.filter((a) => (a.status || "open") !== "resolved");
      badge.className = open.length ? "badge danger" : "badge ok";
      // The newest open alert, with when it was raised: it stays open until someone resolves it,
      // so it may quote an answer older than the latest one the header shows.
      badge.textContent = open.length
        ? `${t("at_risk")}: ${alertText(open[0])} · ${when(open[0].raised_at)}`
        : t("not_at_risk");
    } catch (error) {
      if (!shown(id)) return;
      badge.className = "badge";
      badge.textContent = "";
    }
  }

  // --- timeline -----------------------------------------------------------------------------
  // The start of a day in a filter, local time: a date input's `yyyy-mm-dd`, or typed on a page
  // that writes days first (Spanish) `dd/mm/aaaa` (`-` or `.` also separate; `yyyy-mm-dd` too);
  // null when empty, NaN when it is no date (31/02/2026 too).
  function dayStart(input) {
    const value = input.value.trim();
    if (!value) return null;
    const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    const typed = /^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$/.exec(value);
    if (!iso && !typed) return NaN;
    const [year, month, date] = (iso ? [iso[1], iso[2], iso[3]] : [typed[3], typed[2], typed[1]]).map(Number);
    const day = new Date(year, month - 1, date);
    return day.getMonth() === month - 1 && day.getDate() === date ? day.getTime() : NaN;
  }

  // Marks the filters that cannot be read (a date that is no date, a type no type is called) and
  // says how to write them; true when all are fine. `focus`: the first wrong one takes it (not
  // when a customer opens: her page reads without them, and says so).
  function filtersValid(focus = true) {
    const wrong = ["filter-since", "filter-until"].filter((id) => Number.isNaN(dayStart($(id))));
    if (typeCodes($("filter-type").value) === null) wrong.push("filter-type");
    for (const id of ["filter-since", "filter-until", "filter-type"]) {
      if (wrong.includes(id)) $(id).setAttribute("aria-invalid", "true");
      else $(id).removeAttribute("aria-invalid");
    }
    $("filter-error").hidden = !wrong.length;
    // The browser's date field shows its own format (mm/dd/yyyy here, dd/mm/yyyy there): ours is
    // said only where the field is text (a browser review: "write it as yyyy-mm-dd" under one).
    const dates = $("filter-since").type === "date" ? t("invalid_date_field") : `${t("invalid_date")} ${t("date_hint")}`;
    const said = [];
    if (wrong.some((id) => id !== "filter-type")) said.push(dates);
    if (wrong.includes("filter-type")) said.push(t("unknown_type", { typed: $("filter-type").value.trim() }));
    $("filter-error").textContent = said.join(" ");
    if (wrong.length && focus) $(wrong[0]).focus();
    return !wrong.length;
  }

  // What the type filter holds as the API reads it: the types it names, [] for none, null when
  // it names no type. A title typed rather than picked from the list ("Llamada finalizada", any
  // case, accents or not) is its type; a code (`call.ended`, `call.*`) is itself; other words
  // ("llamada") are every type whose title holds them all (a browser review got a 422 worded
  // "not written as this field expects", or nothing found for a word its titles hold).
  const TYPE_CODE = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.([a-z0-9_]+|\*)$/;
  const plain = (text) => text.normalize("NFD").replace(/\p{M}/gu, "").toLocaleLowerCase(lang).trim();
  function typeCodes(typed) {
    const text = plain(typed);
    if (!text) return [];
    const options = [...document.querySelectorAll("#event-types option")]
      .map((o) => ({ code: o.value, title: plain(o.getAttribute("label") || "") }));
    const named = options.find((o) => o.title === text);
    if (named) return [named.code];
    if (TYPE_CODE.test(text)) return [text];
    const words = text.split(/\s+/);
    const holding = options.filter((o) => words.every((word) => o.title.split(/\s+/).some((w) => w.startsWith(word))));
    // As many as the API takes at once (20); more would be every type but a few: say so.
    return holding.length && holding.length <= 20 ? holding.map((o) => o.code) : null;
  }

  function readFilters() {
    const day = (input, end) => {
      const start = dayStart(input);
      return start === null || Number.isNaN(start) ? null : start + (end ? 86400e3 : 0);
    };
    const since = day($("filter-since"), false);
    const until = day($("filter-until"), true);
    return {
      channel: $("filter-channel").value,
      type: typeCodes($("filter-type").value) || [],
      since: since === null ? "" : new Date(since).toISOString(),
      until: until === null ? "" : new Date(until).toISOString(),
    };
  }

  function matchesFilters(entry) {
    const f = current.filters;
    const at = new Date(entry.derived_at).getTime();
    // A type filter is any of its types (`call.ended`) or prefixes (`call.*`), as the timeline
    // API reads it.
    const typed = !f.type.length || f.type.some((type) => (type.endsWith(".*")
      ? entry.type.startsWith(type.slice(0, -1)) : entry.type === type));
    return (!f.channel || entry.channel === f.channel) && typed
      && (!f.since || at >= new Date(f.since).getTime()) && (!f.until || at < new Date(f.until).getTime());
  }

  // An erased customer's page is not read again (its rows go from the warehouse in their time).
  $("filters").addEventListener("submit", (e) => {
    e.preventDefault();
    if (current && !current.erased && filtersValid()) load(current.id);
  });
  $("filters").addEventListener("reset", () => setTimeout(() => {
    filtersValid();
    if (current && !current.erased) load(current.id);
  }, 0));

  // Whoever asks first reads the page (the end of the list coming into view may ask before
  // `load` does); a second ask waits for that read, so `load` opens the stream at the first
  // page's stream_cursor, not before the page has come.
  function nextPage() {
    if (!current || current.done) return Promise.resolve();
    if (!current.loading) current.loading = readPage(current);
    return current.loading;
  }

  async function readPage(target) {
    try {
      const page = await api(`/v1/customers/${encodeURIComponent(target.id)}/timeline?${query({
        ...target.filters, cursor: target.cursor, limit: PAGE, lang })}`);
      if (target !== current || target.erased) return;
      for (const entry of page.entries) appendEntry(entry, false);
      if (page.stream_cursor && !target.streamCursor) target.streamCursor = page.stream_cursor;
      target.cursor = page.next_cursor;
      target.done = !page.next_cursor;
      // Nothing at all under filters: none matches them (not "the start of the history").
      const none = target.done && !target.seen.size
        && Object.values(target.filters).some((v) => (Array.isArray(v) ? v.length : v));
      $("timeline-end").textContent = target.done ? t(none ? "no_match" : "end_of_timeline") : "";
      $("more").hidden = target.done;
    } catch (error) {
      showError($("timeline-end"), error);
    } finally {
      target.loading = null;
    }
  }

  $("more").addEventListener("click", nextPage);
  // Endless scroll: the next page loads when the end of the list comes into view.
  new IntersectionObserver((seen) => {
    if (seen.some((s) => s.isIntersecting)) nextPage();
  }).observe($("timeline-end"));

  function appendEntry(entry, atTop) {
    if (current.seen.has(entry.event_id)) return; // never shown twice (reconnects, pages)
    // One that matches the filters came live: "none matches" no longer holds.
    if ($("timeline-end").textContent === t("no_match")) $("timeline-end").textContent = t("end_of_timeline");
    // A live entry goes where its time puts it among those shown, newest first: one that
    // happened earlier (a late source, a backfill) is not the newest.
    let after = null;
    if (atTop) {
      const shown = [...$("timeline").children];
      const time = (li) => new Date(li.querySelector("time").getAttribute("datetime")).getTime();
      const at = new Date(entry.derived_at).getTime();
      after = shown.find((li) => time(li) < at) || null;
      // Older than every entry shown while older pages remain: left to the page that holds it,
      // unless it is as old as the oldest shown (pages go by time, then id: the next page may
      // have passed it), which it then joins.
      if (!after && !current.done && shown.length && time(shown[shown.length - 1]) !== at) return;
    }
    current.seen.add(entry.event_id);
    const item = entryItem(entry);
    if (entry.event_id === current.marked) {
      item.classList.add("rated");
      setTimeout(() => item.scrollIntoView({ block: "center" }), 0);
    }
    if (atTop) {
      item.classList.add("fresh");
      $("timeline").insertBefore(item, after);
    } else {
      $("timeline").append(item);
    }
  }

  // The free text an entry's summary quotes, whole, when the summary had to cut it (a message,
  // a transcript, a comment): read in the page, not in the raw details (a browser review).
  const FULL_TEXT = {
    "message.received": "text", "message.sent": "text", "email.replied": "text",
    "call.ended": "transcript", "survey.answered": "comment", "order.returned": "reason",
    "case.opened": "subject", "case.resolved": "resolution",
    "alert.assigned": "note", "alert.acknowledged": "note", "alert.resolved": "note",
  };

  function fullText(entry) {
    const field = FULL_TEXT[entry.type];
    const text = field && entry.payload ? entry.payload[field] : "";
    return typeof text === "string" && text && (entry.summary || "").includes("…") ? text : "";
  }

  function readAll(text) {
    if (!text) return [];
    const whole = el("p", { class: "fulltext", hidden: true }, text);
    const toggle = el("button", { type: "button", class: "link read-all", "aria-expanded": "false" }, t("read_all"));
    toggle.addEventListener("click", () => {
      whole.hidden = !whole.hidden;
      toggle.setAttribute("aria-expanded", String(!whole.hidden));
      toggle.textContent = whole.hidden ? t("read_all") : t("read_less");
    });
    return [toggle, whole];
  }

  function amount(text) {
    const value = Number(text);
    return Number.isFinite(value) ? fixed(value, 2) : text;
  }

  function entryItem(entry) {
    const payload = el("pre", { class: "payload", hidden: true }, JSON.stringify(entry, null, 2));
    const toggle = el("button", { type: "button", class: "link", "aria-expanded": "false" }, t("show_payload"));
    toggle.addEventListener("click", () => {
      payload.hidden = !payload.hidden;
      toggle.setAttribute("aria-expanded", String(!payload.hidden));
      toggle.textContent = payload.hidden ? t("show_payload") : t("hide_payload");
    });
    return el("li", { class: "event", dataset: { eventId: entry.event_id, channel: entry.channel } },
      el("span", { class: `icon ch-${entry.channel}`, title: channelName(entry.channel), "aria-label": channelName(entry.channel) }, badge(entry.channel)),
      el("time", { datetime: entry.derived_at }, when(entry.derived_at)),
      el("span", { class: "summary" }, entry.summary || entry.type),
      el("span", { class: "muted small" }, `${entry.type} · ${entry.touchpoint}`),
      entry.repeat_of ? el("span", { class: "chip warn small", title: entry.repeat_of }, t("repeat_contact")) : null,
      ...readAll(fullText(entry)), toggle, payload);
  }

  // --- live updates ---------------------------------------------------------------------------
  // Server-Sent Events: the browser reconnects by itself and sends Last-Event-ID, and entries
  // already shown are skipped. Where the server has no stream, the first page is polled instead.
  // `from`: the first page's stream_cursor, so an event stored while that page was read is sent
  // (the page and the stream may both hold an entry: shown once).
  function startLive(from) {
    const target = current;
    // The summaries come worded in the page's language (`lang`), as the timeline's pages are.
    const params = query({ lang, last_event_id: from });
    const stream = new EventSource(`/v1/customers/${encodeURIComponent(target.id)}/stream?${params}`);
    target.stream = stream;
    let dropped = false;
    stream.addEventListener("open", () => {
      setLive(true);
      if (dropped) checkGroup(target, stream);
      dropped = false;
    });
    stream.addEventListener("touchpoint", (message) => {
      const entry = JSON.parse(message.data);
      if (target === current && matchesFilters(entry)) appendEntry(entry, true);
      if (target === current) refreshSoon(target);
    });
    // A later stage stored what the header reads (an alert a survey answer raised, a text's
    // sentiment): read again, once a burst of these is quiet.
    stream.addEventListener("header", () => { if (target === current) refreshSoon(target); });
    // Erased while open (by an admin, here or elsewhere): the page stops showing the history.
    stream.addEventListener("erased", () => {
      stream.close();
      if (target === current) showErased(target);
    });
    // Merged with another customer, or one split off, while open: the stream fed the members it
    // opened on (a review: the merged history and the new events filed under the survivor never
    // came). The customer is read again, every member's history, and a new stream opened.
    stream.addEventListener("regrouped", () => {
      stream.close();
      if (target === current && !target.erased) load(target.id, target.marked);
    });
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED && target === current) startPolling(target);
      else { setLive(false); dropped = true; }
    });
  }

  // Back after the connection dropped: a stream takes the group it reconnects to as its own, so
  // a merge or a split while the page was away (a laptop asleep, a proxy's drop) is told by no
  // `regrouped` (a review). The members are read again and, when they changed, so is the page.
  async function checkGroup(target, stream) {
    if (!target.members) return;
    try {
      const found = await api(`/v1/customers/${encodeURIComponent(target.id)}/identities`);
      if (target !== current || target.erased || target.stream !== stream) return;
      if (groupOf(found) === target.members) return;
      stream.close();
      load(target.id, target.marked);
    } catch (error) {
      // The stream goes on as it is; the next reconnection reads them again.
    }
  }

  const groupOf = (found) => [...found.members].sort().join("\n");

  function startPolling(target) {
    target.stream = null;
    setLive(true);
    target.poller = setInterval(async () => {
      try {
        const page = await api(`/v1/customers/${encodeURIComponent(target.id)}/timeline?${query({
          ...target.filters, limit: PAGE, lang })}`);
        if (target !== current || target.erased) return;
        const fresh = page.entries.filter((entry) => !target.seen.has(entry.event_id));
        // Without a stream nobody tells the page of an erasure: its own entry does (the erasure
        // event's entry is the one a customer's timeline keeps).
        if (fresh.some((entry) => entry.type === "customer.erased")) {
          clearInterval(target.poller);
          showErased(target);
          return;
        }
        for (const entry of fresh.slice().reverse()) appendEntry(entry, true);
        if (fresh.length) refreshSoon(target);
      } catch (error) {
        setLive(false);
      }
    }, 500);
  }

  // What was read of the customer goes from the page: the timeline, the profile's facts, its
  // risk, its identifiers and their history. The identity panel's forms stay (an admin's erasure
  // result; a preview then says "already erased").
  function showErased(target) {
    target.done = true;
    target.erased = true;
    $("timeline").replaceChildren();
    $("more").hidden = true;
    $("timeline-end").textContent = t("customer_erased");
    $("live").textContent = ""; // said once, under the title
    $("live").classList.remove("on");
    $("results").replaceChildren(); // the search results name the customer too
    // So does what was typed to find her, unless the agent has typed something else since. The
    // opaque id stays under the title: it names no one, and it is what the erasure is filed by.
    if ($("search").value === target.query) {
      $("search").value = "";
      $("search-status").textContent = "";
    }
    $("customer-label").textContent = "";
    for (const fact of document.querySelectorAll("#customer [id^='f-']")) fact.replaceChildren("—");
    $("risk").replaceChildren();
    $("risk").className = "badge";
    $("repeat").hidden = true;
    $("repeat").replaceChildren();
    $("repeat").removeAttribute("title");
    for (const list of ["identities", "members", "identity-history", "shared-line-customers"]) {
      if ($(list)) $(list).replaceChildren();
    }
    if ($("shared-lines")) $("shared-lines").hidden = true;
    if ($("merge-result")) $("merge-result").hidden = true; // a preview naming its identifiers
  }

  function stopLive() {
    if (!current) return;
    if (current.stream) current.stream.close();
    if (current.poller) clearInterval(current.poller);
    clearTimeout(current.refreshing);
  }

  function setLive(on) {
    $("live").textContent = on ? `● ${t("live")}` : t("connecting");
    $("live").classList.toggle("on", on);
  }

  // --- identity -----------------------------------------------------------------------------
  async function loadIdentity(id) {
    const path = encodeURIComponent(id);
    try {
      const [found, history] = await Promise.all([
        api(`/v1/customers/${path}/identities`),
        api(`/v1/customers/${path}/identity-history`),
      ]);
      if (!shown(id)) return; // another customer opened meanwhile, or read before the erasure
      current.members = groupOf(found); // what a reconnected stream's page compares
      // An identifier several members hold (the person and the profile of a device they used
      // before signing in) is one line, with how each came to hold it.
      const byIdentifier = new Map();
      for (const i of found.identities) {
        const key = `${i.kind}\u0000${i.value}`;
        byIdentifier.set(key, [...(byIdentifier.get(key) || []), i]);
      }
      // None held (an identifier an erasure suppressed links nobody again): said, not left blank.
      if (!byIdentifier.size) $("identities").replaceChildren(el("li", { class: "muted" }, t("none")));
      else $("identities").replaceChildren(...[...byIdentifier.values()].map((held) =>
        el("li", {}, el("span", { class: "chip", title: held[0].kind }, `${kindName(held[0].kind)}: ${held[0].value}`),
          ...held.map((i, n) => el("span", { class: "muted small", title: `${i.status} · ${i.rule}` },
            // When the touchpoint that linked it happened (an imported history's, not the import's).
            `${n ? ";" : ""} ${named("identity_status", i.status)} · ${ruleName(i.rule)} · ${when(i.seen_at || i.linked_at)}`)))));
      const absorbed = found.members.filter((m) => m !== found.customer_id);
      $("members").replaceChildren(...(absorbed.length ? absorbed.map((m) => memberItem(found.customer_id, m)) : [el("li", { class: "muted" }, t("none"))]));
      $("identity-history").replaceChildren(...history.entries.slice(-20).reverse().map((e) =>
        el("li", { title: e.action },
          [when(e.at), named("identity_action", historyAction(e)), historyDetail(e)].filter(Boolean).join(" · "))));
      showSharedLines(id, found);
    } catch (error) {
      if (!shown(id)) return;
      $("identities").replaceChildren(el("li", { class: "muted" }, error.status === 503 ? t("unavailable") : errorText(error)));
    }
  }

  // A call from a household's line alone is filed under a customer of its own (anyone at home
  // may have called): the line's customers are offered by name (`…/household-lines`, one read
  // the server audits once), so that the agent asks who is calling, opens their history or
  // names them the caller. Nothing for a customer holding identifiers of its own.
  async function showSharedLines(id, found) {
    $("shared-lines").hidden = true;
    $("shared-line-customers").replaceChildren();
    $("shared-line-status").textContent = "";
    if (found.identities.length) return;
    let answer;
    try {
      answer = await api(`/v1/customers/${encodeURIComponent(id)}/household-lines`);
    } catch (error) {
      return; // the hint is extra: the panel above says what is wrong with identity
    }
    if (!shown(id) || !answer.lines.length) return;
    $("shared-line-customers").replaceChildren(...answer.lines.map((line) =>
      el("li", {}, el("span", { class: "chip", title: line.kind }, line.value),
        el("ul", { class: "plain" }, ...line.customers.map((c) => el("li", {},
          el("button", { type: "button", class: "link", title: c.customer_id, onclick: () => openCustomer(c.customer_id) },
            c.name ? capitalised(c.name) : c.customer_id),
          el("button", { type: "button", class: "caller", onclick: (e) => nameCaller(id, c.customer_id, e.currentTarget) }, t("is_the_caller"))))))));
    $("shared-lines").hidden = false;
  }

  // The caller said who they are: the call joins their history (`POST …/caller`, an audited
  // merge a manager can split), which opens.
  async function nameCaller(call, caller, button) {
    button.disabled = true;
    try {
      const done = await api(`/v1/customers/${encodeURIComponent(call)}/caller`, { method: "POST", body: { caller_id: caller } });
      openCustomer(done.customer_id);
    } catch (error) {
      button.disabled = false;
      // Refused (409, 404): a holder erased, kept apart or gone since the hint was read. The
      // hint is read again (the line's customers as they are now) and says why the one named is
      // no longer offered; a refusal for someone still offered is said as the server words it.
      if (error.status !== 409 && error.status !== 404) return showError($("shared-line-status"), error);
      await showSharedLines(call, { identities: [] });
      if (!shown(call)) return;
      $("shared-lines").hidden = false;
      const offered = [...$("shared-line-customers").querySelectorAll("button.link")].some((b) => b.title === caller);
      if (offered) showError($("shared-line-status"), error);
      else $("shared-line-status").replaceChildren(el("span", { class: "error", role: "alert" }, t("caller_gone")));
    }
  }

  // A number written without its country code is carried as its readings (`phone_readings`):
  // her own number, most likely, not a shared line, and named so.
  function historyAction(e) {
    const readings = e.action === "skipped_identifier_carried" && e.details.kind === "phone_readings";
    return readings ? "phone_readings_carried" : e.action;
  }

  // What an identity history entry adds to its action: the identifier it linked, unlinked or
  // saw (an agent reads which one, not "identifier linked" alone; "(erased)" once its customer
  // is), then why (a reason, a rule) or the name it recorded; nothing for the rest (no dangling
  // separator).
  function historyDetail(e) {
    const d = e.details;
    const which = d.kind && d.value ? `${kindName(d.kind)}: ${d.value}` : "";
    const why = d.reason ? reasonText(e.details) : d.rule ? ruleName(d.rule) : d.name || "";
    return [which, why].filter(Boolean).join(" · ");
  }

  // Identity's state words are codes (a status, what happened, why it linked): each is named in
  // the page's language, the code kept as a tooltip; a code without a name shows as it is.
  function named(prefix, code) {
    const key = `${prefix}_${code}`;
    const name = t(key);
    return name === key ? code : name;
  }

  // A reason identity wrote itself, by its code in the page's language; a manager's typed reason
  // (or one worded otherwise) as it is.
  function reasonText(details) {
    return coded("identity_reason", details.reason_code, details.reason_params, details.reason);
  }

  // A reason's parameters as the page says them: identifiers (`email=ana@x.io`) and kinds by
  // their names here; other values as they are.
  const PARAMS = {
    identifier: (v) => identifierText(v, "="), hub: (v) => identifierText(v, "="),
    kind: kindName, kinds: (v) => v.split(", ").map(kindName).join(", "),
  };

  // A customer's identifiers, the ones a caller says first (email, phone, ids), devices last; past
  // the first few, behind a button: six chips of long device ids filled the first screen and
  // pushed the timeline below it during a call (a browser review).
  // Opened stays opened for that customer when the header is read again (a later stage stored
  // something: `event: header`).
  const SHOWN_IDENTIFIERS = 3;
  const IDENTIFIER_ORDER = ["customer_id", "email", "phone", "external"];
  let identifiersOpen = null; // the customer whose every identifier is shown
  function renderIdentifiers(identifiers) {
    const rank = (i) => {
      const at = IDENTIFIER_ORDER.indexOf(i.slice(0, i.indexOf(":")));
      return at >= 0 ? at : i.startsWith("anonymous_id:") ? IDENTIFIER_ORDER.length + 1 : IDENTIFIER_ORDER.length;
    };
    const ordered = [...identifiers].sort((a, b) => rank(a) - rank(b));
    const chip = (i) => el("span", { class: "chip", title: i }, identifierText(i));
    const shown = ordered.slice(0, SHOWN_IDENTIFIERS).map(chip);
    const rest = ordered.slice(SHOWN_IDENTIFIERS);
    if (!rest.length) { $("f-identifiers").replaceChildren(...shown); return; }
    const owner = current ? current.id : null;
    const more = el("span", { id: "more-identifiers" }, ...rest.map(chip));
    const toggle = el("button", { type: "button", class: "link", "aria-controls": "more-identifiers" });
    const show = (open) => {
      more.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? t("fewer_identifiers") : t("more_identifiers", { n: rest.length });
    };
    toggle.addEventListener("click", () => {
      identifiersOpen = more.hidden ? owner : null;
      show(more.hidden);
    });
    show(owner !== null && identifiersOpen === owner);
    $("f-identifiers").replaceChildren(...shown, more, toggle);
  }

  // The catalogue's text of `prefix_code` filled with `params`; `fallback` (the server's English)
  // without a code, or with one this page does not know.
  function coded(prefix, code, params, fallback) {
    const key = `${prefix}_${code}`;
    if (!code || t(key) === key) return fallback;
    return t(key).replace(/\{([a-z_]+)\}/g, (whole, name) => {
      const value = (params || {})[name];
      if (value === undefined) return whole;
      return PARAMS[name] ? PARAMS[name](String(value)) : value;
    });
  }

  // A rule is a code, maybe followed by the identifier kinds that decided: `seen_with:email`,
  // `typo_of:email with phone`.
  function ruleName(rule) {
    const [code, ...rest] = rule.split(":");
    const kinds = rest.join(":").split(" ").filter((word) => word && word !== "with" && word !== "on");
    return kinds.length ? `${named("identity_rule", code)} (${kinds.map(kindName).join(", ")})` : named("identity_rule", code);
  }

  function memberItem(survivor, member) {
    const item = el("li", {}, el("span", { class: "chip" }, member));
    if (isManager) {
      item.append(el("button", { type: "button", class: "link", onclick: () => split(survivor, member) }, t("split")));
    }
    return item;
  }

  async function split(survivor, absorbed) {
    const reason = window.prompt(t("reason"));
    if (!reason) return;
    try {
      await api(`/v1/customers/${encodeURIComponent(survivor)}/split`, { method: "POST", body: { absorbed_id: absorbed, reason } });
      $("identity-status").textContent = t("split_done");
      load(survivor);
    } catch (error) {
      showError($("identity-status"), error);
    }
  }

  // What a manager types to name the other customer: its id, or an email or phone it holds
  // (people know a customer by those: a review found the form took opaque ids only). Each is
  // asked as typed first, as the API reads an id before a key (a CRM's numeric ids stay ids),
  // then as the identifier's key (`email:…`, `phone:…`), which the API normalises as ingest does.
  function namings(typed) {
    const tried = [typed];
    if (!typed.includes(":")) {
      if (typed.includes("@")) tried.push(`email:${typed}`);
      else if (/^[+\d\s()./-]+$/.test(typed) && typed.replace(/\D/g, "").length >= 6) tried.push(`phone:${typed}`);
    }
    return tried;
  }

  if (isManager) {
    let pending = null;
    $("merge-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const typed = $("merge-absorbed").value.trim();
      const asked = { survivor_id: current.id, absorbed_id: typed, reason: $("merge-reason").value.trim() };
      pending = asked;
      try {
        let preview = null;
        for (const [n, naming] of namings(typed).entries()) {
          try {
            preview = await api("/v1/customers/merge", { method: "POST", body: { ...asked, absorbed_id: naming, preview: true } });
            break;
          } catch (error) {
            const more = n + 1 < namings(typed).length;
            if (!(more && error instanceof ApiError && error.status === 404)) throw error;
          }
        }
        // Another customer opened (or another preview asked) meanwhile: this answer is not theirs.
        if (pending !== asked || !current || current.id !== asked.survivor_id) return;
        // The merge confirmed is of the customer the preview found, not of what was typed.
        asked.absorbed_id = preview.absorbed_id;
        $("identity-status").textContent = ""; // an earlier attempt's error is not this one's
        renderPreview(preview);
      } catch (error) {
        if (pending !== asked || !current || current.id !== asked.survivor_id) return;
        $("merge-result").hidden = true; // the preview shown was another request's
        showError($("identity-status"), error, asked.absorbed_id);
      }
    });
    $("merge-confirm").addEventListener("click", async () => {
      if (!pending || !current || current.id !== pending.survivor_id) { $("merge-result").hidden = true; return; }
      try {
        await api("/v1/customers/merge", { method: "POST", body: { ...pending, preview: false } });
        $("merge-result").hidden = true;
        $("identity-status").textContent = t("merged");
        load(current.id);
      } catch (error) {
        showError($("identity-status"), error);
      }
    });
    $("merge-cancel").addEventListener("click", () => { $("merge-result").hidden = true; });
  }

  // Admins: erase the customer's personal data, after seeing the group the erasure takes.
  if (document.body.dataset.role === "admin" && $("erase-form")) {
    let erasing = null;
    $("erase-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const opened = current.id;
      erasing = null;
      try {
        const preview = await api(`/v1/customers/${encodeURIComponent(opened)}/erasure`);
        // Another customer opened meanwhile: the preview (and its Confirm) is not theirs.
        if (!current || current.id !== opened) return;
        erasing = { opened, id: preview.customer_id, members: preview.members.map((m) => m.customer_id) };
        renderErasure(preview);
      } catch (error) {
        if (current && current.id === opened) showError($("identity-status"), error);
      }
    });
    $("erase-confirm").addEventListener("click", async () => {
      if (!erasing || !current || current.id !== erasing.opened) { $("erase-result").hidden = true; return; }
      try {
        const done = await api(`/v1/customers/${encodeURIComponent(erasing.id)}/erase`, {
          method: "POST", body: { reason: $("erase-reason").value.trim(), members: erasing.members },
        });
        $("erase-result").hidden = true;
        $("identity-status").textContent = t("erase_requested", { event: done.event_id });
      } catch (error) {
        showError($("identity-status"), error);
      }
    });
    $("erase-cancel").addEventListener("click", () => { $("erase-result").hidden = true; });
  }

  // What an erasure does with one identifier and its key, as the preview says it.
  function erasureFate(i) {
    const gone = i.key_destroyed;
    if (i.kind === "phone_readings") return t(gone ? "erase_readings_key_destroyed" : "erase_readings_key_kept");
    if (i.carried_skipped) return t(gone ? "erase_skipped_key_destroyed" : "erase_skipped_key_kept");
    if (gone) return t("erase_key_destroyed");
    return t(i.suppressed === false ? "erase_key_kept" : "erase_key_kept_suppressed");
  }

  function renderErasure(preview) {
    const members = preview.members.map((m) => {
      const why = m.customer_id === preview.customer_id ? t("erase_member_canonical")
        : coded("identity_reason", m.reason_code, m.reason_params, m.merge_reason || "");
      const events = m.events === null ? "" : `, ${t("erase_member_events", { n: m.events })}`;
      return `${m.customer_id} (${why}${events})`;
    });
    const identifiers = preview.identifiers.map((i) => {
      const again = i.carried_again ? `, ${t("erase_carried")}` : "";
      // A national number's readings (`phone_readings`): the numbers it may be, one of which.
      const value = i.kind === "phone_readings" ? i.value.split("|").join(" / ") : i.value;
      return `${kindName(i.kind)}: ${value} (${erasureFate(i)}${again})`;
    });
    // An identifier two members hold (a person and their browser's profile) is one line when
    // the erasure does the same to it for both.
    const lines = [...new Set(identifiers)];
    const rows = [[t("erase_members"), members.join("; ")], [t("identifiers"), lines.join("; ") || "—"]];
    if (preview.erased) rows.unshift([t("erase_preview"), t("erase_already", { event: preview.erasure_event_id })]);
    if (preview.merged_since && preview.merged_since.length) {
      rows.push([t("erase_merged_since_title"), t("erase_merged_since", { ids: preview.merged_since.join(", ") })]);
    }
    $("erase-summary").replaceChildren(...rows.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
    $("erase-confirm").disabled = preview.erased;
    $("erase-result").hidden = false;
    $("erase-confirm").focus();
  }

  function renderPreview(preview) {
    const rows = [];
    // Why not, in the page's language: each reason by its code (`refusals`), else as the server said it.
    const why = preview.reasons.map((reason, i) => {
      const refusal = (preview.refusals || [])[i];
      return refusal ? coded("merge_refusal", refusal.code, refusal.params, reason) : reason;
    });
    if (!preview.allowed) rows.push([t("merge_not_allowed"), preview.conflicts.map(kindName).concat(why).join("; ")]);
    rows.push([t("members"), preview.members.join(", ")]);
    rows.push([t("identifiers"), preview.identifiers.map((i) => `${kindName(i.kind)}: ${i.value}`).join(", ")]);
    if (preview.impact) {
      const m = preview.impact.merged;
      rows.push([t("events"), `${m.events}`], [t("orders"), `${m.orders}`], [t("survey_responses"), `${m.survey_responses}`], [t("open_cases"), `${m.open_cases}`]);
    }
    $("merge-summary").replaceChildren(...rows.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
    $("merge-confirm").disabled = !preview.allowed;
    $("merge-result").hidden = false;
    $("merge-confirm").focus();
  }

  fromHash();
})();
