// Shared by the console and the dashboard: translated strings, the API client, safe DOM building.
// Every text from the API goes into the page through textContent, never as HTML (no XSS from
// event fields), and every write carries the session's CSRF token.
"use strict";

const CEM = (() => {
  const messages = JSON.parse(document.getElementById("messages").textContent);
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const lang = document.body.dataset.lang || "en";
  const dateTime = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });

  // The catalogue's text of `key`, its `{name}` places filled from `values` (one left unfilled
  // when `values` has no such name).
  function t(key, values) {
    const text = messages[key] || key;
    return values ? text.replace(/\{([a-z_]+)\}/g, (whole, name) => (values[name] ?? whole)) : text;
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  // While the page waits for answers, its main region says so (`aria-busy`): a screen reader
  // waits for the panels to settle before reading them, and so do the browser tests before they
  // press a button the panels loading around it would move.
  let waiting = 0;
  function busy(change) {
    waiting += change;
    const main = document.getElementById("main");
    if (!main) return;
    if (waiting > 0) main.setAttribute("aria-busy", "true");
    else main.removeAttribute("aria-busy");
  }

  async function api(path, options = {}) {
    busy(+1);
    try {
      return await ask(path, options);
    } finally {
      busy(-1);
    }
  }

  async function ask(path, options) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    const init = { credentials: "same-origin", ...options, headers };
    if (options.body !== undefined && typeof options.body !== "string") {
      init.body = JSON.stringify(options.body);
      headers["Content-Type"] = "application/json";
    }
    if (init.method && init.method !== "GET") headers["X-CSRF-Token"] = csrf;
    let response;
    try {
      response = await fetch(path, init);
    } catch (unreachable) {
      throw new ApiError(0, null); // no answer at all (offline, server down): `errorText` says so
    }
    if (response.status === 401) {
      // Said on the sign-in page, which brings the person back here (the customer open, too).
      const here = window.location.pathname + window.location.search + window.location.hash;
      window.location.assign(`/signin?ended=1&next=${encodeURIComponent(here)}`);
      throw new ApiError(401, null);
    }
    const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  // el("li", {class: "x", dataset: {id: "1"}}, "text", childNode): text children are text nodes.
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // A table cell of a metric: its value to one decimal, or "—" without one. Under `minN` answers
  // it is greyed and starred; `lowTitle` (the legend above the table) says why.
  // `seconds`: the value is a duration, shown as people read one ("5 min 20 s", "3 h 05 min"),
  // its seconds kept in `data-value` and in the tooltip.
  function metricCell(name, value, n, minN, lowTitle, seconds = false) {
    // No value: a dash in a table's column, left out of a phone's card (`none`: app.css).
    if (value === null || value === undefined) return el("td", { class: "num none", dataset: { metric: name, n: 0 } }, "—");
    const low = n < minN;
    const exact = `${fixed(value, 1)} s`;
    const title = [seconds ? exact : null, low ? lowTitle : null].filter(Boolean).join(" · ") || null;
    return el("td", { class: low ? "num low-n" : "num", dataset: { metric: name, n, value }, title },
      seconds ? duration(value) : fixed(value, 1), low ? lowStar() : null);
  }

  // 45 s, 9.5 s, 5 min 20 s, 3 h 05 min, 2 d 4 h: two units at most, the larger first.
  function duration(seconds) {
    if (seconds < 10) return `${fixed(seconds, 1)} s`;
    const whole = Math.round(seconds);
    if (whole < 60) return `${whole} s`;
    if (whole < 3600) return `${Math.floor(whole / 60)} min ${String(whole % 60).padStart(2, "0")} s`;
    const minutes = Math.round(whole / 60);
    if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
    const hours = Math.round(minutes / 60);
    return `${Math.floor(hours / 24)} d ${hours % 24} h`;
  }

  // The star beside a figure from too few answers or contacts to trust (the legend explains it).
  const lowStar = () => el("span", { class: "low-n-sample", "aria-hidden": "true" }, "*");

  // A number to `digits` decimals as the page's language writes it ("54,5" in Spanish).
  function fixed(value, digits) {
    return new Intl.NumberFormat(lang, {
      minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false,
    }).format(value);
  }

  function when(iso) {
    return iso ? dateTime.format(new Date(iso)) : "—";
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      // A list is the parameter repeated (`type=call.ended&type=call.offered`: any of them).
      if (Array.isArray(value)) value.forEach((item) => search.append(name, item));
      else if (value !== undefined && value !== null && value !== "") search.set(name, value);
    }
    return search.toString();
  }

  // What an alert says, in the page's language: the server's `message_code` and parameters
  // filled into this language's text (a word by its name here, a number with this language's
  // decimal mark). Without a code this page knows, the server's English `message`.
  function alertText(a) {
    const key = a.message_code ? `alert_text_${a.message_code.replaceAll(".", "_")}` : "";
    if (!messages[key]) return a.message || a.rule;
    const params = a.message_params || {};
    return messages[key].replace(/\{([a-z_]+)\}/g, (whole, name) => {
      const value = params[name];
      if (value === undefined) return whole;
      if (name === "where" || name === "unit") return messages[`alert_${name}_${value}`] || value;
      return name === "touchpoint" ? value : localNumber(value);
    });
  }

  // "-0.85" as this language writes it, with the same digits ("-0,85"; "1.7e-11" is "1,7e-11");
  // other text as it is.
  function localNumber(text) {
    const found = /^([+-]?)(\d+(?:\.(\d+))?)(e[+-]?\d+)?$/.exec(text);
    if (!found) return text;
    const digits = (found[3] || "").length;
    return new Intl.NumberFormat(lang, {
      minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false,
      signDisplay: found[1] === "+" ? "always" : "auto",
    }).format(Number(found[1] + found[2])) + (found[4] || "");
  }

  // A channel's name in the page's language (`channel_phone`: "teléfono"); a new one as its code.
  function channelName(code) {
    return messages[`channel_${code}`] || code;
  }

  // An identifier kind as people name it (`email`: "correo"; `external:crm`: "id externo (crm)");
  // a kind this page does not know, as the API wrote it.
  function kindName(kind) {
    const [family, ...namespace] = kind.split(":");
    const name = messages[`kind_${family}`];
    if (!name) return kind;
    return namespace.length ? `${name} (${namespace.join(":")})` : name;
  }

  // A survey kind or metric as a manager names it: the acronyms in capitals (`csat`: "CSAT"),
  // sentiment in the page's language; one this page does not know, as the API wrote it.
  function metricName(metric) {
    const kind = String(metric).split("@")[0];
    return messages[`metric_name_${kind}`] || metric;
  }

  // An identifier the API wrote as one string, `kind:value` (a profile's `email:ana@x.io`,
  // `external:crm:C-7`) or `kind=value` (identity's reasons), as "correo: ana@x.io".
  function identifierText(text, separator = ":") {
    const external = separator === ":" && text.startsWith("external:");
    const at = text.indexOf(separator, external ? "external:".length : 0);
    return at < 0 ? text : `${kindName(text.slice(0, at))}: ${text.slice(at + 1)}`;
  }

  // The request fields an error's details may name (`query.since`, `body.reason`), by this page's
  // label for them.
  const FIELDS = {
    since: "since", until: "until", q: "search", channel: "channel", type: "type", metric: "metric",
    touchpoint: "touchpoint", reason: "reason", absorbed_id: "absorbed_id", note: "note", assignee: "assignee",
  };

  // What an API error says, in the page's language: the English page shows the server's message
  // (it names the wrong value), except a malformed request's; another language says its first
  // detail's or the error's `code` from its catalogue, or its status class for a code it does not
  // know, with the field at fault by its label here.
  function errorText(error) {
    if (!(error instanceof ApiError)) return error.message;
    if (error.status === 0) return t("api_error_network");
    const body = (error.body && error.body.error) || {};
    // Not the framework's own words for a malformed request ("the request has invalid
    // parameters: query.q: String should have at most 200 characters", kernel/api_errors.py
    // `_validation`), which name internal paths: said as in Spanish. Our own messages stay.
    const framework = body.code === "invalid_request" && String(body.message || "").startsWith("the request has invalid parameters");
    if (lang === "en" && body.message && !framework) return body.message;
    const byStatus = messages[`api_error_status_${String(error.status)[0]}xx`];
    // What is wrong with the field at fault, when its detail's code has words (`api_detail_…`:
    // a closing time before its opening), else the error's own code.
    const detail = (body.details || []).map((d) => messages[`api_detail_${d.code}`]).find(Boolean);
    const text = detail || messages[`api_error_${body.code}`] || (byStatus ? byStatus.replace("{status}", error.status) : error.message);
    // The path's last part that names a field (`query.type.0`: the first of the types asked).
    const named = (path) => String(path || "").split(".").reverse().map((part) => FIELDS[part]).find(Boolean);
    const field = (body.details || []).map((d) => named(d.path)).find(Boolean);
    return field ? `${text} (${t(field)})` : text;
  }

  // `asked`: what the request named as the person typed it (a customer's id, email or phone in
  // the merge form), said beside a "not found" in every language: the server's English message
  // names the key it looked up (`email:…`), not what was typed (a review).
  function showError(target, error, asked = "") {
    const missing = asked && error instanceof ApiError && error.status === 404;
    // A value the server refused (400, 422) is the reader's to correct, not something that
    // went wrong: said without that preface (a browser review of the settings page).
    // So is a 404 (a customer id typed in the merge form that nobody has).
    const refused = error instanceof ApiError && [400, 404, 422].includes(error.status);
    const said = missing ? `${t("api_error_not_found")} (${asked})` : errorText(error);
    const text = `${refused ? "" : `${t("error")} `}${said}`;
    target.replaceChildren(el("span", { class: "error", role: "alert" }, text));
  }

  // On a phone a wide table's rows are cards (`table.cards`, app.css): every cell on a line of its
  // own, named by its column (`data-label`, from the header, which a card hides). Rows are named
  // as the scripts add them, whichever script and however (a browser review: the satisfaction
  // and service tables scrolled sideways on a phone, their first column out of sight).
  function nameCells(table) {
    const headers = [...table.tHead.rows[0].cells].map((th) => th.textContent);
    for (const row of table.tBodies[0].rows) {
      [...row.cells].forEach((cell, i) => { if (!cell.dataset.label) cell.dataset.label = headers[i] || ""; });
    }
  }
  for (const table of document.querySelectorAll("table.cards")) {
    new MutationObserver(() => nameCells(table)).observe(table.tBodies[0], { childList: true });
  }

  // Switching language keeps what the page shows (the console's customer lives in the hash):
  // the link's `?lang=` only, with the page's own hash (a browser review lost the customer).
  for (const link of document.querySelectorAll(".languages a")) {
    link.addEventListener("click", () => {
      link.href = `${link.getAttribute("href").split("#")[0]}${window.location.hash}`;
    });
  }

  return {
    t, api, el, metricCell, duration, lowStar, fixed, when, query, showError, errorText, alertText, channelName, kindName, metricName, identifierText,
    csrf, lang, ApiError,
  };
})();
