// The CX dashboard: satisfaction by touchpoint × channel (table, heat map, trend), drill-down to
// the answers behind a cell, and the alerts queue with assign / acknowledge / resolve.
"use strict";

(() => {
  const { t, api, el, metricCell, lowStar, when, query, showError, errorText, alertText, channelName, metricName, lang } = CEM;
  const $ = (id) => document.getElementById(id);
  const HOUR = 3600e3;
  const METRICS = ["csat@1", "nps@1", "ces@1", "ces_easy@1"];
  let period = null;
  let readAt = 0; // when the page last began reading what it shows (Date.now())
  let reading = 0; // which refresh is the latest: an older one's answer is not shown over it
  let chart = null;

  // The tenant's time zone (its service calendar's; UTC until an admin sets one): the API's day
  // buckets are its days, so yesterday and the calendar months are its days too (a review: in
  // the viewer's own days, a manager elsewhere saw one "yesterday" spread over two buckets).
  let zone = "UTC";
  const zoneRead = api("/v1/settings/calendar").then((c) => { zone = c.time_zone; }, () => {});

  // Milliseconds the zone's wall clock is ahead of UTC at the instant `ms`.
  function offsetAt(ms) {
    const shown = new Intl.DateTimeFormat("en-US", {
      timeZone: zone === "UTC" ? "Etc/UTC" : zone, hourCycle: "h23", year: "numeric",
      month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric",
    }).formatToParts(new Date(ms));
    const p = Object.fromEntries(shown.map((part) => [part.type, Number(part.value)]));
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
  }

  // The zone's date of an instant, and the instant its midnight of a date starts (month and day
  // may run over: Date.UTC carries them, so day 0 is the last of the month before).
  function dateIn(ms) {
    const at = new Date(ms + offsetAt(ms));
    return { y: at.getUTCFullYear(), m: at.getUTCMonth(), d: at.getUTCDate() };
  }
  function midnight(y, m, d) {
    const wall = Date.UTC(y, m, d);
    let ms = wall - offsetAt(wall);
    ms = wall - offsetAt(ms); // the offset in force at that midnight, not at the guess
    const at = dateIn(ms);
    // A midnight the clocks skip (Santiago in September): the day starts at the jump, as the
    // server's buckets do (zoneinfo's fold=0), not an hour early on the day before.
    if (Date.UTC(at.y, at.m, at.d) < wall) ms = wall - offsetAt(ms);
    return new Date(ms);
  }

  // The last N days end at the next full hour, so the same page and the API agree on their
  // bounds; yesterday and the calendar months are the tenant's days, so a manager can report on
  // November (a review: only the last N days could be chosen).
  function choosePeriod(choice = $("period-days").value, bucket = $("period-bucket").value) {
    const now = Date.now();
    const { y, m, d } = dateIn(now);
    let since;
    let until = new Date(Math.ceil(now / HOUR) * HOUR);
    if (choice === "yesterday") {
      until = midnight(y, m, d);
      since = midnight(y, m, d - 1);
    } else if (choice === "this-month") {
      since = midnight(y, m, 1);
    } else if (choice === "last-month") {
      since = midnight(y, m - 1, 1);
      until = midnight(y, m, 1);
    } else {
      since = new Date(until.getTime() - Number(choice) * 24 * HOUR);
    }
    // A period that has ended bounds the alerts too; one running to now leaves the queue open
    // to the alerts raised while the page stays open (it reloads).
    const ended = choice === "yesterday" || choice === "last-month";
    return { since: since.toISOString(), until: until.toISOString(), bucket,
      alertsUntil: ended ? until.toISOString() : null, choice };
  }

  $("period").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });

  // What the page shows lives in its address (`#days=7&bucket=hour&metric=nps@1`): a reload, a
  // shared link and a language switch (its link keeps the hash) show the same period and trend
  // (a browser review: switching language went back to the last 30 days).
  // The cell whose answers are open is in it too (`&drill=web&drill_channel=web`): Back from a
  // customer's timeline opened from them shows them again (a browser review: they were closed).
  const IN_ADDRESS = [["days", "period-days"], ["bucket", "period-bucket"], ["metric", "trend-metric"]];
  let askedDrill = null; // the cell the address names, drilled into once the table is read
  function fromAddress() {
    const asked = new URLSearchParams(window.location.hash.slice(1));
    for (const [name, id] of IN_ADDRESS) {
      const value = asked.get(name);
      if (value !== null && [...$(id).options].some((option) => option.value === value)) $(id).value = value;
    }
    const touchpoint = asked.get("drill");
    askedDrill = touchpoint ? { touchpoint, channel: asked.get("drill_channel") || "" } : null;
  }
  // What is shown, not what the lists hold: a period chosen but not applied is not in it.
  function toAddress() {
    if (!period) return;
    const shown = new URLSearchParams({ days: period.choice, bucket: period.bucket, metric: $("trend-metric").value });
    if (drilled.cell && !$("drill").hidden) {
      shown.set("drill", drilled.cell.touchpoint);
      shown.set("drill_channel", drilled.cell.channel);
    }
    history.replaceState(null, "", `${window.location.pathname}${window.location.search}#${shown}`);
  }
  fromAddress();
  // An address edited in place, or a shared link opened on this page, shows what it names.
  window.addEventListener("hashchange", () => { fromAddress(); refresh(); });

  // `again`: the period applied, read again (not a choice made in the lists and not applied).
  async function refresh(again = false) {
    await zoneRead;
    period = again && period ? choosePeriod(period.choice, period.bucket) : choosePeriod();
    const began = Date.now();
    const mine = ++reading;
    readAt = began;
    toAddress();
    const table = $("satisfaction");
    table.dataset.since = period.since;
    table.dataset.until = period.until;
    table.dataset.bucket = period.bucket;
    table.dispatchEvent(new Event("period")); // the service table (service.js) follows it
    // So do the answers shown, when the manager changed the period; a reading again keeps the
    // pages of answers being read (they would go back to the first every minute).
    if (!again && !$("drill").hidden && drilled.cell) drill(drilled.cell, true);
    const params = query({ since: period.since, until: period.until, bucket: period.bucket });
    // The table's downloads hold what it shows: the period's total per touchpoint and channel
    // (a browser review got a row per day, empty days included, for a table of totals). The
    // Excel files are for people: in the page's language (CSV and Parquet keep codes).
    const totals = query({ since: period.since, until: period.until, bucket: "total" });
    $("export-xlsx").href = `/v1/satisfaction/touchpoints?${totals}&format=xlsx&lang=${lang}`;
    $("export-csv").href = `/v1/satisfaction/touchpoints?${totals}&format=csv`;
    $("export-parquet").href = `/v1/satisfaction/touchpoints?${totals}&format=parquet`;
    const alerted = query({ since: period.since, until: period.alertsUntil });
    $("alerts-xlsx").href = `/v1/alerts?${alerted}&format=xlsx&lang=${lang}`;
    $("alerts-csv").href = `/v1/alerts?${alerted}&format=csv`;
    $("alerts-parquet").href = `/v1/alerts?${alerted}&format=parquet`;
    try {
      const result = await api(`/v1/satisfaction/touchpoints?${params}`);
      if (mine !== reading) return; // a later refresh (a period applied meanwhile) shows its own
      const cells = aggregate(result.buckets);
      renderTable(cells, result.min_confident_n);
      if (askedDrill) {
        const named = cells.find((c) => c.n > 0 && c.touchpoint === askedDrill.touchpoint && c.channel === askedDrill.channel);
        askedDrill = null;
        if (named) drill(named);
      }
      renderHeatmap(cells, result.min_confident_n);
      lastTrend = [result.buckets, result.time_zone || "UTC"];
      renderTrend(...lastTrend);
      $("as-of").textContent = `${t("updated_at")} ${new Date(began).toLocaleTimeString(lang)}`;
    } catch (error) {
      if (mine !== reading) return;
      showError($("sat-empty"), error);
      $("sat-empty").hidden = false;
    }
    loadAlerts(again ? queue.pages : 1); // a reading again keeps the pages of alerts shown
  }

  // Sums over the period's buckets, exactly: every v1 metric is a mean or a share of its n
  // answers, so the period's value is the n-weighted mean of the buckets' values.
  function aggregate(buckets) {
    const cells = new Map();
    for (const b of buckets) {
      const key = `${b.touchpoint}\u0000${b.channel}`;
      const cell = cells.get(key) || { touchpoint: b.touchpoint, channel: b.channel, n: 0, sums: {}, counts: {} };
      cell.n += b.responses.nps + b.responses.csat + b.responses.ces;
      for (const name of METRICS) {
        const m = b.metrics[name];
        if (!m || m.value === null) continue;
        cell.sums[name] = (cell.sums[name] || 0) + m.value * m.n;
        cell.counts[name] = (cell.counts[name] || 0) + m.n;
      }
      cells.set(key, cell);
    }
    return [...cells.values()].sort((a, b) => a.touchpoint.localeCompare(b.touchpoint) || a.channel.localeCompare(b.channel));
  }

  // "Answers behind chat_support · chat": the drill-down's title, and its button's name.
  const answersOf = (cell) => `${t("answers")} ${cell.touchpoint} · ${channelName(cell.channel)}`;

  function value(cell, name) {
    return cell.counts[name] ? cell.sums[name] / cell.counts[name] : null;
  }

  function renderTable(cells, minN) {
    // A cell with customers' texts but no survey answer (the API lists it for its sentiment)
    // has nothing to show in these columns, nor answers to drill into.
    const answered = cells.filter((cell) => cell.n > 0);
    $("sat-empty").hidden = answered.length > 0;
    $("sat-empty").textContent = t("no_data");
    $("satisfaction").tBodies[0].replaceChildren(...answered.map((cell) => {
      return el("tr", { dataset: { touchpoint: cell.touchpoint, channel: cell.channel } },
        // Named by its cell, as the answers it opens are titled: a touchpoint on two channels
        // was two buttons a screen reader read alike ("chat_support", twice; a review).
        el("th", { scope: "row" }, el("button", { type: "button", class: "link", onclick: () => drill(cell),
          "aria-label": answersOf(cell) }, cell.touchpoint)),
        el("td", {}, channelName(cell.channel)),
        el("td", { class: "num", dataset: { metric: "n" } }, String(cell.n)),
        // The row's n counts every kind of answer; a starred value says how many of its own it
        // has (a browser review: n = 40, yet each metric starred "fewer than 30").
        ...METRICS.map((name) => metricCell(name, value(cell, name), cell.counts[name] || 0, minN,
          t("low_n_of", { n: cell.counts[name] || 0 }))));
    }));
  }

  function renderHeatmap(cells, minN) {
    // Only what has CSAT answers, the map's one metric: a touchpoint or channel known for its
    // texts or its NPS alone made empty rows (a browser review).
    const answered = cells.filter((cell) => cell.counts["csat@1"] > 0);
    const touchpoints = [...new Set(answered.map((c) => c.touchpoint))];
    const channels = [...new Set(answered.map((c) => c.channel))].sort();
    const byKey = new Map(answered.map((c) => [`${c.touchpoint}\u0000${c.channel}`, c]));
    const head = el("tr", {}, el("th", { scope: "col" }, t("touchpoint")), ...channels.map((c) => el("th", { scope: "col" }, channelName(c))));
    const rows = touchpoints.map((tp) => el("tr", {}, el("th", { scope: "row" }, tp), ...channels.map((ch) => {
      const cell = byKey.get(`${tp}\u0000${ch}`);
      const csat = cell ? value(cell, "csat@1") : null;
      if (csat === null) return el("td", { class: "heat none" }, "");
      const level = Math.min(4, Math.floor(csat / 20)); // 0–19 … 80–100: five colour steps
      // Too few answers to trust: the colour fades and the number is starred, as in the table.
      const n = cell.counts["csat@1"] || 0;
      const low = n < minN;
      const title = `${tp} · ${channelName(ch)} · n = ${n}${low ? ` · ${t("low_n")}` : ""}`;
      return el("td", { class: `heat h${level}${low ? " low-n-heat" : ""}`, dataset: { n } },
        el("button", { type: "button", class: "heat-button", onclick: () => drill(cell), title },
          csat.toFixed(0), low ? lowStar() : null));
    })));
    $("heatmap").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
  }

  // One look per touchpoint however many there are: hues a golden angle apart (no two alike
  // among the first dozen), and past ten lines, dashes as well.
  function seriesStyle(i) {
    const stroke = `hsl(${Math.round((i * 137.508 + 210) % 360)}, 70%, ${i % 2 ? 34 : 44}%)`;
    return i < 10 ? { stroke } : { stroke, dash: i % 2 ? [6, 3] : [2, 3] };
  }

  function renderTrend(buckets, timeZone) {
    const metric = $("trend-metric").value;
    // By instant, not by text: a bucket's start carries its zone's offset, which changes.
    const times = [...new Set(buckets.map((b) => b.bucket_start))].sort((a, b) => new Date(a) - new Date(b));
    const touchpoints = [...new Set(buckets.map((b) => b.touchpoint))].sort();
    const index = new Map(times.map((time, i) => [time, i]));
    const series = touchpoints.map((tp) => {
      const sums = new Array(times.length).fill(0);
      const counts = new Array(times.length).fill(0);
      for (const b of buckets) {
        const m = b.metrics[metric];
        if (b.touchpoint !== tp || !m || m.value === null) continue;
        sums[index.get(b.bucket_start)] += m.value * m.n;
        counts[index.get(b.bucket_start)] += m.n;
      }
      return sums.map((s, i) => (counts[i] ? s / counts[i] : null));
    });
    // A line per touchpoint with a value of this metric in the period, each in the same colour
    // whichever metric is chosen; the others would only fill the legend with "–" (a review).
    const drawn = touchpoints.map((tp, i) => [tp, i, series[i]]).filter(([, , s]) => s.some((v) => v !== null));
    const data = [times.map((time) => new Date(time).getTime() / 1000), ...drawn.map(([, , s]) => s)];
    const width = Math.max(280, $("trend").clientWidth || 600);
    if (chart) chart.destroy();
    // The x axis is the chosen period, so a period with one bucket shows it at its date.
    const bounds = [new Date(period.since).getTime() / 1000, new Date(period.until).getTime() / 1000];
    // Dates as the page's language writes them (5/11 in Spanish, 11/5 in English). Day buckets
    // are the days of the tenant's time zone (the API's answer names it; UTC unless the tenant's
    // calendar says otherwise): drawn and named in that zone, and said so, or a viewer elsewhere
    // saw each day under the date before it (a review). Hour buckets are instants: the viewer's.
    const days = period.bucket === "day";
    const zoneName = timeZone === "UTC" ? "Etc/UTC" : timeZone;
    const zone = days ? { timeZone: zoneName } : {};
    const day = new Intl.DateTimeFormat(lang, { day: "numeric", month: "numeric", ...zone });
    const hour = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", ...zone });
    const moment = new Intl.DateTimeFormat(lang, days ? { dateStyle: "medium", ...zone } : { dateStyle: "medium", timeStyle: "short" });
    chart = new uPlot({
      width, height: 260,
      ...(days ? { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zoneName) } : {}),
      scales: { x: { time: true, range: () => bounds } },
      series: [
        { label: days ? `${t("trend_time")} (${timeZone})` : t("trend_time"), value: (u, v) => (v == null ? "–" : moment.format(new Date(v * 1000))) },
        // A line through the days without answers (`spanGaps` is uPlot's per series: given to
        // the chart it did nothing, and over 90 days, whose points uPlot does not draw, a value
        // between two empty days was not drawn at all, its touchpoint only in the legend).
        ...drawn.map(([tp, i]) => ({ label: tp, ...seriesStyle(i), width: 2, spanGaps: true, points: { filter: lone } })),
      ],
      axes: [
        // Ticks under a day apart show the hour; over a period of several days, the first tick
        // of each day shows its date above the hour (a week's ticks are every few hours).
        { values: (u, ticks, axis, space, step) => tickLabels(ticks, step, bounds, day, hour) },
        { label: $("trend-metric").selectedOptions[0].textContent },
      ],
    }, data, $("trend"));
  }
  // A touchpoint with one value in the period has no line to draw: its point is drawn even where
  // uPlot draws none (too many buckets for the width), or it would not show at all.
  function lone(u, i, show) {
    if (show) return null;
    const at = [];
    u.data[i].forEach((v, j) => { if (v !== null && v !== undefined) at.push(j); });
    return at.length === 1 ? at : null;
  }

  // Another metric redraws the trend from the answer it has: nothing else changed.
  let lastTrend = null;
  $("trend-metric").addEventListener("change", () => {
    toAddress();
    if (lastTrend) renderTrend(...lastTrend);
  });
  // The chart follows its box when the window changes (a phone turned, a desktop window
  // narrowed): drawn once at the first width, it kept the page 1,368 px wide (a review).
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      if (chart) chart.setSize({ width: Math.max(280, $("trend").clientWidth || 600), height: 260 });
    }, 150);
  });

  function tickLabels(ticks, step, bounds, day, hour) {
    if (step >= 86400) return ticks.map((v) => day.format(new Date(v * 1000)));
    const days = bounds[1] - bounds[0] > 86400;
    let before = null;
    return ticks.map((v) => {
      const at = new Date(v * 1000);
      const date = day.format(at);
      const label = days && date !== before ? `${date}\n${hour.format(at)}` : hour.format(at);
      before = date;
      return label;
    });
  }

  // --- drill-down -----------------------------------------------------------------------------
  let drilling = 0; // the latest drill-down asked: an earlier one's answers arriving late are dropped
  // The answers behind a cell, a page at a time: every one the cell counts can be reached.
  // The period is the one the cell was drilled in: a page more is of the same answers.
  const drilled = { cell: null, cursor: null, since: null, until: null };

  const answersPage = (cursor) => api(`/v1/satisfaction/responses?${query({
    touchpoint: drilled.cell.touchpoint, channel: drilled.cell.channel,
    since: drilled.since, until: drilled.until, cursor })}`);

  // `follow`: the period changed while the panel was open; its answers follow it, where the
  // reader is (a browser review found the old period's answers kept under the new table).
  async function drill(cell, follow = false) {
    const asked = ++drilling;
    Object.assign(drilled, { cell, cursor: null, since: period.since, until: period.until });
    $("drill").hidden = false;
    toAddress();
    $("drill").dataset.since = period.since; // the period its answers are of
    $("drill-more").hidden = true;
    $("drill-more").disabled = false;
    $("drill-title").textContent = answersOf(cell);
    $("answers").tBodies[0].replaceChildren();
    $("drill-status").textContent = t("loading");
    try {
      const found = await answersPage(null);
      if (asked !== drilling) return;
      const rows = found.responses || [];
      $("drill-status").textContent = rows.length ? "" : t("no_data");
      $("answers").tBodies[0].replaceChildren(...rows.map(answerRow));
      drilled.cursor = found.next_cursor || null;
      $("drill-more").hidden = drilled.cursor === null;
    } catch (error) {
      if (asked !== drilling) return;
      if (error.status === 404 || error.status === 405) $("drill-status").textContent = t("unavailable");
      else showError($("drill-status"), error);
    }
    if (follow) return;
    $("drill").scrollIntoView({ block: "start" });
    $("drill-title").focus?.();
  }

  $("drill-more").addEventListener("click", async () => {
    const asked = drilling;
    $("drill-more").disabled = true;
    try {
      const found = await answersPage(drilled.cursor);
      if (asked !== drilling) return; // another cell drilled meanwhile: its own button stands
      $("answers").tBodies[0].append(...(found.responses || []).map(answerRow));
      drilled.cursor = found.next_cursor || null;
      $("drill-status").textContent = "";
    } catch (error) {
      if (asked === drilling) showError($("drill-status"), error);
    } finally {
      if (asked === drilling) {
        $("drill-more").disabled = false;
        $("drill-more").hidden = drilled.cursor === null;
      }
    }
  });

  function answerRow(a) {
    const customer = `/console#customer=${encodeURIComponent(a.customer_id)}`;
    return el("tr", {},
      el("td", {}, when(a.answered_at)), el("td", {}, metricName(a.metric)), el("td", { class: "num" }, String(a.score)),
      el("td", {}, a.verbatim || ""),
      el("td", {}, el("a", { href: customer }, a.customer_id)),
      el("td", {}, a.rated_event_id ? el("a", { href: `${customer}&event=${encodeURIComponent(a.rated_event_id)}` }, t("open_timeline")) : "—"));
  }

  // --- alerts -------------------------------------------------------------------------------
  const ALERTS_PAGE = 100;
  // The queue as shown: its pages, where the next one starts (null: none left), and which load
  // it belongs to, so that a page arriving after the period changed is dropped.
  const queue = { pages: 1, cursor: null, load: 0 };

  const alertsPage = (cursor) =>
    api(`/v1/alerts?${query({ since: period.since, until: period.alertsUntil, limit: ALERTS_PAGE, cursor })}`);

  function showMore() {
    $("alerts-more").hidden = queue.cursor === null;
    $("alerts-more").disabled = false;
  }

  // The first `pages` pages again (after an action, as many as the person had opened).
  async function loadAlerts(pages = 1) {
    const load = ++queue.load;
    try {
      const rows = [];
      let cursor = null;
      for (let n = 0; n < pages && (n === 0 || cursor !== null); n++) {
        const found = await alertsPage(cursor);
        rows.push(...found.alerts);
        cursor = found.next_cursor;
      }
      if (load !== queue.load) return;
      Object.assign(queue, { pages, cursor });
      $("alerts-empty").hidden = rows.length > 0;
      const before = typed();
      $("alerts").tBodies[0].replaceChildren(...rows.map(alertRow));
      restore(before);
      showMore();
    } catch (error) {
      showError($("alerts-empty"), error);
      $("alerts-empty").hidden = false;
    }
  }

  // What the person was typing in the queue's rows, and where their focus was: a reload of the
  // queue (2 s after an action, or the period or metric changed) rebuilds the rows, and must
  // not empty a half-typed note or throw the focus out of the table.
  function typed() {
    const kept = new Map();
    for (const row of $("alerts").tBodies[0].rows) {
      const inputs = [...row.querySelectorAll("input")];
      if (inputs.some((input) => input.value)) kept.set(row.dataset.alertId, inputs.map((input) => input.value));
    }
    const active = document.activeElement;
    const row = active && active.closest ? active.closest("#alerts tr[data-alert-id]") : null;
    const focus = row ? { id: row.dataset.alertId, at: [...row.querySelectorAll("input, button")].indexOf(active) } : null;
    return { kept, focus };
  }

  function restore({ kept, focus }) {
    for (const row of $("alerts").tBodies[0].rows) {
      const values = kept.get(row.dataset.alertId);
      if (values) row.querySelectorAll("input").forEach((input, i) => { input.value = values[i] || ""; });
      if (focus && row.dataset.alertId === focus.id) {
        const target = [...row.querySelectorAll("input, button")][focus.at];
        if (target && !target.disabled) target.focus();
      }
    }
  }

  async function moreAlerts() {
    const load = queue.load;
    $("alerts-more").disabled = true;
    try {
      const found = await alertsPage(queue.cursor);
      if (load !== queue.load) return;
      $("alerts").tBodies[0].append(...found.alerts.map(alertRow));
      Object.assign(queue, { pages: queue.pages + 1, cursor: found.next_cursor });
      $("alerts-status").textContent = "";
    } catch (error) {
      $("alerts-status").textContent = `${t("error")} ${errorText(error)}`;
    }
    showMore();
  }

  $("alerts-more").addEventListener("click", moreAlerts);

  function alertRow(a) {
    const status = a.status || "open";
    const assignee = el("input", { class: "small-input", "aria-label": t("assignee"), placeholder: t("assignee"), maxlength: "200" });
    // As long as the API takes (schemas/families.py Note; a longer one was a 422 worded as "not
    // valid", a browser review): the field stops there as one types.
    const note = el("input", { class: "small-input", "aria-label": t("note"), placeholder: t("note"), maxlength: "2000" });
    const act = (action, label, body) => el("button", { type: "button", class: "small-button", dataset: { action },
      disabled: status === "resolved", onclick: () => alertAction(a, action, body(), said) }, label);
    // What an action on this row says (a missing assignee or note, a failure), beside its buttons.
    const said = el("p", { class: "row-status", role: "status" });
    const withNote = (fields) => (note.value.trim() ? { ...fields, note: note.value.trim() } : fields);
    return el("tr", { dataset: { alertId: a.alert_id, status } },
      el("td", {}, when(a.raised_at)),
      // A drift alert (rule drift.*) is about a touchpoint, not one customer.
      el("td", {}, a.customer_id
        ? el("a", { href: `/console#customer=${encodeURIComponent(a.customer_id)}` }, a.customer_id)
        : el("span", { class: "muted" }, t("whole_touchpoint"))),
      el("td", { title: a.message }, alertText(a)), el("td", { class: "num" }, `${a.score} (${metricName(a.metric)})`),
      el("td", {}, a.channel ? `${a.touchpoint} · ${channelName(a.channel)}` : a.touchpoint),
      el("td", { class: "alert-status" }, t(`status_${status}`)),
      el("td", {}, a.assignee || ""), el("td", {}, a.note || ""),
      el("td", {}, el("div", { class: "actions" }, assignee, note,
        act("assign", t("assign"), () => withNote({ assignee: assignee.value.trim() })),
        act("acknowledge", t("acknowledge"), () => withNote({})),
        act("resolve", t("resolve"), () => withNote({})), said)));
  }

  function showStatus(alertId, status) {
    const row = [...$("alerts").tBodies[0].rows].find((r) => r.dataset.alertId === alertId);
    if (!row) return;
    row.dataset.status = status;
    row.querySelector(".alert-status").textContent = t(`status_${status}`);
    if (status === "resolved") row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  }

  async function alertAction(alert, action, payload, said) {
    if (action === "resolve" && !payload.note) { said.textContent = t("note_required"); return; }
    if (action === "assign" && !payload.assignee) { said.textContent = t("assignee_required"); return; }
    said.textContent = "";
    const typedThen = [...said.closest("tr").querySelectorAll("input")].map((input) => input.value);
    try {
      const done = await api(`/v1/alerts/${encodeURIComponent(alert.alert_id)}/${action}`, { method: "POST", body: payload });
      showStatus(alert.alert_id, done.status);
      // What was typed for it was sent: those fields start empty again (not what was typed
      // into them while the action was on its way).
      said.closest("tr").querySelectorAll("input").forEach((input, i) => {
        if (input.value === typedThen[i]) input.value = "";
      });
      // The action is an event on the log: the queue shows it once it has been processed.
      setTimeout(() => loadAlerts(queue.pages), 2000);
    } catch (error) {
      const reason = error.status === 404 || error.status === 405 ? t("unavailable") : errorText(error);
      said.textContent = `${t("error")} ${reason}`;
    }
  }

  // The page follows what happens while it stays open (a browser review: it showed the same
  // alerts for minutes, and nothing said since when): every minute while it is in view, and on
  // coming back into view after that, it reads the period applied again, and says when it read.
  // An alert's half-typed note and the focus survive the queue's reload (`typed`).
  const FOLLOW_MS = window.CEM_FOLLOW_MS || 60000;
  function follow() {
    if (period && !document.hidden && readAt && Date.now() - readAt >= FOLLOW_MS) refresh(true);
  }
  setInterval(follow, Math.min(FOLLOW_MS, 5000));
  document.addEventListener("visibilitychange", follow);

  refresh();
})();
